"""Central difference with a full forward pass per perturbed parameter.

The brute-force JIT baseline: for every parameter ``p`` the whole batch loss is
recomputed at ``theta + h e_p`` and ``theta - h e_p``. Each thread perturbs its
own copy of the parameters, so no shared array is ever written inside the
``prange``, and each gradient entry comes from one thread in a fixed order:
the result is bitwise the same for any thread count.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from fastgrad.config import PARALLEL_OPTIONS
from fastgrad.kernels.forward import batch_loss
from fastgrad.kernels.layers import batch_loss as deep_batch_loss
from fastgrad.kernels.layers import offsets


@njit(**PARALLEL_OPTIONS)
def full_gradient(theta, n_in, n_hidden, n_out, indptr, indices, values, labels, h, n_chunks):
    """Gradient of the batch loss w.r.t. the flat parameter vector ``theta``.

    ``theta`` holds ``W1.ravel(), b1, W2.ravel(), b2`` back to back. The
    parameters are split into ``n_chunks`` contiguous chunks; each chunk works
    on its own copy of ``theta``.
    """
    n_params = theta.size
    o_b1 = n_in * n_hidden
    o_W2 = o_b1 + n_hidden
    o_b2 = o_W2 + n_hidden * n_out
    grad = np.empty(n_params)
    for c in prange(n_chunks):
        mine = theta.copy()
        a1 = np.empty(n_hidden)
        a2 = np.empty(n_out)
        W1 = mine[:o_b1].reshape((n_in, n_hidden))
        b1 = mine[o_b1:o_W2]
        W2 = mine[o_W2:o_b2].reshape((n_hidden, n_out))
        b2 = mine[o_b2:]
        for p in range(c * n_params // n_chunks, (c + 1) * n_params // n_chunks):
            original = theta[p]
            mine[p] = original + h
            f_plus = batch_loss(W1, b1, W2, b2, indptr, indices, values, labels, a1, a2)
            mine[p] = original - h
            f_minus = batch_loss(W1, b1, W2, b2, indptr, indices, values, labels, a1, a2)
            mine[p] = original
            grad[p] = (f_plus - f_minus) / (2.0 * h)
    return grad


@njit(**PARALLEL_OPTIONS)
def deep_full_gradient(theta, sizes, act, indptr, indices, values, labels, h, n_chunks):
    """Cross-entropy gradient of a network of any depth, one full forward pass per side.

    ``theta`` and ``sizes`` as in :mod:`fastgrad.kernels.layers`; ``act`` the
    activation code. Each of the ``n_chunks`` contiguous chunks of parameters
    perturbs its own copy of ``theta``.
    """
    n_params = theta.size
    w_off, b_off = offsets(sizes)
    width = 1
    for layer in range(1, sizes.size):
        width = max(width, sizes[layer])
    grad = np.empty(n_params)
    for c in prange(n_chunks):
        mine = theta.copy()
        pre = np.empty((sizes.size - 1, width))
        post = np.empty((sizes.size - 1, width))
        for p in range(c * n_params // n_chunks, (c + 1) * n_params // n_chunks):
            original = theta[p]
            mine[p] = original + h
            f_plus = deep_batch_loss(mine, sizes, w_off, b_off, act, indptr, indices, values,
                                     labels, pre, post)
            mine[p] = original - h
            f_minus = deep_batch_loss(mine, sizes, w_off, b_off, act, indptr, indices, values,
                                      labels, pre, post)
            mine[p] = original
            grad[p] = (f_plus - f_minus) / (2.0 * h)
    return grad
