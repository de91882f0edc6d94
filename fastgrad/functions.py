"""Activation and loss functions with the book's semantics (pure NumPy)."""

from __future__ import annotations

import numpy as np

#: Added inside the log of the cross entropy, exactly as in the book.
LOG_EPS = 1e-7


def sigmoid(x):
    """Logistic function ``1 / (1 + exp(-x))``.

    ``exp(-x)`` overflows to inf for ``x < -709``, which gives exactly the
    limit 0; the overflow warning is silenced for that.
    """
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


def sigmoid_grad(x):
    """Derivative of :func:`sigmoid` at ``x``."""
    s = sigmoid(x)
    return (1.0 - s) * s


def relu(x):
    """Rectified linear unit ``max(x, 0)``; 0 at exactly 0, like the book's mask ``x <= 0``."""
    return np.where(x > 0, x, 0.0)


def relu_grad(x):
    """Derivative of :func:`relu`: 1 where ``x > 0``, else 0 (the book's backward mask)."""
    return (x > 0).astype(np.float64)


def softmax(x):
    """Softmax over the last axis, shifted by the maximum for stability."""
    x = x - np.max(x, axis=-1, keepdims=True)
    e = np.exp(x)
    return e / np.sum(e, axis=-1, keepdims=True)


def cross_entropy_error(y, t):
    """Mean cross entropy ``-sum(log(y[i, t_i] + 1e-7)) / batch``.

    Parameters
    ----------
    y : ndarray, shape (batch, classes) or (classes,)
        Predicted probabilities.
    t : ndarray
        One-hot rows shaped like ``y`` or integer labels shaped ``(batch,)``.
    """
    y = np.asarray(y)
    t = np.asarray(t)
    if y.ndim == 1:
        y = y.reshape(1, y.size)
        t = t.reshape(1, t.size) if t.size == y.size else t.reshape(1)
    if t.size == y.size:
        t = t.argmax(axis=1)
    batch_size = y.shape[0]
    return -np.sum(np.log(y[np.arange(batch_size), t.astype(np.intp)] + LOG_EPS)) / batch_size
