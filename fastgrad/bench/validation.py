"""The reference gradient of a workload, and every method's check against it.

Nothing is timed before it agrees with the NumPy reference: :func:`validate`
runs a method once and compares it entry by entry (:func:`fastgrad.validate.compare`)
within :func:`tolerance`. On networks where the book's loop takes minutes the
reference runs on a seeded sample of entries per tensor
(:func:`fastgrad.validate.reference_gradient`, bitwise the full loop's values
there) and every method is compared on those entries; its time is then scaled
to every entry and labelled :data:`SAMPLED_LABEL`, never passed off as measured.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from fastgrad import inputs, reference_conv
from fastgrad.bench.machine import blas_limits
from fastgrad.methods import check_method
from fastgrad.validate import (
    DEFAULT_TOL,
    compare,
    excused_at_kinks,
    reference_gradient,
    resolve_sample,
)
from fastgrad.validate_conv import conv_reference_gradient, resolve_conv_sample

#: Largest max-abs difference from the reference a central-difference method
#: may show (the same as ``fastgrad check``).
TOL = DEFAULT_TOL
#: Backprop differentiates exactly and drops the 1e-7 inside the log, so it
#: drifts from the central difference by about 1e-7 at the seeded start (see
#: :mod:`fastgrad.validate`); this bound only catches a wrong gradient.
ANALYTIC_TOL = 1e-5
#: How a reference time estimated from a sample is labelled in reports.
SAMPLED_LABEL = "sampled, scaled"


@dataclass(frozen=True, eq=False)
class Reference:
    """The reference gradient of a workload, on every entry or on a seeded sample.

    ``grad`` is NaN where not sampled. ``seconds`` is the measured run; the
    book's loop costs the same two forward passes for every entry, so the
    full loop's time is estimated as ``seconds * n_params / entries``
    ("sampled, scaled").
    """

    grad: dict = field(repr=False)
    seconds: float
    entries: int
    n_params: int
    sample: int | None  # indices per tensor; None: every entry
    seed: int = 0

    @property
    def sampled(self):
        return self.sample is not None

    @property
    def scale(self):
        """``n_params / entries``: the factor from the measured to the full loop."""
        return self.n_params / self.entries

    @property
    def full_seconds(self):
        """The full loop's time: measured, or scaled from the sample."""
        return self.seconds * self.scale

    def as_dict(self):
        return {"sampled": self.sampled, "per_tensor": self.sample, "seed": self.seed,
                "entries": self.entries, "n_params": self.n_params,
                "measured_s": self.seconds, "full_s": self.full_seconds,
                "label": SAMPLED_LABEL if self.sampled else "every entry"}


def run_reference(workload, sample, seed):
    """One run of the book's loop on ``workload``: ``(gradient, seconds)``.

    ``sample`` as resolved by :func:`fastgrad.validate.resolve_sample` (None:
    every entry; else the entries per tensor, NaN elsewhere).
    """
    t0 = time.perf_counter()
    if workload.net == "convnet":
        grad = conv_reference_gradient(workload.params, workload.x, workload.labels,
                                       workload.h, workload.conv, sample, seed)
        return grad, time.perf_counter() - t0
    grad = reference_gradient(workload.params, workload.x, workload.labels, workload.h,
                              workload.arch, sample, seed)
    return grad, time.perf_counter() - t0


def compute_reference(workload, blas_threads=None, sample="auto", seed=0):
    """The NumPy reference on ``workload``, timed.

    Parameters
    ----------
    workload : fastgrad.bench.workload.Workload
    blas_threads : int or None
        BLAS threads of the run (None: the BLAS's own choice).
    sample : 'auto', 'all' or int
        As for :func:`fastgrad.validate.resolve_sample`: 'auto' runs the full
        loop up to :data:`fastgrad.validate.FULL_REFERENCE_MAX` parameters and
        a seeded sample per tensor above (where the full loop takes minutes).
    seed : int
        Seed of the sample.

    Returns
    -------
    Reference
    """
    sample = (resolve_conv_sample(sample) if workload.net == "convnet"
              else resolve_sample(sample, workload.params))
    with blas_limits(blas_threads):
        grad, seconds = run_reference(workload, sample, seed)
    entries = sum(int(np.count_nonzero(~np.isnan(g))) for g in grad.values())
    return Reference(grad, seconds, entries, workload.n_params, sample, seed)


