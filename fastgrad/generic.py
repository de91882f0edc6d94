"""``numerical_gradient(f, x)`` for any scalar function of an array."""

from __future__ import annotations

import numpy as np
from numba.core.errors import TypingError
from numba.core.registry import CPUDispatcher

from fastgrad import config, inputs, reference
from fastgrad.kernels.generic import generic_gradient
from fastgrad.methods import numba_threads


def numerical_gradient(f, x, h=1e-4, threads=None):
    """Central-difference gradient of a scalar function ``f`` at ``x``.

    A plain Python callable runs the reference loop; a Numba ``@njit``
    function runs the compiled loop in parallel, each thread perturbing its own
    copy. Both return the same values up to rounding.

    Parameters
    ----------
    f : callable
        ``f(x) -> float`` for a float64 array shaped like ``x``.
    x : array_like of real numbers
        Point of evaluation; never modified.
    h : float
        Step size, positive and finite.
    threads : int, optional
        Threads of the compiled loop; default ``$FASTGRAD_THREADS`` or all cores.

    Returns
    -------
    ndarray of float64
        Shaped like ``x``.
    """
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")
    h = inputs.check_h(h)
    threads = inputs.check_threads(threads)
    arr = np.asarray(x)
    if arr.dtype == object or arr.dtype == bool or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise TypeError(f"x must be a real numeric array, got dtype {arr.dtype}")
    if arr.size == 0:
        raise ValueError("x must have at least one element")
    # A private float64 copy: the caller's array is never perturbed.
    work = np.array(arr, dtype=np.float64, order="C", copy=True)
    if not np.all(np.isfinite(work)):
        raise ValueError("x contains NaN or Inf")
    # A 0-d array cannot be reshaped inside a kernel: one element needs no threads.
    if isinstance(f, CPUDispatcher) and work.ndim > 0:
        try:
            with numba_threads(threads):
                flat = generic_gradient(f, work.reshape(-1), work.shape, h,
                                        config.n_chunks(threads, work.size))
        except TypingError as exc:
            raise TypeError(f"f must compile as a scalar function of one float64 array of "
                            f"shape {work.shape}: {' '.join(str(exc).split())[:400]}") from None
        return flat.reshape(work.shape)
    return reference.numerical_gradient(f, work, h)
