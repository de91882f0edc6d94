"""Timing rounds: one method, several thread counts interleaved, the ceiling, the phases.

:func:`time_method` times one method in rounds and keeps the result of the last
timed call, so it can be checked against the reference again (what was timed
is what was validated); :func:`time_interleaved` times a compiled method at
several thread counts interleaved (1, 2, 1, 2, ...), each sample next to one of
the compute-bound ceiling kernel at the same thread count, so a speed-up and
the machine's own ceiling come from the same moments. A collection of the
garbage collector never lands inside a timed round. Compiled methods always
run with one BLAS thread, so idle BLAS workers cannot compete with Numba's.
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from dataclasses import dataclass, field

import numpy as np

from fastgrad import config, inputs, phases
from fastgrad.bench.machine import blas_limits
from fastgrad.bench.validation import run_reference
from fastgrad.methods import check_method, numba_threads

#: Size of one call of the ceiling kernel: independent items (many per thread,
#: so the split is even) and steps per item (about 3 ms per call on one core
#: of the development machine).
CEILING_ITEMS = 256
CEILING_INNER = 2000

# --- timing ------------------------------------------------------------------------


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
    workload : fastgrad.bench.workload.Workload
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
        return w.gradient_func(entry)(w.params, w.x, w.labels, w.h, threads or 1, w.arch)

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


def time_reference(workload, ref, repeats=5, *, budget_s=None, min_rounds=1,
                   blas_threads=None):
    """Time the reference: :func:`time_method` when ``ref`` is full, else the sampled loop.

    A sampled reference reruns the book's loop on the same sampled entries and
    scales each round by ``ref.scale`` ("sampled, scaled"); ``ref``'s own run
    (:func:`fastgrad.bench.validation.compute_reference`) is round one either way.
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
            result, seconds = run_reference(workload, ref.sample, ref.seed)
            times.append(seconds * ref.scale)
    return Timing("reference", None, blas, times, 1, result)


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
    workload : fastgrad.bench.workload.Workload
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
        return lambda: w.gradient_func(entry)(w.params, w.x, w.labels, w.h, t, w.arch)

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


# --- phases ---------------------------------------------------------------------------


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
        return phases.profile(w.gradient_func(entry), (w.params, w.x, w.labels, w.h, 1, w.arch),
                              repeats, method)
