"""Timing rounds and the machine they ran on, for ``fastgrad bench``.

:func:`time_method` times one method in rounds; :func:`time_interleaved` times
a compiled method at several thread counts interleaved (1, 2, 1, 2, ...), each
sample next to one of the compute-bound ceiling kernel at the same thread
count, so a speed-up and the machine's own ceiling come from the same moments.
:func:`environment` records what a timing depends on.
"""

from __future__ import annotations

import gc
import math
import os
import platform
import statistics
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fastgrad import config, inputs
from fastgrad.methods import check_method, numba_threads

#: Size of one call of the ceiling kernel: independent items (many per thread,
#: so the split is even) and steps per item (about 3 ms per call on one core
#: of the development machine).
CEILING_ITEMS = 256
CEILING_INNER = 2000

# --- timing ------------------------------------------------------------------------


@contextmanager
def blas_limits(threads):
    """Limit BLAS to ``threads`` threads in the body (None: leave as is); yields the count."""
    if threads is None:
        yield blas_threads()
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads, user_api="blas"):
        yield blas_threads()


@dataclass
class Timing:
    """Seconds per gradient of one method, one value per timed round."""

    method: str
    threads: int | None
    blas_threads: int | None
    times: list
    loops: int
    result: dict = field(repr=False, default=None)

    @property
    def median(self):
        return statistics.median(self.times)

    @property
    def min(self):
        return min(self.times)

    @property
    def rounds(self):
        return len(self.times)


