"""Benchmark building blocks shared by ``fastgrad bench`` and the ``bench/`` suite.

The standard workload (:mod:`fastgrad.workload`, shared with ``fastgrad
check``) is the book's 784-50-10 net (seed 0) on the first 100 MNIST test
digits, or on seeded MNIST-like synthetic digits when no MNIST file is found.
Every method is validated against the NumPy reference before it is timed, and
the timed calls' own results are checked again afterwards.
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

from fastgrad import inputs, reference
from fastgrad.methods import METHODS, check_method
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
from fastgrad.validate import DEFAULT_TOL
from fastgrad.workload import standard_workload

#: Largest max-abs difference from the reference a central-difference method
#: may show (the same as ``fastgrad check``).
TOL = DEFAULT_TOL
#: Backprop differentiates exactly and drops the 1e-7 inside the log, so it
#: drifts from the central difference by about 1e-7 at the seeded start (see
#: :mod:`fastgrad.validate`); this bound only catches a wrong gradient.
ANALYTIC_TOL = 1e-5


def tolerance(method):
    """Validation tolerance of ``method`` against the reference."""
    return TOL if check_method(method).numerical else ANALYTIC_TOL


# --- workload ------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Workload:
    """A validated ``(params, x, labels, h)`` problem and where its data came from."""

    params: dict = field(repr=False)
    x: np.ndarray = field(repr=False)
    labels: np.ndarray = field(repr=False)
    h: float
    data: str  # "mnist" (real MNIST test digits) or "synthetic": reports compare it
    description: str
    seed: int

    @property
    def layers(self):
        return (self.params["W1"].shape[0], self.params["W1"].shape[1],
                self.params["W2"].shape[1])

    @property
    def batch(self):
        return self.x.shape[0]

    @property
    def n_params(self):
        return sum(a.size for a in self.params.values())

    @property
    def key(self):
        """Hashable identity, for caching reference gradients."""
        return (self.layers, self.batch, self.data, self.seed, self.h)

    def label(self):
        """Short text such as ``784-50-10, batch 100``."""
        return f"{'-'.join(map(str, self.layers))}, batch {self.batch}"

    def as_dict(self):
        return {"layers": list(self.layers), "batch": self.batch, "n_params": self.n_params,
                "h": self.h, "seed": self.seed, "data": self.data,
                "description": self.description}


def load_workload(hidden=50, batch=100, *, data_dir=None, synthetic=False, seed=0, h=1e-4):
    """The benchmark problem: :func:`fastgrad.workload.standard_workload`, validated.

    Parameters
    ----------
    hidden, batch : int
        Hidden width and number of samples (the first test digits when real).
    data_dir : path, optional
        Folder with the MNIST test files; if given they must be there.
    synthetic : bool
        Use seeded synthetic digits even if MNIST is available.
    seed : int
        Seed of the weights (and of synthetic digits).
    h : float
        Central-difference step.

    Returns
    -------
    Workload
        Inputs already converted by :func:`fastgrad.inputs.check_batch`, so
        timings never include that conversion.
    """
    work = standard_workload(batch, hidden, seed, data_dir=data_dir, synthetic=synthetic)
    params, x, labels = inputs.check_batch(work.net.params, work.x, work.t)
    return Workload(params, x, labels, inputs.check_h(h), "mnist" if work.real else "synthetic",
                    work.source, seed)


# --- validation ------------------------------------------------------------------


@dataclass(frozen=True)
class SampledReference:
    """Reference gradient at a few parameters, for workloads too big for the full one."""

    entries: dict  # name -> (flat indices, values)

    @property
    def size(self):
        return sum(len(i) for i, _ in self.entries.values())


def compute_reference(workload, blas_threads=None):
    """Return ``(gradient, seconds)`` of the NumPy reference on ``workload``.

    ``blas_threads`` as for :func:`time_method`.
    """
    with blas_limits(blas_threads):
        t0 = time.perf_counter()
        grad = METHODS["reference"].func(workload.params, workload.x, workload.labels,
                                         workload.h, 1)
        return grad, time.perf_counter() - t0


def sampled_reference(workload, n=96, seed=0):
    """The reference's central difference at about ``n`` parameters spread over all four.

    Half the ``W1`` samples come from rows of pixels that are non-zero
    somewhere in the batch, since the other rows have an exactly zero gradient.
    It runs the reference's own loop on a one-element view of each parameter,
    so the values are bitwise those of the full reference.
    """
    rng = np.random.default_rng(seed)
    work = {k: v.copy() for k, v in workload.params.items()}

    def loss(_):
        return reference.loss(work, workload.x, workload.labels)

    active = np.flatnonzero(np.any(workload.x != 0.0, axis=0))
    n_hidden = work["W1"].shape[1]
    share = {"W1": n // 2, "b1": n // 6, "W2": n // 4, "b2": n // 12}
    entries = {}
    for name, k in share.items():
        flat = work[name].reshape(-1)
        k = max(1, min(k, flat.size))
        picks = rng.choice(flat.size, size=k, replace=False)
        if name == "W1" and active.size:
            rows = rng.choice(active, size=k - k // 2)
            picks[k // 2:] = rows * n_hidden + rng.integers(0, n_hidden, rows.size)
        picks = np.unique(picks)
        values = np.array([reference.numerical_gradient(loss, flat[p:p + 1], workload.h)[0]
                           for p in picks])
        entries[name] = (picks, values)
    return SampledReference(entries)


def max_abs_error(grad, ref):
    """Largest ``|grad - ref|`` over all parameters (or the sampled ones)."""
    if isinstance(ref, SampledReference):
        return max(float(np.max(np.abs(grad[k].reshape(-1)[i] - v)))
                   for k, (i, v) in ref.entries.items())
    return max(float(np.max(np.abs(np.asarray(grad[k]) - ref[k]))) for k in reference.PARAM_NAMES)


@dataclass(frozen=True)
class Validation:
    """Outcome of one method's check against the reference."""

    method: str
    threads: int | None
    max_abs_error: float
    tol: float
    seconds: float
    result: dict = field(repr=False)

    @property
    def ok(self):
        return self.max_abs_error <= self.tol

    def as_dict(self):
        return {"method": self.method, "threads": self.threads,
                "max_abs_error": self.max_abs_error, "tol": self.tol, "ok": self.ok,
                "seconds": self.seconds}


