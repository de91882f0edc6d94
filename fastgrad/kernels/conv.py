"""Compiled forward pass of the book's convolutional net, and its brute-force central difference.

The net is chapter 7's ``SimpleConvNet``: convolution -> ReLU -> 2x2 max-pool
with stride 2 -> affine -> ReLU -> affine -> max-shifted softmax with the
cross entropy (``-log(y[t] + 1e-7)``), as :mod:`fastgrad.reference_conv`
computes it. Inputs arrive zero-padded, ``(N, C, H + 2 pad, W + 2 pad)``, so
the kernels never test for the border.

Sizes travel in one int64 array ``dims`` (:data:`DIMS`) and the parameters
as one flat vector ``theta`` (``W1.ravel(), b1, W2.ravel(), b2, W3.ravel(),
b3``) that :func:`conv_views` cuts into views: :func:`conv_full_gradient` (the
``jit`` method) perturbs its own copy of ``theta`` per chunk of parameters and
runs the whole forward pass of the batch at ``theta +- h e_p``. Each gradient
entry comes from one chunk, every sum runs in a fixed order, so the result is
bitwise the same for any thread count.

Every sum is formed in a fixed order: a convolution output adds its terms in
``(channel, fy, fx)`` order and then the bias (the reference adds the bias
after its matrix product too); a window's maximum of the ReLU outputs is
``relu`` of the window's maximum, the same value whichever input wins a tie.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from fastgrad.config import JIT_OPTIONS, PARALLEL_OPTIONS
from fastgrad.kernels.forward import sample_log_prob
from fastgrad.kernels.layers import dense_affine

#: Fields of ``dims``: channels, padded height and width, filters, filter height and
#: width, stride, convolution output height and width, hidden units, classes.
DIMS = ("C", "HP", "WP", "FN", "FH", "FW", "STRIDE", "OH", "OW", "HIDDEN", "OUT")
C, HP, WP, FN, FH, FW, STRIDE, OH, OW, HIDDEN, OUT = range(len(DIMS))
#: Pooling window and stride.
POOL = 2


@njit(**JIT_OPTIONS)
def conv_offsets(dims):
    """Start of ``W1, b1, W2, b2, W3, b3`` in ``theta``, and its size (7 int64)."""
    features = dims[FN] * (dims[OH] // POOL) * (dims[OW] // POOL)
    sizes = (dims[FN] * dims[C] * dims[FH] * dims[FW], dims[FN], features * dims[HIDDEN],
             dims[HIDDEN], dims[HIDDEN] * dims[OUT], dims[OUT])
    off = np.zeros(7, dtype=np.int64)
    for i in range(6):
        off[i + 1] = off[i] + sizes[i]
    return off


@njit(**JIT_OPTIONS)
def conv_views(theta, dims):
    """``(W1, b1, W2, b2, W3, b3)``: views into ``theta`` with the book's shapes."""
    off = conv_offsets(dims)
    features = dims[FN] * (dims[OH] // POOL) * (dims[OW] // POOL)
    W1 = theta[off[0]:off[1]].reshape((dims[FN], dims[C], dims[FH], dims[FW]))
    W2 = theta[off[2]:off[3]].reshape((features, dims[HIDDEN]))
    W3 = theta[off[4]:off[5]].reshape((dims[HIDDEN], dims[OUT]))
    return W1, theta[off[1]:off[2]], W2, theta[off[3]:off[4]], W3, theta[off[5]:off[6]]


@njit(**JIT_OPTIONS)
def conv_sample(xpad_n, W1, b1, stride, out):
    """Fill ``out`` ``(FN, OH, OW)`` with one sample's convolution (before the ReLU).

    Terms are added in ``(channel, fy, fx)`` order, the bias last.
    """
    filters, channels, filter_h, filter_w = W1.shape
    out_h, out_w = out.shape[1], out.shape[2]
    for f in range(filters):
        o = out[f]
        o[:, :] = 0.0
        for ch in range(channels):
            img = xpad_n[ch]
            for fy in range(filter_h):
                for fx in range(filter_w):
                    w = W1[f, ch, fy, fx]
                    for oy in range(out_h):
                        row = img[oy * stride + fy]
                        orow = o[oy]
                        if stride == 1:
                            # the same sums; unit stride lets the loop vectorise
                            for ox in range(out_w):
                                orow[ox] += w * row[ox + fx]
                        else:
                            for ox in range(out_w):
                                orow[ox] += w * row[ox * stride + fx]
        bf = b1[f]
        for oy in range(out_h):
            for ox in range(out_w):
                o[oy, ox] += bf


@njit(**JIT_OPTIONS)
def pool_sample(a1_n, features):
    """Fill ``features`` with the 2x2 max-pool (stride 2) of ``relu(a1_n)``, flattened.

    Order ``(filter, py, px)``, as the book's affine layer flattens the pooled
    ``(FN, PH, PW)``. ``max(relu(a_i)) = relu(max(a_i))`` exactly.
    """
    filters, out_h, out_w = a1_n.shape
    pool_h, pool_w = out_h // POOL, out_w // POOL
    for f in range(filters):
        for py in range(pool_h):
            top = a1_n[f, POOL * py]
            bottom = a1_n[f, POOL * py + 1]
            for px in range(pool_w):
                m = max(max(top[POOL * px], top[POOL * px + 1]),
                        max(bottom[POOL * px], bottom[POOL * px + 1]))
                features[(f * pool_h + py) * pool_w + px] = m if m > 0.0 else 0.0


@njit(**JIT_OPTIONS)
def conv_sample_forward(xpad_n, W1, b1, W2, b2, W3, b3, stride, a1_n, features, a2, z2, a3):
    """One sample's forward pass; fills every intermediate (``a3`` holds the logits)."""
    conv_sample(xpad_n, W1, b1, stride, a1_n)
    pool_sample(a1_n, features)
    dense_affine(features, W2, b2, a2)
    for k in range(a2.size):
        z2[k] = a2[k] if a2[k] > 0.0 else 0.0
    dense_affine(z2, W3, b3, a3)


@njit(**JIT_OPTIONS)
def conv_batch_loss(xpad, theta, dims, labels, a1_n, features, a2, z2, a3):
    """Mean cross entropy of the batch at ``theta``; the other arrays are scratch."""
    W1, b1, W2, b2, W3, b3 = conv_views(theta, dims)
    total = 0.0
    for n in range(labels.size):
        conv_sample_forward(xpad[n], W1, b1, W2, b2, W3, b3, dims[STRIDE], a1_n, features,
                            a2, z2, a3)
        total += sample_log_prob(a3, labels[n])
    return -total / labels.size


@njit(**PARALLEL_OPTIONS)
def conv_full_gradient(theta, dims, xpad, labels, h, n_chunks):
    """Central difference w.r.t. the flat ``theta``, a full forward pass per perturbation.

    ``theta`` and ``dims`` as in the module docstring, ``xpad`` the zero-padded
    batch ``(N, C, HP, WP)``, ``labels`` int64. The parameters are split into
    ``n_chunks`` contiguous chunks; each perturbs its own copy of ``theta``.
    """
    n_params = theta.size
    features = dims[FN] * (dims[OH] // POOL) * (dims[OW] // POOL)
    grad = np.empty(n_params)
    for c in prange(n_chunks):
        mine = theta.copy()
        a1_n = np.empty((dims[FN], dims[OH], dims[OW]))
        feat = np.empty(features)
        a2 = np.empty(dims[HIDDEN])
        z2 = np.empty(dims[HIDDEN])
        a3 = np.empty(dims[OUT])
        for p in range(c * n_params // n_chunks, (c + 1) * n_params // n_chunks):
            original = theta[p]
            mine[p] = original + h
            f_plus = conv_batch_loss(xpad, mine, dims, labels, a1_n, feat, a2, z2, a3)
            mine[p] = original - h
            f_minus = conv_batch_loss(xpad, mine, dims, labels, a1_n, feat, a2, z2, a3)
            mine[p] = original
            grad[p] = (f_plus - f_minus) / (2.0 * h)
    return grad


@njit(**PARALLEL_OPTIONS)
def conv_prepare(xpad, W1, b1, W2, b2, W3, b3, stride, labels):
    """Every sample's unperturbed forward pass, parallel over samples.

    Returns ``(a1, features, a2, a3)``: convolution outputs ``(N, FN, OH, OW)``
    before the ReLU, pooled features ``(N, FN*PH*PW)``, hidden pre-activations
    ``(N, hidden)`` and logits ``(N, classes)``.
    """
    n_samples = labels.size
    filters = W1.shape[0]
    out_h = (xpad.shape[2] - W1.shape[2]) // stride + 1
    out_w = (xpad.shape[3] - W1.shape[3]) // stride + 1
    hidden, classes = W3.shape
    a1 = np.empty((n_samples, filters, out_h, out_w))
    features = np.empty((n_samples, W2.shape[0]))
    a2 = np.empty((n_samples, hidden))
    a3 = np.empty((n_samples, classes))
    for n in prange(n_samples):
        z2 = np.empty(hidden)
        conv_sample_forward(xpad[n], W1, b1, W2, b2, W3, b3, stride, a1[n], features[n],
                            a2[n], z2, a3[n])
    return a1, features, a2, a3


@njit(**PARALLEL_OPTIONS)
def conv_logits(xpad, W1, b1, W2, b2, W3, b3, stride):
    """Every sample's logits ``(N, classes)``, parallel over samples.

    The forward pass of :func:`conv_prepare` keeping only its last layer, for
    the loss and accuracy of a training run; each sample is computed on its
    own, so the result is bitwise the same for any thread count.
    """
    n_samples = xpad.shape[0]
    filters = W1.shape[0]
    out_h = (xpad.shape[2] - W1.shape[2]) // stride + 1
    out_w = (xpad.shape[3] - W1.shape[3]) // stride + 1
    hidden, classes = W3.shape
    logits = np.empty((n_samples, classes))
    # one block of samples per task, with its own scratch: no allocation per sample
    n_blocks = min(n_samples, 64)
    for block in prange(n_blocks):
        a1_n = np.empty((filters, out_h, out_w))
        features = np.empty(W2.shape[0])
        a2 = np.empty(hidden)
        z2 = np.empty(hidden)
        for n in range(block * n_samples // n_blocks, (block + 1) * n_samples // n_blocks):
            conv_sample_forward(xpad[n], W1, b1, W2, b2, W3, b3, stride, a1_n, features,
                                a2, z2, logits[n])
    return logits
