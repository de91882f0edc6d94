"""The book's convolutional net in plain NumPy: the independent witness of the conv methods.

Chapter 7's ``SimpleConvNet``: convolution (``im2col`` and one matrix
product) -> ReLU -> 2x2 max-pool with stride 2 (the first maximum of each
window wins, by ``argmax`` over the ``im2col`` rows) -> affine -> ReLU ->
affine -> max-shifted softmax with the cross entropy ``-sum(log(y[t] + 1e-7))
/ N``. Parameters ``W1 (FN, C, FH, FW)``, ``b1 (FN,)``, ``W2 (FN*PH*PW,
hidden)``, ``b2``, ``W3 (hidden, out)``, ``b3``; inputs ``(N, C, H, W)``;
``conv`` is ``(stride, pad)`` (:class:`fastgrad.convarch.ConvArch`). All in
float64. Nothing here imports the Numba kernels.
"""

from __future__ import annotations

import numpy as np

from fastgrad.functions import LOG_EPS, cross_entropy_error, softmax
from fastgrad.reference import numerical_gradient as book_numerical_gradient

#: Parameter names, in the order of the book's ``numerical_gradient`` loop.
CONV_PARAM_NAMES = ("W1", "b1", "W2", "b2", "W3", "b3")
#: Pooling window and stride of the book's SimpleConvNet.
POOL = 2


def im2col(images, filter_h, filter_w, stride=1, pad=0):
    """Patches of ``images`` ``(N, C, H, W)`` as rows: ``(N*OH*OW, C*FH*FW)``.

    Row ``(n, oy, ox)`` holds the zero-padded input under the filter at output
    position ``(oy, ox)``, in ``(channel, fy, fx)`` order (the book's layout).
    """
    n, c, height, width = images.shape
    out_h = (height + 2 * pad - filter_h) // stride + 1
    out_w = (width + 2 * pad - filter_w) // stride + 1
    img = np.pad(images, [(0, 0), (0, 0), (pad, pad), (pad, pad)], "constant")
    col = np.zeros((n, c, filter_h, filter_w, out_h, out_w))
    for fy in range(filter_h):
        y_stop = fy + stride * out_h
        for fx in range(filter_w):
            x_stop = fx + stride * out_w
            col[:, :, fy, fx, :, :] = img[:, :, fy:y_stop:stride, fx:x_stop:stride]
    return col.transpose(0, 4, 5, 1, 2, 3).reshape(n * out_h * out_w, -1)


def col2im(col, input_shape, filter_h, filter_w, stride=1, pad=0):
    """The adjoint of :func:`im2col`: every row summed back onto the input ``(N, C, H, W)``."""
    n, c, height, width = input_shape
    out_h = (height + 2 * pad - filter_h) // stride + 1
    out_w = (width + 2 * pad - filter_w) // stride + 1
    col = col.reshape(n, out_h, out_w, c, filter_h, filter_w).transpose(0, 3, 4, 5, 1, 2)
    img = np.zeros((n, c, height + 2 * pad + stride - 1, width + 2 * pad + stride - 1))
    for fy in range(filter_h):
        y_stop = fy + stride * out_h
        for fx in range(filter_w):
            x_stop = fx + stride * out_w
            img[:, :, fy:y_stop:stride, fx:x_stop:stride] += col[:, :, fy, fx, :, :]
    return img[:, :, pad:height + pad, pad:width + pad]


def conv_forward(x, W, b, stride=1, pad=0):
    """``(out, col)``: the convolution ``(N, FN, OH, OW)`` and the ``im2col`` rows it used."""
    filters, _, filter_h, filter_w = W.shape
    n, _, height, width = x.shape
    out_h = (height + 2 * pad - filter_h) // stride + 1
    out_w = (width + 2 * pad - filter_w) // stride + 1
    col = im2col(x, filter_h, filter_w, stride, pad)
    out = np.dot(col, W.reshape(filters, -1).T) + b
    return out.reshape(n, out_h, out_w, filters).transpose(0, 3, 1, 2), col


def pool_forward(x):
    """``(out, arg_max)``: 2x2 max-pool with stride 2 of ``x`` ``(N, C, H, W)``.

    ``arg_max`` indexes each window's maximum in ``(dy, dx)`` row-major order,
    the first one on ties (``np.argmax``), as the book's ``Pooling`` layer.
    """
    n, c, height, width = x.shape
    out_h, out_w = height // POOL, width // POOL
    col = im2col(x, POOL, POOL, POOL, 0).reshape(-1, POOL * POOL)
    arg_max = np.argmax(col, axis=1)
    out = np.max(col, axis=1).reshape(n, out_h, out_w, c).transpose(0, 3, 1, 2)
    return out, arg_max


def pool_backward(dout, x_shape, arg_max):
    """Route each window's upstream gradient to the input that won its maximum."""
    dout = dout.transpose(0, 2, 3, 1)
    dmax = np.zeros((dout.size, POOL * POOL))
    dmax[np.arange(arg_max.size), arg_max.ravel()] = dout.ravel()
    dcol = dmax.reshape(-1, x_shape[1] * POOL * POOL)
    return col2im(dcol, x_shape, POOL, POOL, POOL, 0)


