"""Benchmark building blocks shared by ``fastgrad bench`` and the ``bench/`` suite.

The standard workload (:mod:`fastgrad.workload`, shared with ``fastgrad
check``) is the book's 784-50-10 sigmoid net (seed 0) on the first 100 MNIST
test digits, or on seeded MNIST-like synthetic digits when no MNIST file is
found; any depth, activation, initialisation, weight decay and data choice
(MNIST, Fashion-MNIST, a dense standardised batch) can be asked for. Every
method is validated against the NumPy reference before it is timed, and the
timed calls' own results are checked again afterwards; on networks where the
book's loop takes minutes, the reference runs on a seeded sample of entries
(:func:`fastgrad.validate.reference_gradient`) and its time is scaled up.
Compile time is measured in subprocesses so it never mixes with run time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fastgrad import inputs, phases, reference
from fastgrad.arch import SIGMOID, Arch
from fastgrad.methods import check_method
from fastgrad.standard import standard_workload
from fastgrad.timing import (  # noqa: F401  (re-exported: timing moved to fastgrad.timing)
    Interleaved,
    Timing,
    blas_info,
    blas_limits,
    cpu_model,
    environment,
    spread,
    thread_counts,
    time_interleaved,
    time_method,
)
from fastgrad.validate import (
    DEFAULT_TOL,
    RELU_ANALYTIC_SHARE,
    compare,
    reference_gradient,
    resolve_sample,
)

#: Largest max-abs difference from the reference a central-difference method
#: may show (the same as ``fastgrad check``).
TOL = DEFAULT_TOL
#: Backprop differentiates exactly and drops the 1e-7 inside the log, so it
#: drifts from the central difference by about 1e-7 at the seeded start (see
#: :mod:`fastgrad.validate`); this bound only catches a wrong gradient.
ANALYTIC_TOL = 1e-5


# --- workload ------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Workload:
    """A validated ``(params, x, labels, h, arch)`` problem and where its data came from."""

    params: dict = field(repr=False)
    x: np.ndarray = field(repr=False)
    labels: np.ndarray = field(repr=False)
    h: float
    #: the data choice when real ("mnist", "fashion", "dense"), else "synthetic" (MNIST-like)
    #: or "synthetic fashion" / "synthetic dense": reports compare it
    data: str
    description: str
    seed: int
    arch: Arch = SIGMOID
    weight_init: float | str | None = None  # as given; None: the default of build_net

    @property
    def layers(self):
        names = reference.param_names(self.params)
        return (self.params["W1"].shape[0],
                *(self.params[n].shape[1] for n in names if n.startswith("W")))

    @property
    def batch(self):
        return self.x.shape[0]

    @property
    def n_params(self):
        return sum(a.size for a in self.params.values())

    @property
    def density(self):
        """Share of non-zero inputs (what picks the sparse or dense first layer)."""
        return float(np.count_nonzero(self.x)) / self.x.size

    @property
    def key(self):
        """Hashable identity, for caching reference gradients."""
        return (self.layers, self.batch, self.data, self.seed, self.h, tuple(self.arch),
                self.weight_init)

    def net_label(self):
        """``784-100-100-10 relu (init relu)``: the architecture in one phrase."""
        text = f"{'-'.join(map(str, self.layers))} {self.arch.activation}"
        if self.weight_init is not None:
            text += f" (init {self.weight_init})"
        if self.arch.weight_decay:
            text += f", weight decay {self.arch.weight_decay:g}"
        return text

    def label(self):
        """Short text such as ``784-50-10 sigmoid, batch 100``."""
        return f"{self.net_label()}, batch {self.batch}"

    def as_dict(self):
        return {"layers": list(self.layers), "batch": self.batch, "n_params": self.n_params,
                "h": self.h, "seed": self.seed, "data": self.data,
                "activation": self.arch.activation, "weight_decay": self.arch.weight_decay,
                "weight_init": self.weight_init, "density": self.density,
                "description": self.description}


def load_workload(hidden=50, batch=100, *, data="mnist", data_dir=None, synthetic=False,
                  seed=0, h=1e-4, activation="sigmoid", weight_init=None, weight_decay=0.0):
    """The benchmark problem: :func:`fastgrad.workload.standard_workload`, validated.

    Parameters
    ----------
    hidden : int or list of int
        Hidden width(s).
    batch : int
        Number of samples (the first test images when real).
    data : {"mnist", "fashion", "dense"}
        MNIST or Fashion-MNIST test images, or the dense standardised batch
        (:func:`fastgrad.workload.dense_batch`).
    data_dir : path, optional
        Folder with the test files; if given they must be there.
    synthetic : bool
        Use seeded synthetic data even if the files are available.
    seed : int
        Seed of the weights (and of synthetic data).
    h : float
        Central-difference step.
    activation, weight_init, weight_decay
        As for :func:`fastgrad.workload.build_net`.

    Returns
    -------
    Workload
        Inputs already converted by :func:`fastgrad.inputs.check_batch`, so
        timings never include that conversion.
    """
    if weight_init is not None and not isinstance(weight_init, str):
        weight_init = float(weight_init)
    work = standard_workload(batch, hidden, seed, data, data_dir=data_dir, synthetic=synthetic,
                             activation=activation, weight_init=weight_init,
                             weight_decay=weight_decay)
    params, x, labels = inputs.check_batch(work.net.params, work.x, work.t)
    kind = data if work.real else "synthetic" if data == "mnist" else f"synthetic {data}"
    return Workload(params, x, labels, inputs.check_h(h), kind, work.source, seed,
                    work.net.arch, weight_init)


# --- validation ------------------------------------------------------------------


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


#: How a reference time estimated from a sample is labelled in reports.
SAMPLED_LABEL = "sampled, scaled"


def _reference_run(workload, sample, seed):
    t0 = time.perf_counter()
    grad = reference_gradient(workload.params, workload.x, workload.labels, workload.h,
                              workload.arch, sample, seed)
    return grad, time.perf_counter() - t0


def compute_reference(workload, blas_threads=None, sample="auto", seed=0):
    """The NumPy reference on ``workload``, timed.

    Parameters
    ----------
    workload : Workload
    blas_threads : int or None
        As for :func:`time_method`.
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
    sample = resolve_sample(sample, workload.params)
    with blas_limits(blas_threads):
        grad, seconds = _reference_run(workload, sample, seed)
    entries = sum(int(np.count_nonzero(~np.isnan(g))) for g in grad.values())
    return Reference(grad, seconds, entries, workload.n_params, sample, seed)


