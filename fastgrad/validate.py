"""Compare gradient methods against the NumPy reference: per-tensor reports and a verdict."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from fastgrad import inputs
from fastgrad.compare import abs_error, relative_error
from fastgrad.methods import METHODS, check_method
from fastgrad.reference import PARAM_NAMES, backprop_gradient

#: float64 JIT vs reference, max abs.
DEFAULT_TOL = 1e-9
#: Reference vs the analytic gradient of the same loss, max abs: the central
#: difference's O(h^2) truncation error plus rounding. The book's backprop
#: (which drops the 1e-7 inside the log) is shown beside it for information:
#: it drifts by a relative 1e-7 / y[t], about 1e-7 abs at the book's
#: initialisation on batch 100, more on small batches or after training.
BACKPROP_TOL = 1e-7


@dataclass
class TensorError:
    """Difference of one gradient tensor from its expected value."""

    name: str
    max_abs: float
    max_rel: float
    worst_index: tuple


@dataclass
class Comparison:
    """One method's gradient against an expected gradient."""

    method: str
    against: str
    tol: float
    seconds: float
    tensors: list = field(default_factory=list)

    @property
    def max_abs(self) -> float:
        return max(t.max_abs for t in self.tensors)

    @property
    def ok(self) -> bool:
        return self.max_abs <= self.tol


def compare(grads, expected, method, against, tol, seconds=float("nan")):
    """Per-tensor max absolute and relative error of ``grads`` vs ``expected``.

    Both as defined in :mod:`fastgrad.compare` (relative error floored at
    :data:`~fastgrad.compare.REL_FLOOR`).
    """
    out = Comparison(method, against, tol, seconds)
    for name in PARAM_NAMES:
        got = np.asarray(grads[name], dtype=np.float64)
        want = np.asarray(expected[name], dtype=np.float64)
        if got.shape != want.shape:
            raise ValueError(f"{method} returned {name} of shape {got.shape}, "
                             f"expected {want.shape}")
        diff = abs_error(got, want)
        rel = relative_error(got, want)
        worst = np.unravel_index(int(np.argmax(diff)), diff.shape)
        out.tensors.append(TensorError(name, float(diff.max()), float(rel.max()),
                                       tuple(int(i) for i in worst)))
    return out


def _timed(method, params, x, labels, h, threads):
    start = time.perf_counter()
    grads = METHODS[method].func(params, x, labels, h, threads)
    return grads, time.perf_counter() - start


def validate(params, x, t, methods=None, tol=DEFAULT_TOL, h=1e-4, threads=None,
             backprop_tol=BACKPROP_TOL, reference=None):
    """Check every numerical method against the reference, and against backprop.

    Parameters
    ----------
    params, x, t
        Network parameters and batch (validated and converted here).
    methods : sequence of str, optional
        Methods to check; default every numerical method but the reference.
    tol : float
        Allowed max abs error vs the reference.
    h : float
        Step of the central difference.
    threads : int, optional
        Numba threads.
    backprop_tol : float
        Allowed max abs error of the reference vs the analytic gradient of
        the same loss.
    reference : dict, optional
        A reference gradient already computed on the same inputs.

    Returns
    -------
    list of Comparison
        One per method vs the reference, then the reference vs the analytic
        gradient, then (informational, infinite tolerance) the reference vs
        the book's backprop.
    """
    h = inputs.check_h(h, inputs.NET_H_RANGE)
    threads = inputs.check_threads(threads)
    for name, value in (("tol", tol), ("backprop_tol", backprop_tol)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    params, x, labels = inputs.check_batch(params, x, t)
    if methods is None:
        methods = [m for m, e in METHODS.items() if e.numerical and m != "reference"]
    methods = [check_method(m).name for m in methods]
    if reference is None:
        reference, ref_seconds = _timed("reference", params, x, labels, h, threads)
    else:
        ref_seconds = float("nan")
    reports = []
    for method in methods:
        if method in ("backprop", "reference"):  # the witness and the analytic check
            continue
        grads, seconds = _timed(method, params, x, labels, h, threads)
        reports.append(compare(grads, reference, method, "reference", tol, seconds))
    exact = backprop_gradient(params, x, labels, exact=True)
    reports.append(compare(reference, exact, "reference", "analytic", backprop_tol,
                           ref_seconds))
    book, bp_seconds = _timed("backprop", params, x, labels, h, threads)
    info = compare(reference, book, "reference", "backprop", float("inf"), bp_seconds)
    reports.append(info)
    return reports