def relu(a):
    """``max(a, 0)``: 0 where ``a <= 0``, as the book's ``Relu`` mask."""
    return np.where(a > 0, a, 0.0)


def forward(params, x, conv):
    """Every intermediate of the forward pass, in a dict.

    ``conv`` (pre-ReLU convolution), ``col`` (its ``im2col`` rows), ``relu1``,
    ``pooled``, ``arg_max``, ``hidden`` (pre-ReLU), ``relu2``, ``scores``
    (the logits).
    """
    stride, pad = conv
    a1, col = conv_forward(x, params["W1"], params["b1"], stride, pad)
    z1 = relu(a1)
    pooled, arg_max = pool_forward(z1)
    features = pooled.reshape(pooled.shape[0], -1)
    a2 = np.dot(features, params["W2"]) + params["b2"]
    z2 = relu(a2)
    scores = np.dot(z2, params["W3"]) + params["b3"]
    return {"conv": a1, "col": col, "relu1": z1, "pooled": pooled, "arg_max": arg_max,
            "hidden": a2, "relu2": z2, "scores": scores}


def predict(params, x, conv):
    """Scores (logits) of the last affine layer, as the book's ``SimpleConvNet.predict``."""
    return forward(params, x, conv)["scores"]


def loss(params, x, labels, conv):
    """Book loss: max-shifted softmax of the scores, cross entropy against integer ``labels``."""
    return cross_entropy_error(softmax(predict(params, x, conv)), labels)


def backprop_gradient(params, x, labels, conv, exact=False):
    """Analytic gradient by the book's layered backward pass (``col2im`` for the convolution).

    ``exact=True`` differentiates ``-log(y[t] + 1e-7)`` as written (each
    sample's output error scaled by ``y[t] / (y[t] + 1e-7)``), the derivative
    the central difference approximates; the book's ``SoftmaxWithLoss``
    leaves the ``1e-7`` out.
    """
    stride, pad = conv
    W1 = params["W1"]
    filters, channels, filter_h, filter_w = W1.shape
    batch = x.shape[0]
    cache = forward(params, x, conv)
    y = softmax(cache["scores"])
    rows = np.arange(batch)
    dy = y.copy()
    dy[rows, labels] -= 1.0
    if exact:
        y_t = y[rows, labels]
        dy *= (y_t / (y_t + LOG_EPS))[:, None]
    dy /= batch
    grads = {"W3": np.dot(cache["relu2"].T, dy), "b3": np.sum(dy, axis=0)}
    da2 = np.dot(dy, params["W3"].T) * (cache["hidden"] > 0)
    features = cache["pooled"].reshape(batch, -1)
    grads["W2"] = np.dot(features.T, da2)
    grads["b2"] = np.sum(da2, axis=0)
    dpooled = np.dot(da2, params["W2"].T).reshape(cache["pooled"].shape)
    dz1 = pool_backward(dpooled, cache["relu1"].shape, cache["arg_max"])
    da1 = dz1 * (cache["conv"] > 0)
    dout = da1.transpose(0, 2, 3, 1).reshape(-1, filters)
    grads["b1"] = np.sum(dout, axis=0)
    grads["W1"] = np.dot(cache["col"].T, dout).T.reshape(filters, channels, filter_h, filter_w)
    return {name: grads[name] for name in CONV_PARAM_NAMES}


def numerical_gradient(params, x, labels, h, conv, indices=None):
    """The book's perturb-evaluate-restore central difference, on a private copy of ``params``.

    Parameters
    ----------
    params : dict
        ``W1, b1, W2, b2, W3, b3`` (float64); never modified.
    x : ndarray, shape (N, C, H, W)
    labels : ndarray of int, shape (N,)
    h : float
        Step: each entry is set to ``float(theta) + h`` and ``theta - h`` in turn.
    conv : (stride, pad)
    indices : dict, optional
        ``{name: flat indices}``: only those entries (the others are NaN). The
        full loop runs two forward passes per parameter: hours on the book's
        net (433,890 parameters), so callers sample it.

    Returns
    -------
    dict
        ``(L(theta + h e_p) - L(theta - h e_p)) / 2h`` shaped like ``params``.
    """
    work = {name: np.array(params[name], dtype=np.float64, copy=True)
            for name in CONV_PARAM_NAMES}

    def loss_w(_):
        return loss(work, x, labels, conv)

    if indices is None:
        return {name: book_numerical_gradient(loss_w, work[name], h)
                for name in CONV_PARAM_NAMES}
    out = {}
    for name in CONV_PARAM_NAMES:
        grad = np.full(work[name].shape, np.nan)
        flat, out_flat = work[name].reshape(-1), grad.reshape(-1)
        for p in indices.get(name, ()):
            out_flat[p] = book_numerical_gradient(loss_w, flat[p:p + 1], h)[0]
        out[name] = grad
    return out
