"""fastgrad.bench.timing: rounds, interleaved thread counts, the ceiling, phases."""

from __future__ import annotations

import numpy as np
import pytest

from fastgrad import config
from fastgrad.bench.timing import (
    profile_phases,
    run_ceiling,
    spread,
    thread_counts,
    time_interleaved,
    time_method,
    time_reference,
)
from fastgrad.bench.validation import TOL, check_gradient, compute_reference
from fastgrad.methods import METHODS, Method


def _err(method, grad, ref, w):
    return check_gradient(method, grad, ref, w).max_abs


def test_time_method_rounds_loops_and_first_round(tiny):
    w, ref = tiny
    t = time_method("incremental", w, threads=1, repeats=3, round_s=0.01)
    assert t.rounds == 3 and t.loops >= 1 and 0 < t.min <= t.median
    assert t.threads == 1 and t.blas_threads == 1
    assert _err("incremental", t.result, ref, w) <= TOL
    # a tight budget leaves min_rounds; the given first round is kept as round one
    t = time_method("reference", w, repeats=5, budget_s=0.0, min_rounds=2,
                    first_round=(123.0, ref))
    assert t.rounds == 2 and t.times[0] == 123.0 and t.threads is None
    with pytest.raises(ValueError, match="unknown method"):
        time_method("nope", w)
    with pytest.raises(ValueError, match="threads must be between"):
        time_method("jit", w, threads=0)
    with pytest.raises(ValueError, match="at least 1"):
        time_method("backprop", w, repeats=0)


def test_sampled_reference_rounds_rerun_the_sample_scaled(tiny):
    w, _ = tiny
    sampled = compute_reference(w, sample=4)
    tm = time_reference(w, sampled, repeats=2)
    assert tm.rounds == 2 and tm.times[0] == pytest.approx(sampled.full_seconds)
    assert _err("jit", tm.result, sampled, w) == 0.0
    full = compute_reference(w, sample="all")
    tm = time_reference(w, full, repeats=1)  # the full reference's own run is round one
    assert tm.rounds == 1 and tm.times == [full.seconds]


def test_thread_counts():
    assert thread_counts(1) == [1]
    assert thread_counts(6) == [1, 2, 4, 6]
    assert thread_counts(8) == [1, 2, 4, 8]
    assert thread_counts()[-1] == config.max_threads()


def test_time_interleaved_alternates_thread_counts(tiny, monkeypatch):
    w, ref = tiny
    good, calls = METHODS["incremental"], []

    def recording(params, x, labels, h, threads, arch, timer=None):
        calls.append(threads)
        return good.func(params, x, labels, h, threads, arch)

    monkeypatch.setitem(METHODS, "incremental", Method("incremental", recording, True, True,
                                                       "recorded"))
    counts = [1, 2] if config.max_threads() >= 2 else [1]
    inter = time_interleaved("incremental", w, counts, repeats=3, round_s=0.001)
    assert inter.counts == counts and set(inter.timings) == set(inter.ceiling) == set(counts)
    for t in counts:
        tm, c = inter.timings[t], inter.ceiling[t]
        assert tm.rounds == c.rounds == 3 and tm.threads == t and tm.blas_threads == 1
        assert _err("incremental", tm.result, ref, w) <= TOL
    # the timed calls come in runs of loops[t] calls per count, counts taking turns
    runs = [calls[0]]
    for a, b in zip(calls, calls[1:], strict=False):
        if b != a:
            runs.append(b)
    assert runs[-3 * len(counts):] == counts * 3
    with pytest.raises(ValueError, match="compiled method"):
        time_interleaved("backprop", w, [1])
    with pytest.raises(ValueError, match="threads must be between"):
        time_interleaved("jit", w, [0])


def test_ceiling_kernel_scales_arithmetic_only():
    one = run_ceiling(1, n_items=8, inner=50)
    assert one.shape == (8,) and np.all(np.isfinite(one)) and np.all(one > 0)
    np.testing.assert_array_equal(one, run_ceiling(config.max_threads(), 8, 50))
    for bad in ({"n_items": 0}, {"inner": 2.5}, {"n_items": True}):
        with pytest.raises(ValueError, match="positive integer"):
            run_ceiling(1, **bad)
    with pytest.raises(ValueError, match="threads must be between"):
        run_ceiling(0)


def test_spread_is_the_quartiles_over_the_median():
    assert spread([5.0]) == (1.0, 1.0)
    assert spread([1.0, 1.4, 1.8]) == pytest.approx((1.2 / 1.4, 1.6 / 1.4))
    lo, hi = spread([1.0, 2.0, 3.0, 4.0, 100.0])  # an outlier moves Q3 only
    assert (lo, hi) == pytest.approx((2.0 / 3.0, 4.0 / 3.0))


def test_phase_profile_of_a_compiled_method_only(tiny):
    w, _ = tiny
    prof = profile_phases("incremental", w, repeats=2)
    assert prof.total > 0 and 0.0 <= prof.serial_fraction <= 1.0
    with pytest.raises(ValueError, match="compiled method"):
        profile_phases("backprop", w)
