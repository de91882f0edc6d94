"""Compiled forward pass of a fully connected network of any depth.

The parameters travel as one flat vector ``theta`` (``W1.ravel(), b1, W2.ravel(),
b2, ...``) with the layer widths ``sizes = [n0, n1, ..., n{L+1}]``; views into
it are cheap, so a kernel can perturb its own copy of ``theta`` and run the
same forward pass on it. The first layer reads the inputs in compressed sparse
rows (a zero pixel only ever adds ``0 * w``); hidden layers skip exact zeros of
their input for the same reason (ReLU outputs are about half zeros).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from fastgrad.config import JIT_OPTIONS
from fastgrad.kernels.forward import sample_hidden, sample_log_prob

#: Kernel codes of the hidden activations (the order of fastgrad.arch.ACTIVATIONS).
SIGMOID, RELU = 0, 1


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
def sample_forward(theta, sizes, w_off, b_off, act, indptr, indices, values, n, pre, post):
    """Forward pass of sample ``n``: pre-activations and activations of every layer.

    ``pre`` and ``post`` are ``(L+1, max width)`` scratch rows; row ``l`` holds
    layer ``l+1`` (``post`` of the last layer is unused). Returns the logits'
    row index ``L``.
    """
    count = sizes.size - 1
    sample_hidden(weight(theta, sizes, w_off, 0), bias(theta, sizes, b_off, 0),
                  indptr, indices, values, n, pre[0, :sizes[1]])
    for layer in range(1, count):
        width = sizes[layer]
        for j in range(width):
            post[layer - 1, j] = activate(pre[layer - 1, j], act)
        dense_affine(post[layer - 1, :width], weight(theta, sizes, w_off, layer),
                     bias(theta, sizes, b_off, layer), pre[layer, :sizes[layer + 1]])
    return count - 1


@njit(**JIT_OPTIONS)
def batch_loss(theta, sizes, w_off, b_off, act, indptr, indices, values, labels, pre, post):
    """Mean cross entropy of the batch (no weight decay); ``pre``/``post`` are scratch."""
    n_samples = labels.size
    out = sizes[sizes.size - 1]
    total = 0.0
    for n in range(n_samples):
        top = sample_forward(theta, sizes, w_off, b_off, act, indptr, indices, values, n,
                             pre, post)
        total += sample_log_prob(pre[top, :out], labels[n])
    return -total / n_samples
