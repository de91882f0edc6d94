"""Per-iteration work of the training loop, compiled: the minibatch and its loss.

Both run once per training step next to the gradient, so any time they take is
serial overhead on every thread but one. NumPy's fancy indexing and
float64 conversion take two passes and ~0.1 ms on a chapter-4 minibatch, its
CSR another scan of every pixel, and its loss after the update (one dense BLAS
product of all 784 inputs on one core) ~0.4 ms.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from fastgrad.config import PARALLEL_OPTIONS
from fastgrad.kernels.forward import sample_hidden, sample_log_prob
from fastgrad.kernels.layers import activate, dense_affine


@njit(**PARALLEL_OPTIONS)
def gather_rows(x, pick, out):
    """``out[r] = x[pick[r]]`` as float64 (``out`` (len(pick), x.shape[1]))."""
    for r in prange(pick.size):
        row = x[pick[r]]
        for k in range(out.shape[1]):
            out[r, k] = row[k]


@njit(**PARALLEL_OPTIONS)
def gather_csr(indptr, indices, values, pick):
    """Rows ``pick`` of a CSR matrix as a new CSR with int64 indices and float64 values."""
    sub_ptr = np.zeros(pick.size + 1, dtype=np.int64)
    for r in range(pick.size):
        sub_ptr[r + 1] = sub_ptr[r] + indptr[pick[r] + 1] - indptr[pick[r]]
    sub_indices = np.empty(sub_ptr[-1], dtype=np.int64)
    sub_values = np.empty(sub_ptr[-1])
    for r in prange(pick.size):
        start = indptr[pick[r]]
        for q in range(sub_ptr[r], sub_ptr[r + 1]):
            sub_indices[q] = indices[start + q - sub_ptr[r]]
            sub_values[q] = values[start + q - sub_ptr[r]]
    return sub_ptr, sub_indices, sub_values


@njit(**PARALLEL_OPTIONS)
def sample_log_probs(weights, biases, act, indptr, indices, values, labels, out):
    """``out[n] = log(softmax(net(x[n]))[labels[n]] + 1e-7)``, parallel over samples.

    ``x`` comes as its CSR; ``weights``/``biases`` are tuples of the layers'
    C-contiguous arrays and ``act`` the hidden activation's code. A zero input
    adds ``0 * w`` (exact), so the first layer adds only the rows of the
    non-zero inputs, in the order of :func:`forward.sample_hidden`; later
    layers skip exact zeros too. Each sample is one thread's, so ``out`` does
    not depend on threads.
    """
    count = len(weights)
    width = 1
    for layer in range(count):
        width = max(width, weights[layer].shape[1])
    n_samples = labels.size
    pre = np.empty((n_samples, width))  # per sample, not per thread: no allocation in the loop
    post = np.empty((n_samples, width))
    for n in prange(n_samples):
        a, z = pre[n], post[n]
        n_out = weights[0].shape[1]
        sample_hidden(weights[0], biases[0], indptr, indices, values, n, a[:n_out])
        for layer in range(1, count):
            for j in range(n_out):
                z[j] = activate(a[j], act)
            n_next = weights[layer].shape[1]
            dense_affine(z[:n_out], weights[layer], biases[layer], a[:n_next])
            n_out = n_next
        out[n] = sample_log_prob(a[:n_out], labels[n])
