"""An extended-precision witness of the central difference the float64 methods compute.

The float64 methods (``reference``, ``jit``, ``incremental``) all compute
``(f(theta + h e_p) - f(theta - h e_p)) / 2h`` and differ from it only by the
rounding of evaluating ``f`` in float64. This module evaluates the same
quotient with ``f`` in ``np.longdouble`` (x87 80-bit on x86-64: 64-bit
significand, eps 1.08e-19), so its own error is about 2^11 times smaller than
the float64 methods' and they can be held to the rounding they actually have
(see :func:`rounding_bound`) instead of to 1e-9.

The net is the book's layered net of any depth: parameters ``W1, b1, ...,
W{L+1}, b{L+1}``, hidden activation ``"sigmoid"`` or ``"relu"``, max-shifted
softmax output and loss ``mean(-log(y[t] + 1e-7)) + 0.5 * lam * sum(W**2)``
(weights only).

Two step conventions, because the methods differ in what they perturb:

``step="float64"``
    ``theta_p + h`` and ``theta_p - h`` are rounded to float64 first, as the
    reference (``x[idx] = float(tmp) + h``) and ``jit`` (``mine[p] = original +
    h``) do, then ``f`` is evaluated in longdouble and divided by ``2h``.
``step="exact"``
    ``theta_p +- h`` are formed in longdouble. ``incremental`` never forms
    ``theta_p + h``: it shifts a pre-activation by ``h v`` (``expm1(-h v)``),
    a logit by ``h z`` (``expm1(h z)``), so its step is exactly ``h``. The two
    conventions differ by ``|g| ulp(theta_p) / 2h``: 5e-10 relative at
    ``theta_p = 800``, far above float64 rounding of ``f``.
"""

from __future__ import annotations

import numpy as np

LD = np.longdouble
#: The float64 value the float64 methods add inside the log, made exact in longdouble.
LOG_EPS = LD(1e-7)
EPS64 = np.finfo(np.float64).eps
#: Whether ``np.longdouble`` is wider than float64 here (x87 80-bit on x86-64 Linux,
#: binary128 on aarch64 Linux); it is float64 on Windows and Apple silicon, where the
#: witness tests are skipped.
EXTENDED = bool(np.finfo(LD).eps < 1e-18)


def param_names(params):
    """``W1, b1, ..., W{L+1}, b{L+1}`` in order, for the layers present in ``params``."""
    n = sum(1 for k in params if k.startswith("W"))
    names = []
    for i in range(1, n + 1):
        names += [f"W{i}", f"b{i}"]
    missing = [k for k in names if k not in params]
    if missing or len(names) != len(params):
        raise ValueError(f"params must be W1, b1, ..., W{n}, b{n}; got {sorted(params)}")
    return names


def _activate(a, activation):
    if activation == "sigmoid":
        with np.errstate(over="ignore"):  # exp(-a) = inf gives exactly 0
            return 1 / (1 + np.exp(-a))
    if activation == "relu":
        return np.where(a > 0, a, LD(0))
    raise ValueError(f"activation must be 'sigmoid' or 'relu', got {activation!r}")


def forward(params, x, activation="sigmoid"):
    """Logits of every sample, in longdouble: ``(batch, out)``."""
    names = param_names(params)
    a = np.asarray(x, dtype=LD)
    n_layers = len(names) // 2
    for i in range(1, n_layers + 1):
        a = a @ np.asarray(params[f"W{i}"], dtype=LD) + np.asarray(params[f"b{i}"], dtype=LD)
        if i < n_layers:
            a = _activate(a, activation)
    return a


def loss(params, x, labels, activation="sigmoid", weight_decay=0.0):
    """The batch loss in longdouble (params may be float64 or longdouble)."""
    logits = forward(params, x, activation)
    shifted = logits - np.max(logits, axis=1, keepdims=True)
    e = np.exp(shifted)
    rows = np.arange(len(labels))
    y_t = e[rows, labels] / np.sum(e, axis=1)
    value = -np.sum(np.log(y_t + LOG_EPS)) / LD(len(labels))
    if weight_decay:
        lam = LD(weight_decay)
        for name in param_names(params)[::2]:
            value += LD(0.5) * lam * np.sum(np.asarray(params[name], dtype=LD) ** 2)
    return value


def numerical_gradient(params, x, labels, h=1e-4, activation="sigmoid", weight_decay=0.0,
                       step="float64"):
    """The central difference of :func:`loss` for every parameter, in longdouble.

    ``params`` and ``x`` are the float64 values the methods see; ``step`` is
    ``"float64"`` or ``"exact"`` (module docstring). Returns a dict of
    longdouble arrays shaped like ``params``.
    """
    if step not in ("float64", "exact"):
        raise ValueError(f"step must be 'float64' or 'exact', got {step!r}")
    names = param_names(params)
    work = {k: np.array(params[k], dtype=LD) for k in names}
    x = np.asarray(x, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.intp)
    h64 = np.float64(h)
    out = {}
    for name in names:
        arr = work[name]
        grad = np.empty(arr.shape, dtype=LD)
        base = np.asarray(params[name], dtype=np.float64)
        for idx in np.ndindex(arr.shape):
            theta = base[idx]
            if step == "float64":
                plus, minus = LD(theta + h64), LD(theta - h64)
            else:
                plus, minus = LD(theta) + LD(h64), LD(theta) - LD(h64)
            arr[idx] = plus
            f_plus = loss(work, x, labels, activation, weight_decay)
            arr[idx] = minus
            f_minus = loss(work, x, labels, activation, weight_decay)
            arr[idx] = LD(theta)
            grad[idx] = (f_plus - f_minus) / (2 * LD(h64))
        out[name] = grad
    return out


