"""Tests for fastgrad.phases: Amdahl's projection, serial fractions, and the phase timer."""

from __future__ import annotations

import time

import pytest

from fastgrad import phases
from fastgrad.phases import PhaseProfile, PhaseTimer, amdahl, no_timer, profile


@pytest.mark.parametrize(("s", "cores", "expected"), [
    (0.0, 16, 16.0),  # all parallel: linear
    (1.0, 64, 1.0),  # all serial: no speed-up
    (0.5, 2, 1 / (0.5 + 0.25)),
    (0.07, 16, 1 / (0.07 + 0.93 / 16)),  # ~7% serial caps 16 cores near 8x
    (0.01, 64, 1 / (0.01 + 0.99 / 64)),
    (0.3, 1, 1.0),  # one core is always 1x
])
def test_amdahl_values(s, cores, expected):
    assert amdahl(s, cores) == pytest.approx(expected, rel=1e-12)


def test_amdahl_limits_and_monotonicity():
    assert 7.5 < amdahl(0.07, 16) < 8.0  # ~7% serial: 16 cores give under 8x
    values = [amdahl(0.03, n) for n in (1, 2, 4, 8, 16, 64, 10**6)]
    assert values == sorted(values) and values[-1] < 1 / 0.03


@pytest.mark.parametrize(("s", "cores"), [(-0.1, 4), (1.5, 4), (float("nan"), 4), (0.1, 0),
                                         (0.1, -2)])
def test_amdahl_bad_inputs(s, cores):
    with pytest.raises(ValueError, match="serial_fraction|cores"):
        amdahl(s, cores)


def test_serial_fraction_on_hand_made_profiles():
    p = PhaseProfile("m", [("a", "serial", 1.0, None), ("b", "parallel", 3.0, None),
                           ("c", "serial", 1.0, None)])
    assert p.total == 5.0 and p.serial == 2.0 and p.serial_fraction == pytest.approx(0.4)
    assert p.projection() == {n: pytest.approx(1 / (0.4 + 0.6 / n)) for n in (4, 8, 16, 64)}
    assert p.projection((2,)) == {2: pytest.approx(1 / 0.7)}
    d = p.as_dict()
    assert d["serial_fraction"] == pytest.approx(0.4) and d["total_s"] == 5.0
    assert [ph["name"] for ph in d["phases"]] == ["a", "b", "c"]
    assert set(d["projection"]) == set(d["granular_projection"]) == {"4", "8", "16", "64"}


def test_granular_projection_counts_load_imbalance():
    # 50 items (hidden units) on 16 cores: ceil(50/16) = 4 rounds, not 50/16 = 3.125
    p = PhaseProfile("m", [("s", "serial", 1.0, None), ("par", "parallel", 9.0, 50)])
    g = p.granular_projection((1, 16, 64))
    assert g[1] == pytest.approx(1.0)
    assert g[16] == pytest.approx(10.0 / (1.0 + 9.0 * 4 / 50))
    assert g[64] == pytest.approx(10.0 / (1.0 + 9.0 / 50))  # one item per core at best
    assert g[16] <= p.projection((16,))[16]
    # without a count of items a parallel phase divides evenly: Amdahl exactly
    even = PhaseProfile("m", [("s", "serial", 1.0, None), ("par", "parallel", 9.0, None)])
    assert even.granular_projection((8,))[8] == pytest.approx(even.projection((8,))[8])
    with pytest.raises(ValueError, match="cores must be at least 1"):
        p.granular_projection((0,))
    assert PhaseProfile("all parallel", [("x", "parallel", 2.0, None)]).serial_fraction == 0.0
    assert PhaseProfile("all serial", [("x", "serial", 2.0, None)]).projection()[64] == 1.0
    assert PhaseProfile("empty").serial_fraction == 0.0  # nothing measured: no serial share


def test_timer_refuses_unknown_kinds_and_profile_bad_repeats():
    timer = PhaseTimer()
    with pytest.raises(ValueError, match="kind must be"):
        with timer("x", "sometimes"):
            pass
    assert timer.records == []
    with pytest.raises(ValueError, match="repeats must be at least 1"):
        profile(lambda timer: None, (), repeats=0)
    with no_timer("x", "serial"):  # the ordinary call's timer records nothing
        pass


def test_timer_records_a_phase_that_raises():
    timer = PhaseTimer()
    with pytest.raises(RuntimeError):
        with timer("boom", "serial"):
            raise RuntimeError
    assert [(r[0], r[1]) for r in timer.records] == [("boom", "serial")]


def test_profile_refuses_calls_whose_phases_differ():
    calls = []

    def driver(timer):
        calls.append(1)
        with timer("only on the first call" if len(calls) == 1 else "later", "serial"):
            pass

    with pytest.raises(RuntimeError, match="phases differ"):
        profile(driver, (), repeats=2, method="m")


def _spin(seconds):
    """Busy work for about ``seconds`` (a sleep could oversleep on a loaded machine)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def _known_share(serial_s, parallel_s, timer=no_timer):
    """A driver with a known serial share: one serial phase, one parallel, one serial."""
    with timer("setup", "serial"):
        _spin(serial_s / 2)
    with timer("work", "parallel"):
        _spin(parallel_s)
    with timer("teardown", "serial"):
        _spin(serial_s / 2)


def test_phase_timer_finds_a_known_serial_share():
    # 25% serial by construction. Each phase spins to a wall-clock deadline, so a
    # descheduled moment only moves a phase when it lands on its end (a time slice,
    # tens of ms on a loaded VM): phases of 50-300 ms and the median of 3 calls keep the
    # fraction within the loose bounds below
    prof = profile(_known_share, (0.1, 0.3), repeats=3, method="known")
    assert [(p[0], p[1]) for p in prof.phases] == [("setup", "serial"), ("work", "parallel"),
                                                   ("teardown", "serial")]
    assert prof.phases[1][2] >= 0.3 and prof.phases[0][2] >= 0.05
    assert 0.15 < prof.serial_fraction < 0.4
    assert prof.projection()[16] == pytest.approx(phases.amdahl(prof.serial_fraction, 16))
    assert 2.0 < prof.projection()[16] < 4.0  # 1 / (0.25 + 0.75 / 16) = 3.37
