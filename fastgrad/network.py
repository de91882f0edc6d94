"""The book's fully connected networks with fast, validated numerical gradients.

:class:`MultiLayerNet` is chapter 6's network of any depth; :class:`TwoLayerNet`
is its one-hidden-layer case with chapter 4's initialisation (sigmoid) or
chapter 5's (``activation="relu"``). Both hold float64 ``params``
``W1, b1, ..., W{L+1}, b{L+1}`` and share one validation path and one registry.
"""

from __future__ import annotations

import numbers

import numpy as np

from fastgrad import inputs, reference
from fastgrad.arch import Arch, check_activation, check_weight_decay
from fastgrad.methods import DEFAULT_METHOD, NUMERICAL_METHODS, check_method, compute_gradient

#: Named initialisations: std = sqrt(gain / fan_in) (He for ReLU, Xavier for sigmoid).
INIT_GAINS = {"relu": 2.0, "he": 2.0, "sigmoid": 1.0, "xavier": 1.0}
#: The initialisation suited to each hidden activation (the book's chapter 6.2), which a
#: :class:`MultiLayerNet` takes unless told otherwise.
MATCHED_INIT = {"relu": "he", "sigmoid": "xavier"}
#: Chapter 4's ``TwoLayerNet`` weight std, the default of a net with one hidden layer.
TWO_LAYER_STD = 0.01


def default_weight_init(activation, n_hidden):
    """The initial weight scale of a net given none: chapter 4's 0.01 for one hidden layer
    (the book's ``TwoLayerNet``), else He for ReLU or Xavier for sigmoid.

    A deeper net from ``std = 0.01`` shrinks its signal by about ``0.01 sqrt(fan_in)``
    per layer (~0.1 for 100 units): five ReLU layers pass the output layer nearly
    nothing, and its gradient too, so SGD stays at chance.
    """
    return TWO_LAYER_STD if n_hidden == 1 else MATCHED_INIT[check_activation(activation)]


def init_std(weight_init_std, fan_in):
    """Standard deviation of a weight matrix with ``fan_in`` inputs (a number or a name)."""
    if isinstance(weight_init_std, str):
        return float(np.sqrt(INIT_GAINS[weight_init_std.lower()] / fan_in))
    return float(weight_init_std)


def _check_size(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")
    return int(value)


def _check_hidden_list(hidden_size_list):
    if isinstance(hidden_size_list, (str, bytes)) or not hasattr(hidden_size_list, "__len__"):
        raise TypeError(f"hidden_size_list must be a list of integers, "
                        f"got {type(hidden_size_list).__name__}")
    if len(hidden_size_list) == 0:
        raise ValueError("hidden_size_list must not be empty: give at least one hidden layer")
    return [_check_size(f"hidden_size_list[{i}]", v) for i, v in enumerate(hidden_size_list)]


def _init_scales(weight_init_std, fan_ins):
    """Standard deviation of each weight matrix from a number or an init name."""
    if isinstance(weight_init_std, str):
        if weight_init_std.lower() not in INIT_GAINS:
            raise ValueError(f"weight_init_std must be a number or one of "
                             f"{tuple(INIT_GAINS)}, got {weight_init_std!r}")
        return [init_std(weight_init_std, n) for n in fan_ins]
    if isinstance(weight_init_std, bool) or not isinstance(weight_init_std, numbers.Real):
        raise TypeError(f"weight_init_std must be a real number or one of {tuple(INIT_GAINS)}, "
                        f"got {type(weight_init_std).__name__}")
    std = float(weight_init_std)
    if not np.isfinite(std) or std < 0:
        raise ValueError(f"weight_init_std must be finite and >= 0, got {weight_init_std!r}")
    return [std] * len(fan_ins)


def _rng(seed):
    try:
        return np.random.default_rng(seed)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"seed must be None, a non-negative integer or a Generator: "
                         f"{exc}") from None