def loss_scale(params, x, labels, activation="sigmoid", weight_decay=0.0):
    """``S``: the size of what the float64 loss rounds, per sample.

    A float64 evaluation of the loss is off by a few ulps of each quantity
    it forms, weighted by how much the loss moves with it. Each sample's term
    ``-log(y_t + 1e-7)`` is formed from its logits, with weight ``|y - e_t| <= 2``
    per unit error of a logit, and its logits are rounded at their own size (a
    logit of 800 carries an absolute error of ulp(800) = 1.1e-13 into
    ``logit - max``). So ``S = |L| + mean_n max_k |a2[n, k]|``; the hidden
    layers' rounding enters the logits relatively, and is covered by the same
    term as long as ``|W|`` does not amplify it, which holds for the cases
    tested.
    """
    logits = forward(params, x, activation)
    value = abs(loss(params, x, labels, activation, weight_decay))
    return float(value + np.mean(np.max(np.abs(logits), axis=1)))


def rounding_bound(params, x, labels, h, c, activation="sigmoid", weight_decay=0.0):
    """``c * eps64 * S / 2h``: what float64 rounding of ``f+ - f-`` allows, ``S`` from
    :func:`loss_scale`."""
    return c * EPS64 * loss_scale(params, x, labels, activation, weight_decay) / (2 * h)


# --- the convolutional net (chapter 7's SimpleConvNet) ---------------------------------


def conv_forward(params, x, conv):
    """Logits of the conv net, in longdouble: ``(batch, out)``.

    conv -> ReLU -> 2x2 max-pool with stride 2 -> affine -> ReLU -> affine, by
    the definition of each layer (a sum over the filter's window, the maximum
    of each window), sharing nothing with the reference's ``im2col``.
    """
    stride, pad = conv
    W1 = np.asarray(params["W1"], dtype=LD)
    xp = np.pad(np.asarray(x, dtype=LD), [(0, 0), (0, 0), (pad, pad), (pad, pad)])
    filter_h, filter_w = W1.shape[2:]
    windows = np.lib.stride_tricks.sliding_window_view(xp, (filter_h, filter_w), axis=(2, 3))
    windows = windows[:, :, ::stride, ::stride]  # (N, C, OH, OW, FH, FW)
    a1 = np.einsum("ncyxij,fcij->nfyx", windows, W1)
    a1 = a1 + np.asarray(params["b1"], dtype=LD)[None, :, None, None]
    n, filters, out_h, out_w = a1.shape
    pooled = a1.reshape(n, filters, out_h // 2, 2, out_w // 2, 2).max(axis=(3, 5))
    z1 = np.where(pooled > 0, pooled, LD(0)).reshape(n, -1)
    a2 = z1 @ np.asarray(params["W2"], dtype=LD) + np.asarray(params["b2"], dtype=LD)
    z2 = np.where(a2 > 0, a2, LD(0))
    return z2 @ np.asarray(params["W3"], dtype=LD) + np.asarray(params["b3"], dtype=LD)


def conv_loss(params, x, labels, conv):
    """The conv net's batch loss ``mean(-log(y[t] + 1e-7))`` in longdouble."""
    logits = conv_forward(params, x, conv)
    e = np.exp(logits - np.max(logits, axis=1, keepdims=True))
    rows = np.arange(len(labels))
    y_t = e[rows, labels] / np.sum(e, axis=1)
    return -np.sum(np.log(y_t + LOG_EPS)) / LD(len(labels))


CONV_NAMES = ("W1", "b1", "W2", "b2", "W3", "b3")


def conv_numerical_gradient(params, x, labels, h, conv, step="float64"):
    """The central difference of :func:`conv_loss` for every parameter, in longdouble.

    ``step`` as in :func:`numerical_gradient` (module docstring).
    """
    if step not in ("float64", "exact"):
        raise ValueError(f"step must be 'float64' or 'exact', got {step!r}")
    work = {k: np.array(params[k], dtype=LD) for k in CONV_NAMES}
    labels = np.asarray(labels, dtype=np.intp)
    h64 = np.float64(h)
    out = {}
    for name in CONV_NAMES:
        arr = work[name]
        grad = np.empty(arr.shape, dtype=LD)
        base = np.asarray(params[name], dtype=np.float64)
        for idx in np.ndindex(arr.shape):
            theta = base[idx]
            if step == "float64":
                plus, minus = LD(theta + h64), LD(theta - h64)
            else:
                plus, minus = LD(theta) + LD(h64), LD(theta) - LD(h64)
            arr[idx] = plus
            f_plus = conv_loss(work, x, labels, conv)
            arr[idx] = minus
            f_minus = conv_loss(work, x, labels, conv)
            arr[idx] = LD(theta)
            grad[idx] = (f_plus - f_minus) / (2 * LD(h64))
        out[name] = grad
    return out


def conv_loss_scale(params, x, labels, conv):
    """``S`` of :func:`loss_scale` for the conv net: ``|L| + mean_n max_k |logit[n, k]|``."""
    logits = conv_forward(params, x, conv)
    return float(abs(conv_loss(params, x, labels, conv))
                 + np.mean(np.max(np.abs(logits), axis=1)))


def conv_rounding_bound(params, x, labels, h, c, conv):
    """``c * eps64 * S / 2h`` with ``S`` from :func:`conv_loss_scale`."""
    return c * EPS64 * conv_loss_scale(params, x, labels, conv) / (2 * h)