def time_method(method, workload, threads=None, repeats=5, *, warmup=1, budget_s=None,
                min_rounds=1, round_s=0.2, first_round=None, blas_threads=None):
    """Time ``method`` on ``workload``: median and min seconds per gradient.

    Parameters
    ----------
    method : str
    workload : Workload
    threads : int, optional
        Numba threads (compiled methods; BLAS is held at one thread for them).
    repeats : int
        Timed rounds, unless ``budget_s`` allows fewer.
    warmup : int
        Untimed calls first (they also load compiled kernels).
    budget_s : float, optional
        Stop adding rounds past about this many seconds, keeping ``min_rounds``.
    min_rounds : int
        Fewest rounds, whatever the budget.
    round_s : float
        Fast methods loop within a round until it lasts about this long.
    first_round : (float, dict), optional
        Seconds and result of a call already made (the validation run), counted
        as the first round instead of being repeated.
    blas_threads : int or None
        BLAS threads for the NumPy methods (None: as the BLAS chose, which is
        how a user runs the reference: 12.7 s here against 19.9 s on one
        thread; on a busy machine OpenBLAS threads can slow it down by up to
        10x, where 1 is steadier). Compiled methods
        always run with one BLAS thread, so idle OpenBLAS workers spinning
        from an earlier NumPy call cannot compete with Numba's threads.

    Returns
    -------
    Timing
        ``result`` is the gradient of the last timed call.
    """
    entry = check_method(method)
    threads = inputs.check_threads(threads) if entry.compiled else None
    if repeats < 1 or min_rounds < 1:
        raise ValueError("repeats and min_rounds must be at least 1")
    w = workload

    def call():
        return entry.func(w.params, w.x, w.labels, w.h, threads or 1, w.arch)

    with blas_limits(1 if entry.compiled else blas_threads) as blas:
        times, result, estimate = [], None, None
        if first_round is not None:
            estimate, result = first_round
            times.append(estimate)
        for _ in range(warmup if first_round is None else 0):
            t0 = time.perf_counter()
            result = call()
            estimate = time.perf_counter() - t0
        if estimate is None:  # no warm-up: the first timed round sets the pace
            t0 = time.perf_counter()
            result = call()
            estimate = time.perf_counter() - t0
            times.append(estimate)
        loops = 1 if estimate >= round_s else max(1, math.ceil(round_s / max(estimate, 1e-9)))
        rounds = repeats
        if budget_s is not None:
            rounds = min(repeats, int(budget_s // (estimate * loops)))
        rounds = max(rounds, min_rounds)
        enabled = gc.isenabled()
        gc.disable()  # a collection landing in one round would skew it
        try:
            while len(times) < rounds:
                t0 = time.perf_counter()
                for _ in range(loops):
                    result = call()
                times.append((time.perf_counter() - t0) / loops)
        finally:
            if enabled:
                gc.enable()
    return Timing(method, threads, blas, times, loops, result)


def thread_counts(limit=None):
    """Thread counts for scaling runs: 1, 2, 4, ... and ``limit`` (default: all cores)."""
    limit = config.max_threads() if limit is None else int(limit)
    counts, n = [], 1
    while n < limit:
        counts.append(n)
        n *= 2
    return counts + [limit]


# --- environment -------------------------------------------------------------------


def _cpuinfo():
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        out.setdefault(key.strip(), value.strip())
    return out


def cpu_model():
    """CPU model name from /proc/cpuinfo, else what :mod:`platform` knows."""
    return (_cpuinfo().get("model name") or platform.processor() or platform.machine()
            or "unknown")


def blas_info():
    """The BLAS libraries NumPy loaded, as threadpoolctl sees them."""
    from threadpoolctl import threadpool_info

    keys = ("internal_api", "version", "num_threads", "threading_layer", "architecture")
    return [{k: lib.get(k) for k in keys} for lib in threadpool_info()
            if lib.get("user_api") == "blas"]


def blas_threads():
    """Threads of the BLAS in use (the largest if several), or None."""
    counts = [lib["num_threads"] for lib in blas_info() if lib["num_threads"]]
    return max(counts) if counts else None


def environment():
    """What a timing depends on: CPU, cores, threads, threading layer, BLAS, versions."""
    import numba

    flags = set(_cpuinfo().get("flags", "").split())
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    env_keys = ("OPENBLAS", "OMP_", "MKL_", "NUMBA_", "FASTGRAD_")
    return {
        "cpu": cpu_model(),
        "simd": [f for f in ("avx2", "avx512f", "avx512_vnni", "neon") if f in flags],
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "numba_threads": config.max_threads(),
        "default_threads": config.default_threads(),
        "threading_layer": config.threading_layer(),
        "blas": blas_info(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "platform": platform.platform(),
        "env": {k: v for k, v in sorted(os.environ.items()) if k.startswith(env_keys)},
    }



# --- spread ---------------------------------------------------------------------------


def spread(values):
    """Relative spread ``(Q1 / median, Q3 / median)`` of ``values`` (rounds).

    Inclusive quartiles, so two rounds give a quarter of their range on each
    side of the median; one round gives ``(1.0, 1.0)`` (no spread known).
    """
    values = [float(v) for v in values]
    if len(values) < 2:
        return (1.0, 1.0)
    q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return (q1 / median, q3 / median)


# --- interleaved thread counts and the machine's ceiling ---------------------------------


def run_ceiling(threads, n_items=CEILING_ITEMS, inner=CEILING_INNER):
    """One call of the compute-bound ceiling kernel on ``threads`` Numba threads."""
    from fastgrad.kernels.ceiling import ceiling_work

    threads = inputs.check_threads(threads)
    for name, value in (("n_items", n_items), ("inner", inner)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    with numba_threads(threads):
        return ceiling_work(int(n_items), int(inner))


@dataclass
class Interleaved:
    """Rounds of one compiled method at several thread counts, and of the ceiling.

    ``timings[t]`` and ``ceiling[t]`` are :class:`Timing` objects whose
    ``times[r]`` were measured in the same round ``r``.
    """

    method: str
    counts: list
    timings: dict
    ceiling: dict


def _estimate(call):
    t0 = time.perf_counter()
    result = call()
    return time.perf_counter() - t0, result


def _loops(estimate, round_s):
    return 1 if estimate >= round_s else max(1, math.ceil(round_s / max(estimate, 1e-9)))


def _sample(call, loops):
    t0 = time.perf_counter()
    for _ in range(loops):
        result = call()
    return (time.perf_counter() - t0) / loops, result


def time_interleaved(method, workload, counts, repeats=5, *, warmup=1, budget_s=None,
                     min_rounds=1, round_s=0.2, ceiling=True):
    """Time compiled ``method`` at each thread count in ``counts``, interleaved.

    Round ``r`` times the method at ``counts[0]``, ``counts[1]``, ... in turn,
    each sample right after one of the ceiling kernel at the same count, so
    load that comes and goes hits every thread count alike instead of one
    block of rounds (which is how a 2-thread speed-up read 1.14x in one
    process and 1.62x in the next).

    Parameters
    ----------
    method : str
        A compiled registry method.
    workload : Workload
    counts : sequence of int
        Numba thread counts, in the order timed within a round.
    repeats, warmup, budget_s, min_rounds, round_s
        As for :func:`time_method`, per round of all counts; with ``warmup=0``
        the first call at each count is round one.
    ceiling : bool
        Also time :func:`run_ceiling` (its own loops, about ``round_s`` a sample).

    Returns
    -------
    Interleaved
    """
    entry = check_method(method)
    if not entry.compiled:
        raise ValueError(f"time_interleaved needs a compiled method, got {method!r}")
    counts = list(dict.fromkeys(inputs.check_threads(t) for t in counts))
    if not counts:
        raise ValueError("counts must name at least one thread count")
    if repeats < 1 or min_rounds < 1:
        raise ValueError("repeats and min_rounds must be at least 1")
    w = workload

    def call(t):
        return lambda: entry.func(w.params, w.x, w.labels, w.h, t, w.arch)

    def ceil(t):
        return lambda: run_ceiling(t)

    times = {t: [] for t in counts}
    ctimes = {t: [] for t in counts}
    results, loops, cloops, cost = {}, {}, {}, 0.0
    with blas_limits(1) as blas:
        for t in counts:
            for _ in range(warmup):
                _estimate(call(t))
            estimate, results[t] = _estimate(call(t))
            if not warmup:  # a slow method: its first call is round one
                times[t].append(estimate)
            loops[t] = _loops(estimate, round_s)
            if ceiling:
                _estimate(ceil(t))  # loads the kernel, wakes the threads
                c_estimate, _ = _estimate(ceil(t))
                cloops[t] = _loops(c_estimate, round_s)
                if not warmup:
                    ctimes[t].append(c_estimate)
                cost += c_estimate * cloops[t]
            cost += estimate * loops[t]
        rounds = repeats if budget_s is None else min(repeats, int(budget_s // max(cost, 1e-9)))
        rounds = max(rounds, min_rounds)
        enabled = gc.isenabled()
        gc.disable()  # a collection landing in one sample would skew it
        try:
            while len(times[counts[0]]) < rounds:
                for t in counts:
                    if ceiling:
                        ctimes[t].append(_sample(ceil(t), cloops[t])[0])
                    seconds, results[t] = _sample(call(t), loops[t])
                    times[t].append(seconds)
        finally:
            if enabled:
                gc.enable()
    timings = {t: Timing(method, t, blas, times[t], loops[t], results[t]) for t in counts}
    ceilings = ({t: Timing("ceiling", t, blas, ctimes[t], cloops[t]) for t in counts}
                if ceiling else {})
    return Interleaved(method, counts, timings, ceilings)