class MultiLayerNet:
    """Fully connected network with softmax output (Deep Learning from Scratch, ch. 6).

    Parameters
    ----------
    input_size : int
        Input width (784 for MNIST).
    hidden_size_list : sequence of int
        Widths of the hidden layers, e.g. ``[100, 100, 100, 100]``.
    output_size : int
        Number of classes.
    activation : {'relu', 'sigmoid'}
        Hidden-layer activation.
    weight_init_std : float or {'relu', 'he', 'sigmoid', 'xavier'}, optional
        Standard deviation of the Gaussian weights, or He (``sqrt(2 / fan_in)``)
        or Xavier (``sqrt(1 / fan_in)``); biases start at zero. Default: the
        one suited to ``activation``, He for ReLU (the book's default,
        ``'relu'``) and Xavier for sigmoid (:data:`MATCHED_INIT`).
    weight_decay_lambda : float
        L2 strength: the loss adds ``0.5 * lambda * sum(W ** 2)`` per weight matrix.
    seed : int or numpy.random.Generator, optional
        Seed of the weight initialisation.
    """

    def __init__(self, input_size, hidden_size_list, output_size, activation="relu",
                 weight_init_std=None, weight_decay_lambda=0, seed=None):
        sizes = ([_check_size("input_size", input_size)] + _check_hidden_list(hidden_size_list)
                 + [_check_size("output_size", output_size)])
        self.arch = Arch(check_activation(activation), check_weight_decay(weight_decay_lambda))
        if weight_init_std is None:
            weight_init_std = MATCHED_INIT[self.arch.activation]
        scales = _init_scales(weight_init_std, sizes[:-1])
        rng = _rng(seed)
        self.params = {}
        for i in range(1, len(sizes)):
            self.params[f"W{i}"] = scales[i - 1] * rng.standard_normal((sizes[i - 1], sizes[i]))
            self.params[f"b{i}"] = np.zeros(sizes[i])

    @property
    def sizes(self):
        """Layer widths ``[input, hidden..., output]``."""
        count = reference.n_layers(self.params)
        return [self.params["W1"].shape[0]] + [self.params[f"W{i}"].shape[1]
                                               for i in range(1, count + 1)]

    def _checked(self, x, t=None):
        params = inputs.check_params(self.params)
        x = inputs.check_x(x, params["W1"].shape[0])
        if t is None:
            return params, x, None
        return params, x, inputs.check_labels(t, x.shape[0], inputs.output_size(params))

    def predict(self, x):
        """Softmax probabilities, shape ``(batch, output_size)``."""
        params, x, _ = self._checked(x)
        return reference.predict(params, x, self.arch.activation)

    def loss(self, x, t):
        """Mean cross entropy ``-sum(log(y[t] + 1e-7)) / batch`` plus the weight decay."""
        params, x, labels = self._checked(x, t)
        return float(reference.loss(params, x, labels, *self.arch))

    def accuracy(self, x, t):
        """Fraction of samples whose arg-max prediction equals the label."""
        params, x, labels = self._checked(x, t)
        y = reference.predict(params, x, self.arch.activation)
        return float(np.mean(np.argmax(y, axis=1) == labels))

    def numerical_gradient(self, x, t, method=DEFAULT_METHOD, h=1e-4, threads=None, *,
                           client=None, chunk_size=None):
        """Central-difference gradient of :meth:`loss` for every parameter.

        Parameters
        ----------
        x : array_like, shape (batch, input_size)
        t : array_like
            Integer labels or one-hot rows.
        method : {'incremental', 'jit', 'reference'}
            How to compute it; all give the same finite difference.
        h : float
            Step size.
        threads : int, optional
            Numba threads; the result is bitwise the same for any value.
        client : dask.distributed.Client, optional
            Compute on this Dask cluster, split by chunks of parameters; bitwise
            the same result (see :func:`fastgrad.compute_gradient`).
        chunk_size : int, optional
            Parameters per task with a ``client`` (default about 1 s of compute).

        Returns
        -------
        dict
            Gradients shaped like :attr:`params`.
        """
        check_method(method, NUMERICAL_METHODS)
        return compute_gradient(method, self.params, x, t, h=h, threads=threads,
                                activation=self.arch.activation,
                                weight_decay=self.arch.weight_decay, client=client,
                                chunk_size=chunk_size)

    def gradient(self, x, t):
        """Analytic gradient by backpropagation (the book's chapter 5), ``lambda * W`` added."""
        return compute_gradient("backprop", self.params, x, t, activation=self.arch.activation,
                                weight_decay=self.arch.weight_decay)


class TwoLayerNet(MultiLayerNet):
    """Two-layer network with softmax output (Deep Learning from Scratch, ch. 4 and 5).

    Parameters
    ----------
    input_size, hidden_size, output_size : int
        Layer widths (784, 50, 10 for MNIST).
    weight_init_std : float
        Standard deviation of the Gaussian weights; biases start at zero.
    seed : int or numpy.random.Generator, optional
        Seed of the weight initialisation.
    activation : {'sigmoid', 'relu'}
        Sigmoid (chapter 4) or ReLU (chapter 5).
    """

    def __init__(self, input_size, hidden_size, output_size, weight_init_std=0.01, seed=None,
                 activation="sigmoid"):
        if weight_init_std is None or isinstance(weight_init_std, str):
            raise TypeError(f"weight_init_std must be a real number, "
                            f"got {type(weight_init_std).__name__}")
        super().__init__(input_size, [_check_size("hidden_size", hidden_size)], output_size,
                         activation=activation, weight_init_std=weight_init_std, seed=seed)
