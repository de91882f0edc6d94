"""The book's convolutional net (chapter 7's ``SimpleConvNet``) with fast, validated gradients.

conv -> ReLU -> 2x2 max-pool with stride 2 -> affine -> ReLU -> affine ->
softmax with loss, with the book's parameter names and shapes, so the book's
scripts run unchanged; its numerical gradient goes through the one registry
(:data:`fastgrad.methods.METHODS`), the reference being
:mod:`fastgrad.reference_conv`.
"""

from __future__ import annotations

import numbers
import os

import numpy as np

from fastgrad import inputs, reference_conv
from fastgrad.convarch import (
    check_conv_params,
    check_conv_x,
    check_input_dim,
    conv_output_size,
    conv_shape,
    make_conv_arch,
    pooled_size,
)
from fastgrad.files import atomic_write
from fastgrad.methods import (
    DEFAULT_METHOD,
    NUMERICAL_METHODS,
    check_method,
    compute_conv_gradient,
)

#: The book's convolution layer: 30 filters of 5x5, no padding, stride 1.
DEFAULT_CONV_PARAM = {"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1}
_CONV_KEYS = {"filter_num": 1, "filter_size": 1, "pad": 0, "stride": 1}  # key: lowest value


def _check_int(name, value, low):
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < low:
        raise ValueError(f"{name} must be at least {low}, got {value}")
    return int(value)


def check_conv_param(conv_param):
    """Return the book's ``conv_param`` dict with every key present and an integer."""
    if not hasattr(conv_param, "keys"):
        raise TypeError(f"conv_param must be a dict with keys {tuple(_CONV_KEYS)}, "
                        f"got {type(conv_param).__name__}")
    missing = [key for key in _CONV_KEYS if key not in conv_param]
    if missing:
        raise ValueError(f"conv_param is missing {', '.join(map(repr, missing))}: expected "
                         f"keys {tuple(_CONV_KEYS)}")
    unknown = sorted(map(repr, set(conv_param) - set(_CONV_KEYS)))
    if unknown:
        raise ValueError(f"conv_param has unknown keys {', '.join(unknown)}: expected "
                         f"{tuple(_CONV_KEYS)}")
    return {key: _check_int(f"conv_param[{key!r}]", conv_param[key], low)
            for key, low in _CONV_KEYS.items()}


class SimpleConvNet:
    """conv - relu - pool - affine - relu - affine - softmax (Deep Learning from Scratch, ch. 7).

    Parameters
    ----------
    input_dim : tuple of int
        ``(channels, height, width)`` of one input; ``(1, 28, 28)`` for MNIST.
    conv_param : dict, optional
        ``filter_num``, ``filter_size``, ``pad``, ``stride`` of the convolution;
        default :data:`DEFAULT_CONV_PARAM` (30 filters of 5x5, pad 0, stride 1).
        The book's output size ``(H + 2*pad - filter_size)/stride + 1`` must be a
        whole number, and even, for the 2x2 pooling with stride 2.
    hidden_size : int
        Width of the hidden affine layer.
    output_size : int
        Number of classes.
    weight_init_std : float
        Standard deviation of the Gaussian weights; biases start at zero.
    seed : int or numpy.random.Generator, optional
        Seed of the weight initialisation.

    Attributes
    ----------
    params : dict
        ``W1 (FN, C, FH, FW)``, ``b1 (FN,)``, ``W2 (FN*(OH/2)*(OW/2), hidden)``,
        ``b2 (hidden,)``, ``W3 (hidden, output)``, ``b3 (output,)``, float64;
        433,890 numbers for the book's defaults.
    """

    def __init__(self, input_dim=(1, 28, 28), conv_param=None, hidden_size=100, output_size=10,
                 weight_init_std=0.01, seed=None):
        self.input_dim = check_input_dim(input_dim)
        conv_param = check_conv_param(DEFAULT_CONV_PARAM if conv_param is None else conv_param)
        hidden_size = _check_int("hidden_size", hidden_size, 1)
        output_size = _check_int("output_size", output_size, 1)
        if isinstance(weight_init_std, bool) or not isinstance(weight_init_std, numbers.Real):
            raise TypeError(f"weight_init_std must be a real number, "
                            f"got {type(weight_init_std).__name__}")
        std = float(weight_init_std)
        if not np.isfinite(std) or std < 0:
            raise ValueError(f"weight_init_std must be finite and >= 0, got {weight_init_std!r}")
        self.conv = make_conv_arch(conv_param["stride"], conv_param["pad"])
        channels, height, width = self.input_dim
        size = conv_param["filter_size"]
        out_h = conv_output_size(height, size, self.conv.stride, self.conv.pad, "input height")
        out_w = conv_output_size(width, size, self.conv.stride, self.conv.pad, "input width")
        pool_h, pool_w = pooled_size(out_h, out_w)
        filters = conv_param["filter_num"]
        try:
            rng = np.random.default_rng(seed)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"seed must be None, a non-negative integer or a Generator: "
                             f"{exc}") from None
        self.params = {
            "W1": std * rng.standard_normal((filters, channels, size, size)),
            "b1": np.zeros(filters),
            "W2": std * rng.standard_normal((filters * pool_h * pool_w, hidden_size)),
            "b2": np.zeros(hidden_size),
            "W3": std * rng.standard_normal((hidden_size, output_size)),
            "b3": np.zeros(output_size),
        }

    def _checked(self, x, t=None):
        params = check_conv_params(self.params)
        x = check_conv_x(x, self.input_dim)
        shape = conv_shape(self.input_dim, params, self.conv)
        labels = None if t is None else inputs.check_labels(t, x.shape[0], shape.classes)
        return params, x, labels

    def predict(self, x):
        """Scores (logits) of the last affine layer, ``(batch, output_size)``, as the book's.

        ``x`` is ``(batch, C, H, W)`` or flat rows ``(batch, C*H*W)``.
        """
        params, x, _ = self._checked(x)
        return reference_conv.predict(params, x, self.conv)

    def loss(self, x, t):
        """Mean cross entropy ``-sum(log(softmax(scores)[t] + 1e-7)) / batch``."""
        params, x, labels = self._checked(x, t)
        return float(reference_conv.loss(params, x, labels, self.conv))

    def accuracy(self, x, t, batch_size=100):
        """Fraction of samples whose arg-max score equals the label.

        Scored ``batch_size`` samples at a time (memory only); unlike the
        book's loop, the samples after the last whole batch are scored too.
        """
        params, x, labels = self._checked(x, t)
        batch_size = _check_int("batch_size", batch_size, 1)
        hits = 0
        for start in range(0, x.shape[0], batch_size):
            scores = reference_conv.predict(params, x[start:start + batch_size], self.conv)
            hits += int(np.sum(np.argmax(scores, axis=1) == labels[start:start + batch_size]))
        return hits / x.shape[0]

    def numerical_gradient(self, x, t, method=DEFAULT_METHOD, h=1e-4, threads=None):
        """Central-difference gradient of :meth:`loss` for every parameter.

        Parameters
        ----------
        x : array_like, shape (batch, C, H, W) or (batch, C*H*W)
        t : array_like
            Integer labels or one-hot rows.
        method : {'incremental', 'jit', 'reference'}
            How to compute it; all give the same finite difference. ``reference``
            is the book's loop: hours on the default net.
        h : float
            Step size.
        threads : int, optional
            Numba threads; the result is bitwise the same for any value.

        Returns
        -------
        dict
            Gradients shaped like :attr:`params`.
        """
        check_method(method, NUMERICAL_METHODS)
        return compute_conv_gradient(method, self.params, x, t, h=h, threads=threads,
                                     stride=self.conv.stride, pad=self.conv.pad,
                                     input_dim=self.input_dim)

    def gradient(self, x, t):
        """Analytic gradient by the book's backpropagation (``im2col``/``col2im``)."""
        return compute_conv_gradient("backprop", self.params, x, t, stride=self.conv.stride,
                                     pad=self.conv.pad, input_dim=self.input_dim)

    def save_params(self, file_name="params.npz"):
        """Write :attr:`params` to ``file_name`` (``.npz``, atomically), as the book's method.

        The book pickles the dict; an ``.npz`` loads without running code.
        Returns the path.
        """
        params = check_conv_params(self.params)
        return atomic_write(os.fspath(file_name), lambda fh: np.savez(fh, **params))

    def load_params(self, file_name="params.npz"):
        """Replace :attr:`params` by those saved in ``file_name`` by :meth:`save_params`.

        Raises
        ------
        ValueError
            A parameter is missing, has another shape than this net's (named
            in the message), or is not finite; :attr:`params` is then left
            as it was.
        """
        with open(os.fspath(file_name), "rb") as fh, np.load(fh, allow_pickle=False) as z:
            saved = {name: z[name] for name in z.files}
        loaded = {}
        for name, current in self.params.items():
            if name not in saved:
                raise ValueError(f"{file_name}: no parameter {name!r}; expected "
                                 f"{', '.join(self.params)}")
            value = saved[name]
            if value.shape != np.shape(current):
                raise ValueError(f"{file_name}: parameter {name!r} has shape {value.shape} "
                                 f"but this net's is {np.shape(current)}")
            if value.dtype.kind not in "fiu" or not np.all(np.isfinite(value)):
                raise ValueError(f"{file_name}: parameter {name!r} must hold finite numbers")
            loaded[name] = np.array(value, dtype=np.float64)
        extra = sorted(set(saved) - set(self.params))
        if extra:
            raise ValueError(f"{file_name}: unexpected entries {', '.join(extra)} (not this "
                             f"net's parameters)")
        self.params = loaded
