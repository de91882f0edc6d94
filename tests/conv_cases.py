"""Seeded convolutional-net cases shared by the conv test modules."""

from __future__ import annotations

import numpy as np

from fastgrad import reference_conv


def conv_params(rng, filters, channels, filter_size, features, hidden, classes, std=0.5):
    """Gaussian weights (``std``) and small non-zero biases of the book's shapes."""
    return {
        "W1": std * rng.standard_normal((filters, channels, filter_size, filter_size)),
        "b1": 0.1 * rng.standard_normal(filters),
        "W2": std * rng.standard_normal((features, hidden)),
        "b2": 0.1 * rng.standard_normal(hidden),
        "W3": std * rng.standard_normal((hidden, classes)),
        "b3": 0.1 * rng.standard_normal(classes),
    }


def features_of(filters, size, filter_size, stride=1, pad=0):
    out = (size + 2 * pad - filter_size) // stride + 1
    return filters * (out // 2) ** 2


def make_conv_case(filters=4, channels=1, size=12, filter_size=3, hidden=12, classes=10,
                   batch=6, seed=0, stride=1, pad=0, density=0.4, std=0.5):
    """``(params, x, labels, conv)`` with sparse inputs in [0, 1], ``(batch, C, size, size)``."""
    rng = np.random.default_rng(seed)
    feats = features_of(filters, size, filter_size, stride, pad)
    params = conv_params(rng, filters, channels, filter_size, feats, hidden, classes, std)
    shape = (batch, channels, size, size)
    x = rng.random(shape) * (rng.random(shape) < density)
    labels = rng.integers(0, classes, size=batch)
    return params, x, labels, (stride, pad)


def small_digits(x_flat, binarise=False):
    """MNIST rows ``(N, 784)`` as ``(N, 1, 14, 14)``: every other pixel, so a binarised
    digit stays binary (exact ties in the blank regions)."""
    x = np.asarray(x_flat, dtype=np.float64).reshape(-1, 1, 28, 28)[:, :, ::2, ::2]
    return (x > 0.5).astype(np.float64) if binarise else np.ascontiguousarray(x)


def trained(params, x, labels, conv, steps=20, lr=0.1):
    """A few SGD steps with the reference's backprop: weights that have left the init."""
    params = {k: v.copy() for k, v in params.items()}
    for _ in range(steps):
        grads = reference_conv.backprop_gradient(params, x, labels, conv)
        for k in params:
            params[k] -= lr * grads[k]
    return params
