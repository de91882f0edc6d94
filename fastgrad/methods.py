"""The one registry of gradient methods, shared by the tests, the benchmarks and the CLI.

Every entry takes already-validated inputs (see :func:`fastgrad.inputs.check_batch`)
``(params, x, labels, h, threads)`` and returns a dict shaped like ``params``.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import numba
import numpy as np

from fastgrad import config, inputs, reference
from fastgrad.kernels.forward import dense_to_csr
from fastgrad.kernels.full import full_gradient
from fastgrad.kernels.incremental import incremental_gradient


@dataclass(frozen=True)
class Method:
    """A gradient method: its function and what kind of gradient it computes."""

    name: str
    func: Callable
    numerical: bool  # central difference (True) or analytic (False)
    compiled: bool  # runs Numba kernels (threads apply)
    summary: str


@contextmanager
def numba_threads(threads):
    """Run the body with Numba limited to ``threads`` threads."""
    previous = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        yield
    finally:
        numba.set_num_threads(previous)


def _reference(params, x, labels, h, threads):
    return reference.net_numerical_gradient(params, x, labels, h)


def _backprop(params, x, labels, h, threads):
    return reference.backprop_gradient(params, x, labels)


def _jit(params, x, labels, h, threads):
    n_in, n_hidden = params["W1"].shape
    n_out = params["W2"].shape[1]
    theta = np.concatenate([params[name].ravel() for name in reference.PARAM_NAMES])
    with numba_threads(threads):
        indptr, indices, values = dense_to_csr(x)
        flat = full_gradient(theta, n_in, n_hidden, n_out, indptr, indices, values, labels, h,
                             config.n_chunks(threads, theta.size))
    out, start = {}, 0
    for name in reference.PARAM_NAMES:
        size = params[name].size
        out[name] = flat[start:start + size].reshape(params[name].shape).copy()
        start += size
    return out


def _incremental(params, x, labels, h, threads):
    with numba_threads(threads):
        indptr, indices, values = dense_to_csr(x)
        gW1, gb1, gW2, gb2 = incremental_gradient(
            params["W1"], params["b1"], params["W2"], params["b2"],
            indptr, indices, values, labels, h,
        )
    return {"W1": gW1, "b1": gb1, "W2": gW2, "b2": gb2}


METHODS = {
    m.name: m
    for m in (
        Method("reference", _reference, True, False,
               "NumPy, the book's loop: two full forward passes per parameter"),
        Method("jit", _jit, True, True,
               "Numba, full compiled forward pass per parameter, prange over parameters"),
        Method("incremental", _incremental, True, True,
               "Numba, recomputes only what each parameter moves, from cached activations"),
        Method("backprop", _backprop, False, False,
               "NumPy analytic backpropagation (chapter 5), for comparison"),
    )
}

#: Methods that compute the central difference (all but backprop).
NUMERICAL_METHODS = tuple(name for name, m in METHODS.items() if m.numerical)
#: Methods that run Numba kernels.
COMPILED_METHODS = tuple(name for name, m in METHODS.items() if m.compiled)
DEFAULT_METHOD = "incremental"


def check_method(method, allowed=None):
    """Return the :class:`Method` called ``method``; ``allowed`` limits the choice."""
    allowed = tuple(METHODS) if allowed is None else tuple(allowed)
    if not isinstance(method, str):
        raise TypeError(f"method must be a string, one of {allowed}, got {type(method).__name__}")
    if method not in allowed:
        raise ValueError(f"unknown method {method!r}: expected one of {allowed}")
    return METHODS[method]


def compute_gradient(method, params, x, t, h=1e-4, threads=None):
    """Validate the inputs and return the gradient of the loss by ``method``.

    Parameters
    ----------
    method : str
        A key of :data:`METHODS`.
    params : dict
        ``W1 (I,H)``, ``b1 (H,)``, ``W2 (H,O)``, ``b2 (O,)``; never modified.
    x : array_like, shape (batch, I)
        Inputs.
    t : array_like
        Integer labels ``(batch,)`` or one-hot rows ``(batch, O)``.
    h : float
        Central-difference step in ``[1e-300, 1]`` (ignored by ``backprop``).
    threads : int, optional
        Numba threads; default ``$FASTGRAD_THREADS`` or all cores.

    Returns
    -------
    dict
        Gradient arrays (float64) shaped like ``params``.
    """
    entry = check_method(method)
    h = inputs.check_h(h, inputs.NET_H_RANGE)
    threads = inputs.check_threads(threads)
    params, x, labels = inputs.check_batch(params, x, t)
    return entry.func(params, x, labels, h, threads)
