"""The book's algorithms in plain NumPy: the independent witness.

Nothing here imports the Numba kernels, so every fast path can be checked
against code that shares none of its arithmetic.
"""

from __future__ import annotations

import numpy as np

from fastgrad.functions import LOG_EPS, cross_entropy_error, sigmoid, sigmoid_grad, softmax

PARAM_NAMES = ("W1", "b1", "W2", "b2")


def numerical_gradient(f, x, h=1e-4, args=()):
    """Central-difference gradient of ``f`` at ``x`` (the book's loop).

    Each element of ``x`` is perturbed in place to ``x + h`` and ``x - h``,
    ``f(x, *args)`` is evaluated, and the element is restored to its exact original
    value, also when ``f`` raises.

    Parameters
    ----------
    f : callable
        Scalar function of the array ``x``.
    x : ndarray of float
        Point of evaluation, any shape; modified only while ``f`` runs.
    h : float
        Step size.
    args : tuple
        Extra arguments of ``f``, passed as they are.

    Returns
    -------
    ndarray
        ``(f(x + h e_p) - f(x - h e_p)) / 2h`` for every index ``p``, shaped like ``x``.
    """
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"x must be a floating-point array, got dtype {x.dtype}")
    grad = np.zeros(x.shape, dtype=np.float64)
    for idx in np.ndindex(x.shape):
        tmp = x[idx]
        try:
            x[idx] = float(tmp) + h
            fxh1 = f(x, *args)
            x[idx] = tmp - h
            fxh2 = f(x, *args)
        finally:
            x[idx] = tmp
        grad[idx] = (fxh1 - fxh2) / (2 * h)
    return grad


def predict(params, x):
    """Softmax output of the two-layer sigmoid network."""
    a1 = np.dot(x, params["W1"]) + params["b1"]
    z1 = sigmoid(a1)
    a2 = np.dot(z1, params["W2"]) + params["b2"]
    return softmax(a2)


def loss(params, x, labels):
    """Book loss: cross entropy of :func:`predict` against integer ``labels``."""
    return cross_entropy_error(predict(params, x), labels)


def net_numerical_gradient(params, x, labels, h=1e-4):
    """The book's ``TwoLayerNet.numerical_gradient`` on a private copy of ``params``."""
    work = {name: np.array(params[name], dtype=np.float64, copy=True) for name in PARAM_NAMES}

    def loss_w(_):
        return loss(work, x, labels)

    return {name: numerical_gradient(loss_w, work[name], h) for name in PARAM_NAMES}


def backprop_gradient(params, x, labels, exact=False):
    """Analytic gradient by backpropagation (the book's chapter 5 formula).

    The book differentiates the loss without the 1e-7 inside the log, so it
    drifts from the numerical gradient by a relative ``1e-7 / (y[t] + 1e-7)``
    per sample, which grows where some ``y[t]`` is tiny. ``exact=True``
    differentiates the loss as written, ``-log(y[t] + 1e-7)``, by scaling each
    sample's output error by ``y[t] / (y[t] + 1e-7)``: the derivative that the
    central difference approximates to ``O(h^2)``.
    """
    W1, b1, W2, b2 = (params[name] for name in PARAM_NAMES)
    batch = x.shape[0]
    a1 = np.dot(x, W1) + b1
    z1 = sigmoid(a1)
    a2 = np.dot(z1, W2) + b2
    y = softmax(a2)
    dy = y.copy()
    rows = np.arange(batch)
    dy[rows, labels] -= 1.0
    if exact:
        y_t = y[rows, labels]
        dy *= (y_t / (y_t + LOG_EPS))[:, None]
    dy /= batch
    da1 = np.dot(dy, W2.T)
    dz1 = sigmoid_grad(a1) * da1
    return {
        "W1": np.dot(x.T, dz1),
        "b1": np.sum(dz1, axis=0),
        "W2": np.dot(z1.T, dy),
        "b2": np.sum(dy, axis=0),
    }
