"""fastgrad.bench.run: one run, validated then timed, as a JSON-ready report."""

from __future__ import annotations

import os

import pytest

from fastgrad.bench.report import SCHEMA, format_report, load_json
from fastgrad.bench.run import run_benchmark
from fastgrad.bench.timing import thread_counts
from fastgrad.cli import main
from fastgrad.methods import METHODS, Method
from tests.bench.helpers import HAVE_MPL, TINY


def test_quick_report_schema(quick_report):
    rc, d = quick_report
    assert rc == 0
    report = load_json(d / "r.json")
    assert report["mode"] == "quick" and report["ok"] is True
    assert report["workload"]["layers"] == [784, 5, 10] and report["workload"]["batch"] == 3
    assert {v["method"] for v in report["validation"]} == {"jit", "incremental", "backprop"}
    assert all(v["ok"] and v["max_abs_error"] <= v["tol"] for v in report["validation"])
    rows = {(r["method"], r["threads"]): r for r in report["timings"]}
    counts = thread_counts()
    assert set(rows) == {("reference", None), ("backprop", None),
                         *((m, t) for m in ("jit", "incremental") for t in counts)}
    for r in rows.values():
        assert 0 < r["min_s"] <= r["median_s"] and r["rounds"] == len(r["times_s"]) >= 1
        assert r["speedup_vs_reference"] > 0 and r["cost_vs_backprop"] > 0 and r["ok"]
        if r["threads"] is not None:  # Numba methods: BLAS pinned to one thread
            assert r["blas_threads"] == 1
    assert rows[("reference", None)]["rounds"] == 1  # --quick: its validation run only
    assert rows[("reference", None)]["speedup_vs_reference"] == 1.0
    assert rows[("backprop", None)]["cost_vs_backprop"] == 1.0
    assert rows[("jit", 1)]["speedup_vs_1_thread"] == 1.0
    assert [r["main"] for r in rows.values()].count(True) == 4
    # interleaved: each compiled row has a ceiling sample per round, from the same rounds
    ceiling = {c["threads"]: c for c in report["ceiling"]["rows"]}
    assert sorted(ceiling) == counts
    for (method, t), r in rows.items():
        if t is None:
            assert "ceiling_times_s" not in r and r["efficiency"] is None
            continue
        assert len(r["ceiling_times_s"]) == r["rounds"] == rows[(method, 1)]["rounds"]
        assert r["ceiling_speedup"] > 0 and r["efficiency"] > 0
        assert r["efficiency"] == pytest.approx(r["speedup_vs_1_thread"] / r["ceiling_speedup"])
        assert len(r["efficiency_rounds"]) == r["rounds"]
        assert r["spread"][0] <= 1.0 <= r["spread"][1]
    assert report["schema"] == SCHEMA
    assert report["startup"] is None  # --no-compile
    env = report["environment"]
    assert env["threading_layer"] and env["cpu"] and env["blas"]
    if HAVE_MPL:
        assert (d / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert not (d / "r.png").exists()


def test_phase_profiles_in_the_report(quick_report):
    _, d = quick_report
    report = load_json(d / "r.json")
    profiles = {p["method"]: p for p in report["phases"]}
    assert set(profiles) == {"jit", "incremental"}
    for p in profiles.values():
        assert p["threads"] == 1 and p["calls"] >= 1 and "projection" in p["projection_label"]
        assert 0.0 <= p["serial_fraction"] <= 1.0
        assert p["total_s"] == pytest.approx(sum(ph["seconds"] for ph in p["phases"]))
        assert set(p["projection"]) == {"4", "8", "16", "64"}
        s = p["serial_fraction"]
        assert p["projection"]["16"] == pytest.approx(1 / (s + (1 - s) / 16))
    text = format_report(report)
    assert "serial fraction" in text and "not a measurement" in text


def test_deep_net_on_fashion_with_sampled_reference(tmp_path, capsys):
    # sigmoid: a ReLU net's backprop check needs 90% of the (here 12) sampled entries
    # clear of kinks, which a tiny sample may miss (test_validation covers ReLU)
    rc = main(["bench", "--quick", "--hidden", "4", "3", "--weight-init", "xavier",
               "--weight-decay", "0.01", "--batch", "3", "--data", "fashion", "--sample", "2",
               "--threads", "1", "--no-compile", "--repeats", "1",
               "--json", str(tmp_path / "r.json")])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "784-4-3-10 sigmoid (init xavier), weight decay 0.01" in out and "data (" in out
    assert "reference (sampled, scaled)" in out and "projected speed-up on" in out
    report = load_json(tmp_path / "r.json")
    w, ref = report["workload"], report["reference"]
    assert (w["activation"], w["weight_decay"], w["layers"]) == ("sigmoid", 0.01,
                                                                 [784, 4, 3, 10])
    assert w["data"] in ("fashion", "synthetic fashion")
    assert ref["sampled"] and ref["label"] == "sampled, scaled" and ref["entries"] < w["n_params"]
    row = next(r for r in report["timings"] if r["method"] == "reference")
    assert row["sampled"] and row["median_s"] == pytest.approx(ref["full_s"])
    assert all(v["compared"] == ref["entries"] for v in report["validation"])
    assert any("sampled, scaled" in n for n in report["notes"])


def test_validation_failure_exits_1_and_skips_timing(monkeypatch, capsys):
    good = METHODS["incremental"]

    def off_by_a_bit(params, x, labels, h, threads, arch, timer=None):
        grad = good.func(params, x, labels, h, threads, arch)
        grad["W2"][0, 0] += 1e-7
        return grad

    monkeypatch.setitem(METHODS, "incremental", Method("incremental", off_by_a_bit, True, True,
                                                       "broken"))
    rc = main(["bench", "--quick", *TINY, "--no-compile", "--methods", "incremental",
               "--threads", "1", "--json", os.devnull])
    out = capsys.readouterr().out
    assert rc == 1 and "FAILED" in out and "VALIDATION FAILED" in out
    assert "incremental failed validation and was not timed" in out


def test_verify_only_times_nothing_and_always_runs_the_baselines():
    lines = []
    report = run_benchmark(["jit"], [1], hidden=3, batch=2, synthetic=True, verify_only=True,
                           log=lines.append)
    assert report["ok"] and report["mode"] == "verify-only" and report["timings"] == []
    assert {v["method"] for v in report["validation"]} == {"jit", "backprop"}
    assert report["phases"] is None and report["startup"] is None
    assert lines and all(line.startswith("[") for line in lines)  # timestamped progress


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"repeats": 0}, "repeats must be a positive integer"),
    ({"blas_threads": 0}, "blas_threads must be a positive integer"),
    ({"methods": ["nope"]}, "unknown method"),
])
def test_run_benchmark_refuses_bad_arguments_before_measuring(kwargs, message):
    lines = []
    with pytest.raises(ValueError, match=message):
        run_benchmark(hidden=3, batch=2, synthetic=True, log=lines.append, **kwargs)
    assert lines == []  # nothing was measured
