"""Central difference with a full forward pass per perturbed parameter.

The brute-force JIT baseline: for every parameter ``p`` the whole batch loss is
recomputed at ``theta + h e_p`` and ``theta - h e_p``, every layer over the
whole batch (:func:`fastgrad.kernels.layers.batch_loss`). Each chunk of
parameters perturbs its own copy of ``theta`` and of the packed weights, so no
shared array is ever written inside the ``prange``, and each gradient entry
comes from one chunk in a fixed order: the result is bitwise the same for any
thread count.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from fastgrad.config import JIT_OPTIONS, PARALLEL_OPTIONS
from fastgrad.kernels.layers import batch_loss, locate, offsets, pack_all, packed_offsets


@njit(**JIT_OPTIONS)
def _perturbed_loss(value, p, q, x, first, csr, columns, theta, packed, sizes, w_off, b_off,
                    p_off, act, labels, scratch):
    """Batch loss with ``theta[p]`` (and its packed copy ``packed[q]``, if ``q >= 0``) set."""
    theta[p] = value
    if q >= 0:
        packed[q] = value
    indptr, indices, values = csr
    kptr, kidx = columns
    return batch_loss(x, first, indptr, indices, values, kptr, kidx, theta, packed, sizes,
                      w_off, b_off, p_off, act, labels, scratch)


# serial itself: the parallel loop is the range kernel's
@njit(**JIT_OPTIONS)
def full_gradient(theta, sizes, act, x, first, csr, columns, labels, h, n_chunks):
    """Cross-entropy gradient of a network of any depth w.r.t. the flat ``theta``.

    ``theta`` (``W1.ravel(), b1, W2.ravel(), b2, ...``) and ``sizes`` as in
    :mod:`fastgrad.kernels.layers`; ``act`` the activation code; ``x`` the
    batch (C-contiguous float64), ``csr`` its ``(indptr, indices, values)``
    and ``columns`` its ``(kptr, kidx)`` (:func:`dense.block_columns`);
    ``first`` the first layer's kernel code (``layers.FIRST_*``). The
    parameters are split into ``n_chunks`` contiguous chunks.
    """
    return full_gradient_range(theta, sizes, act, x, first, csr, columns, labels, h, 0,
                               theta.size, n_chunks)


@njit(**PARALLEL_OPTIONS)
def full_gradient_range(theta, sizes, act, x, first, csr, columns, labels, h, start, stop,
                        n_chunks):
    """Entries ``start:stop`` of :func:`full_gradient`, split into ``n_chunks`` chunks.

    Each entry is perturbed on a copy of the whole ``theta`` and never depends
    on which other entries share its chunk or its range, so any split of the
    parameters into ranges (one machine or many) gives the same bits.
    """
    n_range = stop - start
    w_off, b_off = offsets(sizes)
    p_off, n_packed = packed_offsets(sizes)
    n_scratch = 0
    for layer in range(1, sizes.size):
        n_scratch += labels.size * sizes[layer]
    grad = np.empty(n_range)
    for c in prange(n_chunks):
        mine = theta.copy()
        packed = np.empty(n_packed)
        pack_all(mine, sizes, w_off, p_off, packed)
        scratch = np.empty(n_scratch)
        for p in range(start + c * n_range // n_chunks, start + (c + 1) * n_range // n_chunks):
            q = locate(sizes, w_off, b_off, p_off, p)
            original = theta[p]
            f_plus = _perturbed_loss(original + h, p, q, x, first, csr, columns, mine, packed,
                                     sizes, w_off, b_off, p_off, act, labels, scratch)
            f_minus = _perturbed_loss(original - h, p, q, x, first, csr, columns, mine, packed,
                                      sizes, w_off, b_off, p_off, act, labels, scratch)
            mine[p] = original
            if q >= 0:
                packed[q] = original
            grad[p - start] = (f_plus - f_minus) / (2.0 * h)
    return grad