def tolerance(method):
    """Validation tolerance of ``method`` against the reference."""
    return TOL if check_method(method).numerical else ANALYTIC_TOL


def check_gradient(method, grad, ref, workload, seconds=float("nan"), tol=None):
    """:func:`fastgrad.validate.compare` of ``grad`` with the reference (NaN: not sampled).

    Backprop on a ReLU net (the convolutional net included) may differ from the
    central difference where a step of ``+-h`` crosses a ReLU or max-pool
    kink: each entry beyond the tolerance is re-evaluated on the book's loss
    (:func:`fastgrad.validate.excused_at_kinks`) and excused only when its
    one-sided differences show a kink or the difference is finite-difference
    noise, as ``fastgrad check`` does; an entry that is simply wrong fails.
    """
    ref = ref.grad if isinstance(ref, Reference) else ref
    tol = tolerance(method) if tol is None else float(tol)
    excused = None
    if not check_method(method).numerical and workload.arch.activation == "relu":
        excused = excused_at_kinks(workload.params, workload.x, workload.labels, workload.h,
                                   workload.arch, ref, grad, tol, loss_fn=_conv_loss(workload))
    return compare(grad, ref, method, "reference", tol, seconds, excused=excused)


def _conv_loss(workload):
    """The convnet's book loss of ``workload``'s batch as a function of the parameters;
    None for a fully connected net (:func:`fastgrad.validate.excused_at_kinks`'s default)."""
    w = workload
    if w.net != "convnet":
        return None
    return lambda params: reference_conv.loss(params, w.x, w.labels, w.conv)


@dataclass(frozen=True)
class Validation:
    """Outcome of one method's check against the reference."""

    method: str
    threads: int | None
    comparison: object = field(repr=False)  # fastgrad.validate.Comparison
    result: dict = field(repr=False)

    @property
    def max_abs_error(self):
        return self.comparison.max_abs

    @property
    def tol(self):
        return self.comparison.tol

    @property
    def seconds(self):
        return self.comparison.seconds

    @property
    def ok(self):
        return self.comparison.ok

    def as_dict(self):
        c = self.comparison
        return {"method": self.method, "threads": self.threads,
                "max_abs_error": self.max_abs_error, "tol": self.tol, "ok": self.ok,
                "compared": c.compared, "share_within": c.share_within,
                "excused": c.excused, "seconds": self.seconds}


def validate(method, workload, ref, threads=None, tol=None, blas_threads=None):
    """Run ``method`` once and compare it with the reference gradient ``ref``.

    Parameters
    ----------
    method : str
        Registry name.
    workload : fastgrad.bench.workload.Workload
    ref : Reference or dict
        From :func:`compute_reference` (NaN entries were not sampled).
    threads : int, optional
        Numba threads for compiled methods.
    tol : float, optional
        Default :func:`tolerance` of the method.
    blas_threads : int or None
        BLAS threads of a NumPy method; compiled methods run with one.

    Returns
    -------
    Validation
    """
    entry = check_method(method)
    threads = inputs.check_threads(threads) if entry.compiled else None
    w = workload
    with blas_limits(1 if entry.compiled else blas_threads):
        t0 = time.perf_counter()
        grad = w.gradient_func(entry)(w.params, w.x, w.labels, w.h, threads or 1, w.arch)
        seconds = time.perf_counter() - t0
    return Validation(method, threads, check_gradient(method, grad, ref, w, seconds, tol), grad)
