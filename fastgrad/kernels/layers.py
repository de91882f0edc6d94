"""Compiled forward pass of a fully connected network of any depth.

The parameters travel as one flat vector ``theta`` (``W1.ravel(), b1, W2.ravel(),
b2, ...``) with the layer widths ``sizes = [n0, n1, ..., n{L+1}]``; views into
it are cheap, so a kernel can perturb its own copy of ``theta`` and run the
same forward pass on it.

:func:`batch_loss` (the ``jit`` method) runs the whole batch one layer at a
time through the register-blocked kernels of :mod:`fastgrad.kernels.dense`,
the first layer dense or over the inputs' CSR. :func:`dense_affine` (one
sample, exact zeros of its input skipped) serves the incremental kernels.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from fastgrad.config import JIT_OPTIONS
from fastgrad.kernels.dense import (
    affine_columns,
    affine_packed,
    loss_from_logits,
    pack,
    packed_index,
    packed_size,
    relu_,
    sigmoid_,
    sparse_affine,
)

#: Kernel codes of the hidden activations (the order of fastgrad.arch.ACTIVATIONS).
SIGMOID, RELU = 0, 1

#: Kernel codes of the first layer's path in :func:`batch_loss`: CSR
#: (:func:`dense.sparse_affine`), dense (:func:`dense.affine_packed`), dense skipping
#: the columns zero in a whole block of samples (:func:`dense.affine_columns`).
FIRST_SPARSE, FIRST_DENSE, FIRST_COLUMNS = 0, 1, 2


@njit(**JIT_OPTIONS)
def offsets(sizes):
    """Start of ``W_l`` and ``b_l`` in ``theta`` for ``l = 1 .. L+1`` (0-based arrays)."""
    count = sizes.size - 1
    w_off = np.empty(count, dtype=np.int64)
    b_off = np.empty(count, dtype=np.int64)
    pos = 0
    for layer in range(count):
        w_off[layer] = pos
        pos += sizes[layer] * sizes[layer + 1]
        b_off[layer] = pos
        pos += sizes[layer + 1]
    return w_off, b_off


@njit(**JIT_OPTIONS)
def weight(theta, sizes, w_off, layer):
    """View of ``W{layer+1}`` (0-based ``layer``) inside ``theta``."""
    rows, cols = sizes[layer], sizes[layer + 1]
    return theta[w_off[layer]:w_off[layer] + rows * cols].reshape((rows, cols))


@njit(**JIT_OPTIONS)
def bias(theta, sizes, b_off, layer):
    """View of ``b{layer+1}`` (0-based ``layer``) inside ``theta``."""
    return theta[b_off[layer]:b_off[layer] + sizes[layer + 1]]


@njit(inline="always", **JIT_OPTIONS)
def activate(a, act):
    """The hidden activation of one pre-activation, as the reference computes it."""
    if act == SIGMOID:
        return 1.0 / (1.0 + math.exp(-a))
    return a if a > 0.0 else 0.0


@njit(inline="always", **JIT_OPTIONS)
def relu_shift(a, s):
    """``relu(a + s) - relu(a)``, exactly ``s`` when no kink lies between."""
    if a > 0.0:
        return s if a + s > 0.0 else -a
    return a + s if a + s > 0.0 else 0.0


@njit(**JIT_OPTIONS)
def dense_affine(z, W, b, out):
    """``out = z @ W + b`` for one sample; exact zeros of ``z`` are skipped."""
    out[:] = 0.0
    for i in range(z.size):
        zi = z[i]
        if zi != 0.0:
            row = W[i]
            for k in range(out.size):
                out[k] += zi * row[k]
    for k in range(out.size):
        out[k] += b[k]


@njit(**JIT_OPTIONS)
def packed_offsets(sizes):
    """Start of each layer's packed weights (:func:`dense.pack`) in one flat array, and its size."""
    count = sizes.size - 1
    p_off = np.empty(count, dtype=np.int64)
    pos = 0
    for layer in range(count):
        p_off[layer] = pos
        pos += packed_size(sizes[layer], sizes[layer + 1])
    return p_off, pos


@njit(**JIT_OPTIONS)
def pack_all(theta, sizes, w_off, p_off, packed):
    """Fill ``packed`` with every weight matrix of ``theta`` in packed form."""
    for layer in range(sizes.size - 1):
        n_in, n_out = sizes[layer], sizes[layer + 1]
        pack(weight(theta, sizes, w_off, layer),
             packed[p_off[layer]:p_off[layer] + packed_size(n_in, n_out)])


@njit(**JIT_OPTIONS)
def locate(sizes, w_off, b_off, p_off, p):
    """Where parameter ``p`` of ``theta`` sits in the packed weights, or -1 for a bias."""
    for layer in range(sizes.size - 1):
        if p < b_off[layer]:
            n_in, n_out = sizes[layer], sizes[layer + 1]
            q = p - w_off[layer]
            return p_off[layer] + packed_index(n_in, n_out, q // n_out, q % n_out)
        if p < b_off[layer] + sizes[layer + 1]:
            return -1
    return -1


@njit(**JIT_OPTIONS)
def batch_loss(x, first, indptr, indices, values, kptr, kidx, theta, packed, sizes, w_off,
               b_off, p_off, act, labels, scratch):
    """Mean cross entropy of the batch (no weight decay), one whole layer at a time.

    ``theta`` gives the biases (and ``W1`` for the sparse first layer),
    ``packed`` the same weights packed (:func:`pack_all`); the first layer
    reads ``x`` by the kernel ``first`` codes (:data:`FIRST_SPARSE`: its CSR
    ``(indptr, indices, values)``; :data:`FIRST_COLUMNS`: its block columns
    ``(kptr, kidx)`` from :func:`dense.block_columns`): all three give bitwise
    the same activations. ``scratch`` holds ``batch * sum(sizes[1:])``
    float64.
    """
    n_samples = labels.size
    count = sizes.size - 1
    z = x
    pos = 0
    for layer in range(count):
        n_in, n_out = sizes[layer], sizes[layer + 1]
        out = scratch[pos:pos + n_samples * n_out].reshape((n_samples, n_out))
        pos += n_samples * n_out
        Wp = packed[p_off[layer]:p_off[layer] + packed_size(n_in, n_out)]
        b = bias(theta, sizes, b_off, layer)
        if layer > 0 or first == FIRST_DENSE:
            affine_packed(z, Wp, b, out)
        elif first == FIRST_COLUMNS:
            affine_columns(z, kptr, kidx, Wp, b, out)
        else:
            sparse_affine(indptr, indices, values, weight(theta, sizes, w_off, 0), Wp, b, out)
        if layer < count - 1:
            if act == SIGMOID:
                sigmoid_(out)
            else:
                relu_(out)
        z = out
    return loss_from_logits(z, labels)