def time_reference(workload, ref, repeats=5, *, budget_s=None, min_rounds=1,
                   blas_threads=None):
    """Time the reference: :func:`time_method` when ``ref`` is full, else the sampled loop.

    A sampled reference reruns the book's loop on the same sampled entries and
    scales each round by ``ref.scale`` ("sampled, scaled"); ``ref``'s own run
    is round one either way.
    """
    if not ref.sampled:
        return time_method("reference", workload, None, repeats, warmup=0, budget_s=budget_s,
                           min_rounds=min_rounds, first_round=(ref.seconds, ref.grad),
                           blas_threads=blas_threads)
    rounds = repeats if budget_s is None else min(repeats, int(budget_s // ref.seconds))
    rounds = max(rounds, min_rounds)
    times, result = [ref.seconds * ref.scale], ref.grad
    with blas_limits(blas_threads) as blas:
        while len(times) < rounds:
            result, seconds = _reference_run(workload, ref.sample, ref.seed)
            times.append(seconds * ref.scale)
    return Timing("reference", None, blas, times, 1, result)


def tolerance(method):
    """Validation tolerance of ``method`` against the reference."""
    return TOL if check_method(method).numerical else ANALYTIC_TOL


def check_gradient(method, grad, ref, workload, seconds=float("nan"), tol=None):
    """:func:`fastgrad.validate.compare` of ``grad`` with the reference (NaN: not sampled).

    Backprop on a ReLU net needs only :data:`fastgrad.validate.RELU_ANALYTIC_SHARE`
    of the entries within tolerance: a step across a kink legitimately moves the
    central difference away from the derivative.
    """
    ref = ref.grad if isinstance(ref, Reference) else ref
    tol = tolerance(method) if tol is None else float(tol)
    share = (RELU_ANALYTIC_SHARE if not check_method(method).numerical
             and workload.arch.activation == "relu" else 1.0)
    return compare(grad, ref, method, "reference", tol, seconds, min_share=share)


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
                "min_share": c.min_share, "seconds": self.seconds}


def validate(method, workload, ref, threads=None, tol=None, blas_threads=None):
    """Run ``method`` once and compare it with the reference gradient ``ref``.

    Parameters
    ----------
    method : str
        Registry name.
    workload : Workload
    ref : Reference or dict
        From :func:`compute_reference` (NaN entries were not sampled).
    threads : int, optional
        Numba threads for compiled methods.
    tol : float, optional
        Default :func:`tolerance` of the method.
    blas_threads : int or None
        As for :func:`time_method`.

    Returns
    -------
    Validation
    """
    entry = check_method(method)
    threads = inputs.check_threads(threads) if entry.compiled else None
    w = workload
    with blas_limits(1 if entry.compiled else blas_threads):
        t0 = time.perf_counter()
        grad = entry.func(w.params, w.x, w.labels, w.h, threads or 1, w.arch)
        seconds = time.perf_counter() - t0
    return Validation(method, threads, check_gradient(method, grad, ref, w, seconds, tol), grad)


def profile_phases(method, workload, repeats=5):
    """Phase profile of compiled ``method`` at one thread (BLAS at one too).

    Returns
    -------
    fastgrad.phases.PhaseProfile
        Median seconds per phase; ``serial_fraction`` and ``projection()``
        (Amdahl, from that fraction) follow from it.
    """
    entry = check_method(method)
    if not entry.compiled:
        raise ValueError(f"profile_phases needs a compiled method, got {method!r}")
    w = workload
    with blas_limits(1):
        return phases.profile(entry.func, (w.params, w.x, w.labels, w.h, 1, w.arch),
                              repeats, method)


# --- start-up (compile) time ----------------------------------------------------------

_CHILD = """\
import json, sys, time
t0 = time.perf_counter()
import fastgrad
t1 = time.perf_counter()
from fastgrad import benchmark
method, batch, save, act = sys.argv[1], int(sys.argv[3]), sys.argv[4], sys.argv[5]
hidden = [int(v) for v in sys.argv[2].split(",")]
w = benchmark.load_workload(hidden, batch, synthetic=True, activation=act)
t2 = time.perf_counter()
g = fastgrad.compute_gradient(method, w.params, w.x, w.labels, h=w.h, activation=act)
t3 = time.perf_counter()
done = time.time()
fastgrad.compute_gradient(method, w.params, w.x, w.labels, h=w.h, activation=act)
t4 = time.perf_counter()
if save:
    import numpy as np
    np.savez(save, **g)
print(json.dumps({"done": done, "import_s": t1 - t0, "first_call_s": t3 - t2,
                  "second_call_s": t4 - t3}))
"""


def measure_startup(method, cache_dir=None, *, hidden=50, batch=1, save_to=None, timeout=900,
                    activation="sigmoid"):
    """Time ``import fastgrad`` + the first gradient in a fresh Python process.

    Parameters
    ----------
    method : str
    cache_dir : path, optional
        ``NUMBA_CACHE_DIR`` of the child (an empty folder: cold start).
    hidden : int or list of int
        Hidden width(s) of the child's net (synthetic digits, seed 0).
    batch : int
        One sample keeps the run itself negligible next to compiling.
    save_to : path, optional
        ``.npz`` file for the child's gradient, to validate it.
    timeout : float
        Seconds before the child is killed.
    activation : {"sigmoid", "relu"}
        Hidden activation of the child's net.

    Returns
    -------
    dict
        ``wait_s`` (process start to first gradient), ``import_s``,
        ``first_call_s``, ``run_s`` (a second call) and ``compile_s`` (first
        call minus run: compiling or loading the kernels).
    """
    check_method(method)
    env = dict(os.environ)
    if cache_dir is not None:
        env["NUMBA_CACHE_DIR"] = os.fspath(cache_dir)
    # the child must import this very copy of fastgrad
    root = os.fspath(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    widths = [hidden] if isinstance(hidden, (int, np.integer)) else list(hidden)
    argv = [sys.executable, "-c", _CHILD, method, ",".join(str(int(v)) for v in widths),
            str(batch), os.fspath(save_to) if save_to else "", activation]
    start = time.time()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout,
                          check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"start-up measurement of {method} failed (exit {proc.returncode}):"
                           f"\n{proc.stderr[-2000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    first, run = out["first_call_s"], out["second_call_s"]
    return {"wait_s": out["done"] - start, "import_s": out["import_s"], "first_call_s": first,
            "run_s": run, "compile_s": max(0.0, first - run)}


def measure_compile(method, *, hidden=50, batch=1, activation="sigmoid"):
    """Cold start (empty Numba cache) then warm start (same cache) of ``method``.

    Returns
    -------
    dict
        ``{"cold": ..., "warm": ...}`` as from :func:`measure_startup`.
    """
    with tempfile.TemporaryDirectory(prefix="fastgrad-numba-") as cache:
        cold = measure_startup(method, cache, hidden=hidden, batch=batch, activation=activation)
        warm = measure_startup(method, cache, hidden=hidden, batch=batch, activation=activation)
    return {"cold": cold, "warm": warm}
