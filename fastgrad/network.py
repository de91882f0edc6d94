"""``TwoLayerNet``: the book's network with fast, validated numerical gradients."""

from __future__ import annotations

import numbers

import numpy as np

from fastgrad import inputs, reference
from fastgrad.methods import DEFAULT_METHOD, NUMERICAL_METHODS, check_method, compute_gradient


class TwoLayerNet:
    """Two-layer sigmoid network with softmax output (Deep Learning from Scratch, ch. 4).

    Parameters
    ----------
    input_size, hidden_size, output_size : int
        Layer widths (784, 50, 10 for MNIST).
    weight_init_std : float
        Standard deviation of the Gaussian weights; biases start at zero.
    seed : int or numpy.random.Generator, optional
        Seed of the weight initialisation.
    """

    def __init__(self, input_size, hidden_size, output_size, weight_init_std=0.01, seed=None):
        sizes = {"input_size": input_size, "hidden_size": hidden_size,
                 "output_size": output_size}
        for name, value in sizes.items():
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if isinstance(weight_init_std, bool) or not isinstance(weight_init_std, numbers.Real):
            raise TypeError(f"weight_init_std must be a real number, "
                            f"got {type(weight_init_std).__name__}")
        std = float(weight_init_std)
        if not np.isfinite(std) or std < 0:
            raise ValueError(f"weight_init_std must be finite and >= 0, got {weight_init_std!r}")
        try:
            rng = np.random.default_rng(seed)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"seed must be None, a non-negative integer or a Generator: "
                             f"{exc}") from None
        self.params = {
            "W1": std * rng.standard_normal((input_size, hidden_size)),
            "b1": np.zeros(hidden_size),
            "W2": std * rng.standard_normal((hidden_size, output_size)),
            "b2": np.zeros(output_size),
        }

    def _checked(self, x, t=None):
        params = inputs.check_params(self.params)
        x = inputs.check_x(x, params["W1"].shape[0])
        if t is None:
            return params, x, None
        return params, x, inputs.check_labels(t, x.shape[0], params["W2"].shape[1])

    def predict(self, x):
        """Softmax probabilities, shape ``(batch, output_size)``."""
        params, x, _ = self._checked(x)
        return reference.predict(params, x)

    def loss(self, x, t):
        """Mean cross entropy ``-sum(log(y[t] + 1e-7)) / batch``."""
        params, x, labels = self._checked(x, t)
        return float(reference.loss(params, x, labels))

    def accuracy(self, x, t):
        """Fraction of samples whose arg-max prediction equals the label."""
        params, x, labels = self._checked(x, t)
        return float(np.mean(np.argmax(reference.predict(params, x), axis=1) == labels))

    def numerical_gradient(self, x, t, method=DEFAULT_METHOD, h=1e-4, threads=None):
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

        Returns
        -------
        dict
            Gradients shaped like :attr:`params`.
        """
        check_method(method, NUMERICAL_METHODS)
        return compute_gradient(method, self.params, x, t, h=h, threads=threads)

    def gradient(self, x, t):
        """Analytic gradient by backpropagation (the book's chapter 5)."""
        return compute_gradient("backprop", self.params, x, t)
