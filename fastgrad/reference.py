"""The book's algorithms in plain NumPy: the independent witness.

Nothing here imports the Numba kernels, so every fast path can be checked
against code that shares none of its arithmetic. Networks are the book's
fully connected ones of any depth (``common/multi_layer_net.py``): affine
layers ``W1, b1, ..., W{L+1}, b{L+1}``, sigmoid or ReLU between them, a
max-shifted softmax and the cross entropy with ``1e-7`` inside the log, plus
``0.5 * lambda * sum(W ** 2)`` per weight matrix.
"""

from __future__ import annotations

import numpy as np

from fastgrad.functions import (
    LOG_EPS,
    cross_entropy_error,
    relu,
    relu_grad,
    sigmoid,
    sigmoid_grad,
    softmax,
)

#: Parameter names of the two-layer network.
PARAM_NAMES = ("W1", "b1", "W2", "b2")

_ACTIVATIONS = {"sigmoid": (sigmoid, sigmoid_grad), "relu": (relu, relu_grad)}


def n_layers(params) -> int:
    """Number of affine layers ``L + 1`` (``W1 .. W{L+1}``) in ``params``."""
    n = 0
    while f"W{n + 1}" in params:
        n += 1
    return n


def param_names(params_or_layers):
    """Ordered names ``W1, b1, ..., W{L+1}, b{L+1}`` of a dict or a layer count."""
    count = (params_or_layers if isinstance(params_or_layers, int)
             else n_layers(params_or_layers))
    return tuple(name for i in range(1, count + 1) for name in (f"W{i}", f"b{i}"))


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


def forward(params, x, activation="sigmoid"):
    """Pre-activations of every layer: ``[a1, ..., a{L+1}]`` (the last are the logits)."""
    act = _ACTIVATIONS[activation][0]
    count = n_layers(params)
    pre, z = [], x
    for i in range(1, count + 1):
        a = np.dot(z, params[f"W{i}"]) + params[f"b{i}"]
        pre.append(a)
        if i < count:
            z = act(a)
    return pre


def predict(params, x, activation="sigmoid"):
    """Softmax output of the network."""
    return softmax(forward(params, x, activation)[-1])


def decay_term(params, weight_decay):
    """``sum_l 0.5 * lambda * sum(W_l ** 2)`` (weights only, as in the book)."""
    if weight_decay == 0:
        return 0.0
    return sum(0.5 * weight_decay * np.sum(params[f"W{i}"] ** 2)
               for i in range(1, n_layers(params) + 1))


def loss(params, x, labels, activation="sigmoid", weight_decay=0.0):
    """Book loss: cross entropy of :func:`predict` against integer ``labels``, plus decay."""
    return (cross_entropy_error(predict(params, x, activation), labels)
            + decay_term(params, weight_decay))


def net_numerical_gradient(params, x, labels, h=1e-4, activation="sigmoid", weight_decay=0.0,
                           indices=None):
    """The book's ``numerical_gradient`` of the network on a private copy of ``params``.

    ``indices`` (``{name: flat indices}``) restricts the loop to those
    entries (the others are left NaN): the same values, seconds instead of
    minutes on a deep network.
    """
    names = param_names(params)
    work = {name: np.array(params[name], dtype=np.float64, copy=True) for name in names}

    def loss_w(_):
        return loss(work, x, labels, activation, weight_decay)

    if indices is None:
        return {name: numerical_gradient(loss_w, work[name], h) for name in names}
    out = {}
    for name in names:
        grad = np.full(work[name].shape, np.nan)
        flat, out_flat = work[name].reshape(-1), grad.reshape(-1)
        for p in indices.get(name, ()):
            out_flat[p] = numerical_gradient(loss_w, flat[p:p + 1], h)[0]
        out[name] = grad
    return out


def backprop_gradient(params, x, labels, exact=False, activation="sigmoid", weight_decay=0.0):
    """Analytic gradient by backpropagation (the book's chapter 5 formulas).

    The book differentiates the loss without the 1e-7 inside the log, so it
    drifts from the numerical gradient by a relative ``1e-7 / (y[t] + 1e-7)``
    per sample, which grows where some ``y[t]`` is tiny. ``exact=True``
    differentiates the loss as written, ``-log(y[t] + 1e-7)``, by scaling each
    sample's output error by ``y[t] / (y[t] + 1e-7)``: the derivative that the
    central difference approximates to ``O(h^2)``. Weight decay adds
    ``lambda * W`` to each weight gradient, as in the book.
    """
    act, act_grad = _ACTIVATIONS[activation]
    count = n_layers(params)
    batch = x.shape[0]
    pre = forward(params, x, activation)
    y = softmax(pre[-1])
    dy = y.copy()
    rows = np.arange(batch)
    dy[rows, labels] -= 1.0
    if exact:
        y_t = y[rows, labels]
        dy *= (y_t / (y_t + LOG_EPS))[:, None]
    dy /= batch
    grads, delta = {}, dy
    for i in range(count, 0, -1):
        z_below = act(pre[i - 2]) if i > 1 else x
        grads[f"W{i}"] = np.dot(z_below.T, delta) + weight_decay * params[f"W{i}"]
        grads[f"b{i}"] = np.sum(delta, axis=0)
        if i > 1:
            delta = act_grad(pre[i - 2]) * np.dot(delta, params[f"W{i}"].T)
    return {name: grads[name] for name in param_names(count)}