def validate(method, workload, ref, threads=None, tol=None, blas_threads=None):
    """Run ``method`` once and compare it with the reference gradient ``ref``.

    Parameters
    ----------
    method : str
        Registry name.
    workload : Workload
    ref : dict or SampledReference
        From :func:`compute_reference` or :func:`sampled_reference`.
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
    with blas_limits(1 if entry.compiled else blas_threads):
        t0 = time.perf_counter()
        grad = entry.func(workload.params, workload.x, workload.labels, workload.h, threads or 1)
        seconds = time.perf_counter() - t0
    tol = tolerance(method) if tol is None else float(tol)
    return Validation(method, threads, max_abs_error(grad, ref), tol, seconds, grad)


# --- start-up (compile) time ----------------------------------------------------------

_CHILD = """\
import json, sys, time
t0 = time.perf_counter()
import fastgrad
t1 = time.perf_counter()
from fastgrad import benchmark
method, hidden, batch, save = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
w = benchmark.load_workload(hidden, batch, synthetic=True)
t2 = time.perf_counter()
g = fastgrad.compute_gradient(method, w.params, w.x, w.labels, h=w.h)
t3 = time.perf_counter()
done = time.time()
fastgrad.compute_gradient(method, w.params, w.x, w.labels, h=w.h)
t4 = time.perf_counter()
if save:
    import numpy as np
    np.savez(save, **g)
print(json.dumps({"done": done, "import_s": t1 - t0, "first_call_s": t3 - t2,
                  "second_call_s": t4 - t3}))
"""


def measure_startup(method, cache_dir=None, *, hidden=50, batch=1, save_to=None, timeout=900):
    """Time ``import fastgrad`` + the first gradient in a fresh Python process.

    Parameters
    ----------
    method : str
    cache_dir : path, optional
        ``NUMBA_CACHE_DIR`` of the child (an empty folder: cold start).
    hidden, batch : int
        Workload of the child (synthetic digits, seed 0); one sample keeps the
        run itself negligible next to compiling.
    save_to : path, optional
        ``.npz`` file for the child's gradient, to validate it.
    timeout : float
        Seconds before the child is killed.

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
    argv = [sys.executable, "-c", _CHILD, method, str(hidden), str(batch),
            os.fspath(save_to) if save_to else ""]
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


def measure_compile(method, *, hidden=50, batch=1):
    """Cold start (empty Numba cache) then warm start (same cache) of ``method``.

    Returns
    -------
    dict
        ``{"cold": ..., "warm": ...}`` as from :func:`measure_startup`.
    """
    with tempfile.TemporaryDirectory(prefix="fastgrad-numba-") as cache:
        cold = measure_startup(method, cache, hidden=hidden, batch=batch)
        warm = measure_startup(method, cache, hidden=hidden, batch=batch)
    return {"cold": cold, "warm": warm}
