"""fastgrad.bench.compare: a report against a saved baseline, noise and machines allowed for."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fastgrad.bench.compare import ANCHORS, compare, format_comparison
from fastgrad.bench.compare import verdict as noise_verdict
from fastgrad.bench.report import OLD_SCHEMAS, SCHEMA, load_json
from fastgrad.bench.timing import spread
from fastgrad.cli import main
from tests.bench.helpers import RESULTS, TINY


def test_compare_refuses_other_workloads(quick_report):
    _, d = quick_report
    report = load_json(d / "r.json")
    other = json.loads(json.dumps(report))
    other["workload"]["batch"] = 100
    with pytest.raises(ValueError, match="not comparable"):
        compare(report, other)
    assert main(["bench", "--compare", str(d / "r.json"), "--batch", "100"]) == 2
    for change in ({"activation": "relu"}, {"weight_decay": 0.1}, {"weight_init": "relu"},
                   {"layers": [784, 5, 5, 10]}):
        other = json.loads(json.dumps(report))
        other["workload"].update(change)
        with pytest.raises(ValueError, match="not comparable"):
            compare(report, other)
    # a report from before the network flags was the default sigmoid net
    old = json.loads(json.dumps(report))
    for key in ("activation", "weight_decay", "weight_init"):
        del old["workload"][key]
    compare(report, old)


def test_compare_refuses_other_data(quick_report, capsys):
    _, d = quick_report
    report = load_json(d / "r.json")
    for change in ({"data": "synthetic" if report["workload"]["data"] != "synthetic"
                    else "mnist"}, {"data": "fashion"}, {"seed": 1}):
        other = json.loads(json.dumps(report))
        other["workload"].update(change)
        with pytest.raises(ValueError, match="not comparable"):
            compare(report, other)
        with pytest.raises(ValueError, match="not comparable"):
            compare(other, report)
    # the CLI: a baseline on real digits is refused before a --synthetic run measures
    real = json.loads(json.dumps(report))
    real["workload"]["data"] = "mnist"
    (d / "real.json").write_text(json.dumps(real))
    capsys.readouterr()
    assert main(["bench", *TINY, "--synthetic", "--no-compile",
                 "--compare", str(d / "real.json")]) == 2
    err = capsys.readouterr().err
    assert "on real mnist test images" in err and "on synthetic digits" in err
    assert "not comparable" in err and "reference:" not in err  # nothing was measured


# --- comparing with a baseline (hand-made reports) --------------------------------------

MEDIANS = {("reference", None): 12.0, ("backprop", None): 3e-4, ("jit", 1): 11.5,
           ("jit", 2): 5.8, ("incremental", 1): 4.6e-3, ("incremental", 2): 2.5e-3}


def _row(method, threads, times, efficiency=None):
    r = {"method": method, "threads": threads, "median_s": float(np.median(times)),
         "times_s": list(times), "spread": list(spread(times))}
    if efficiency is not None:
        r.update(efficiency=efficiency, efficiency_rounds=[efficiency] * len(times))
    return r


def _report(scale=1.0, slower=None, factor=2.0, cpu="AMD EPYC", cores=2, blas="0.3.30",
            numba="0.68.1", rounds=(0.995, 1.0, 1.005)):
    """A report as saved by ``--json``: every time x ``scale``, ``slower`` x ``factor``."""
    timings = []
    for (m, t), s in MEDIANS.items():
        s *= scale * (factor if (m, t) == slower else 1.0)
        timings.append(_row(m, t, [s * f for f in rounds], 0.93 if t == 2 else None))
    return {"schema": SCHEMA, "workload": {"layers": [784, 50, 10], "batch": 100,
                                                       "h": 1e-4, "data": "mnist", "seed": 0},
            "timings": timings, "ceiling": {"kernel": "k", "rows": []},
            "environment": {"cpu": cpu, "usable_cpus": cores, "numba": numba,
                            "blas": [{"internal_api": "openblas", "version": blas}]}}


def _verdicts(comparison):
    return {(r["measure"], r["method"], r["threads"]): r["verdict"] for r in comparison["rows"]}


def test_another_machine_compares_clean_by_default_but_not_absolute():
    base = _report()
    other = _report(scale=1.5, cpu="Intel Xeon", cores=4, blas="0.3.21", numba="0.60.0")
    c = compare(other, base)
    verdicts = _verdicts(c)
    assert set(verdicts.values()) == {"ok", "anchor"} and c["anchors"] == pytest.approx(
        {"reference": 1.5, "backprop": 1.5})
    assert {r["measure"] for r in c["rows"]} == {"anchor", "time vs anchors", "efficiency"}
    assert all(r["ratio"] == pytest.approx(1.0) for r in c["rows"] if r["measure"] != "anchor")
    text = format_comparison(c, "base.json", other, base)
    for what in ("CPU model", "core count", "BLAS", "Numba version"):
        assert f"info: different {what}" in text
    assert "WARNING" not in text and "REGRESSION" not in text
    c = compare(other, base, absolute=True)
    assert len(c["rows"]) == len(MEDIANS)
    assert all(r["verdict"] == "REGRESSION" and r["ratio"] == pytest.approx(1.5)
               for r in c["rows"])
    text = format_comparison(c, "base.json", other, base)
    for what in ("CPU model", "core count", "BLAS", "Numba version"):
        assert f"WARNING: different {what}" in text
    assert "6 regressions" in text


@pytest.mark.parametrize("slower", [("incremental", 2), ("jit", 1)])
def test_one_method_twice_as_slow_relative_to_anchors_is_flagged(slower):
    base = _report()
    for now in (_report(slower=slower), _report(scale=1.5, slower=slower, cpu="Intel Xeon")):
        c = compare(now, base)
        flagged = {k for k, v in _verdicts(c).items() if v == "REGRESSION"}
        assert flagged == {("time vs anchors", *slower)}
        row = next(r for r in c["rows"] if r["regression"])
        assert row["ratio"] == pytest.approx(2.0) and row["low"] > 1.25


@pytest.mark.parametrize(("factor", "verdict"), [(1.26, "REGRESSION"), (1.25, "ok"),
                                                 (1.24, "ok")])
def test_threshold_just_above_and_below_25_percent(factor, verdict):
    base = _report(rounds=(1.0,))  # one round each: no spread to hide behind
    now = _report(slower=("incremental", 2), factor=factor, scale=1.5, rounds=(1.0,))
    for absolute in (False, True):
        c = compare(now, base, absolute=absolute)
        row = next(r for r in c["rows"] if r["method"] == "incremental" and r["threads"] == 2
                   and r["measure"] != "efficiency")
        if absolute:  # on top of the 1.5x of the other machine: always flagged
            assert row["verdict"] == "REGRESSION"
        else:
            assert row["ratio"] == pytest.approx(factor) and row["verdict"] == verdict


def test_noise_rule_on_hand_made_rounds():
    assert noise_verdict(1.4, 1.26) == "REGRESSION"
    assert noise_verdict(1.4, 1.25) == "within noise"
    assert noise_verdict(1.25, 0.5) == "ok"
    base = _report(rounds=(1.0, 1.0, 1.0))
    # incremental at 1 thread 1.4x slower in the median, rounds 1.0 / 1.4 / 1.8:
    # Q1 = 1.2, so the interval reaches down to 1.2 <= 1.25: within noise
    wide = _report(rounds=(1.0, 1.0, 1.0))
    row = next(r for r in wide["timings"] if (r["method"], r["threads"]) == ("incremental", 1))
    row.update(_row("incremental", 1, [MEDIANS[("incremental", 1)] * f for f in (1.0, 1.4, 1.8)]))
    # tight rounds 1.35 / 1.4 / 1.45: Q1 = 1.375 > 1.25: a regression
    tight = json.loads(json.dumps(wide))
    row = next(r for r in tight["timings"] if (r["method"], r["threads"]) == ("incremental", 1))
    row.update(_row("incremental", 1, [MEDIANS[("incremental", 1)] * f
                                       for f in (1.35, 1.4, 1.45)]))
    for now, verdict, low, high in ((wide, "within noise", 1.2, 1.6),
                                    (tight, "REGRESSION", 1.375, 1.425)):
        for absolute in (False, True):
            c = compare(now, base, absolute=absolute)
            r = next(r for r in c["rows"] if (r["method"], r["threads"]) == ("incremental", 1))
            assert r["ratio"] == pytest.approx(1.4)
            assert (r["low"], r["high"]) == pytest.approx((low, high))
            assert r["verdict"] == verdict and r["regression"] == (verdict == "REGRESSION")
        text = format_comparison(c, "base.json")
        assert verdict in text
    # noisy anchors widen every normalised interval: the 1.4x reads within noise again
    noisy = json.loads(json.dumps(tight))
    for r in noisy["timings"]:
        if r["method"] in ANCHORS:
            r["spread"] = [0.85, 1.15]
    c = compare(noisy, base)
    r = next(r for r in c["rows"] if (r["method"], r["threads"]) == ("incremental", 1))
    assert r["low"] == pytest.approx(1.375 / 1.15) and r["verdict"] == "within noise"


def test_efficiency_drop_is_judged_against_the_ceiling():
    base, now = _report(), _report()
    for r in now["timings"]:
        if r["method"] == "jit" and r["threads"] == 2:
            r.update(efficiency=0.6, efficiency_rounds=[0.59, 0.6, 0.61])
    c = compare(now, base)
    row = next(r for r in c["rows"] if r["measure"] == "efficiency" and r["method"] == "jit")
    assert row["ratio"] == pytest.approx(0.93 / 0.6) and row["verdict"] == "REGRESSION"
    assert not any(r["measure"] == "efficiency"
                   for r in compare(now, base, absolute=True)["rows"])


def test_anchors_moving_apart_are_warned_about():
    now = _report(slower=("reference", None), factor=3.0)
    c = compare(now, _report())
    assert any(n.startswith("WARNING: the anchors moved apart") for n in c["notes"])
    assert not any(r["regression"] for r in c["rows"])  # anchors are the yardstick
    assert not compare(_report(scale=1.5), _report())["notes"]


def test_old_baseline_without_ceiling_or_rounds():
    old = load_json(RESULTS / "epyc-2core-2026-11-30.json")
    assert old["schema"] in OLD_SCHEMAS and "ceiling" not in old
    now = json.loads(json.dumps(old))
    now["schema"], now["ceiling"] = SCHEMA, {"kernel": "k", "rows": []}
    for r in now["timings"]:
        if r["threads"] == 2:
            r.update(efficiency=0.9, efficiency_rounds=[0.9])
    c = compare(now, old)
    assert not any(r["measure"] == "efficiency" for r in c["rows"])
    assert any("has no machine ceiling" in n and "fastgrad bench --json" in n
               for n in c["notes"])
    assert all(r["verdict"] in ("ok", "anchor") for r in c["rows"])
    assert c["machine"] == []
    for r in now["timings"]:
        if r["threads"] is None:
            r["blas_threads"] = 1
    assert compare(now, old)["machine"] == [
        ("BLAS thread count of the NumPy methods", "2", "1")]
    bare = json.loads(json.dumps(old))  # rows without rounds: spread unknown, still compared
    for r in bare["timings"]:
        del r["times_s"]
    c = compare(bare, old)
    assert any("spread is unknown" in n for n in c["notes"]) and c["rows"]
    old["timings"] = [r for r in old["timings"] if r["method"] not in ANCHORS]
    with pytest.raises(ValueError, match="no anchor.*--compare-absolute"):
        compare(now, old)
    assert compare(now, old, absolute=True)["rows"]
