"""Start-up time: ``import fastgrad`` and the first gradient, in a fresh process.

Compiling (or loading cached) Numba kernels is paid once per process, so it is
measured in child processes and never mixes with run time: the child imports
this very copy of fastgrad, takes a first and a second gradient of a small
synthetic workload, and the difference of the two calls is the compile (cold
cache) or load (warm cache) time. The child's gradient can be saved, so the
caller can validate it like any other.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from fastgrad.methods import check_method

_CHILD = """\
import json, sys, time
t0 = time.perf_counter()
import fastgrad
t1 = time.perf_counter()
from fastgrad.bench.workload import load_workload
method, batch, save, act = sys.argv[1], int(sys.argv[3]), sys.argv[4], sys.argv[5]
hidden = [int(v) for v in sys.argv[2].split(",")]
w = load_workload(hidden, batch, synthetic=True, activation=act)
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
    # the child must import this very copy of fastgrad: the folder holding the package
    root = os.fspath(Path(__file__).resolve().parents[2])
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
