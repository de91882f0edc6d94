"""Tests for the benchmark library (fastgrad.benchmark, fastgrad.benchreport) and its CLI.

The CLI runs on tiny nets (784-5-10, a few digits) so the reference takes a
fraction of a second; the real benchmark suite lives in ``bench/``.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from fastgrad import benchmark as fb
from fastgrad import benchreport, config
from fastgrad.cli import main
from fastgrad.commands import bench as bench_cmd
from fastgrad.idx import DataIntegrityError
from fastgrad.methods import METHODS, Method
from fastgrad.workload import default_real_data_dir

TINY = ["--hidden", "5", "--batch", "3"]
FIRST_TEST_LABELS = [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
MNIST_TEST = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


def _shared_mnist() -> Path | None:
    folder = default_real_data_dir()  # where the workload itself looks
    return folder if folder is not None and all((folder / f).is_file()
                                                for f in MNIST_TEST) else None


SHARED = _shared_mnist()
needs_shared = pytest.mark.skipif(SHARED is None, reason="real MNIST test files not found "
                                  "(../shared/data/mnist or $FASTGRAD_SHARED_DATA)")
try:
    import matplotlib  # noqa: F401

    HAVE_MPL = True
except ImportError:  # the [test] extra brings matplotlib; a bare install may not have it
    HAVE_MPL = False


@pytest.fixture(scope="module")
def tiny():
    w = fb.load_workload(3, 2, synthetic=True)
    return w, fb.compute_reference(w)[0]


# --- workload -----------------------------------------------------------------------


def test_cli_choices_match_registry():
    assert bench_cmd.METHOD_NAMES == tuple(METHODS)


def test_synthetic_workload_is_seeded_and_labelled():
    w = fb.load_workload(5, 200, synthetic=True)
    again = fb.load_workload(5, 200, synthetic=True)
    assert w.data == "synthetic" and "synthetic" in w.description
    assert w.layers == (784, 5, 10) and w.batch == 200 and w.n_params == 784 * 5 + 5 + 50 + 10
    np.testing.assert_array_equal(w.x, again.x)
    np.testing.assert_array_equal(w.params["W1"], again.params["W1"])
    assert w.x.dtype == np.float64 and w.labels.dtype == np.int64  # ready for the kernels
    assert w.x.min() == 0.0 and w.x.max() <= 1.0 and 0.1 < np.mean(w.x != 0) < 0.3
    assert set(np.unique(w.labels)) <= set(range(10))


@needs_shared
def test_real_workload_is_the_first_test_digits():
    for w in (fb.load_workload(5, 10), fb.load_workload(5, 10, data_dir=SHARED)):
        assert w.data == "mnist" and "0..9" in w.description
        assert w.labels.tolist() == FIRST_TEST_LABELS
        assert w.x.dtype == np.float64 and w.x.max() == 1.0
    with pytest.raises(ValueError, match="at most 10000"):
        fb.load_workload(5, 10001, data_dir=SHARED)


def test_explicit_data_dir_must_hold_the_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        fb.load_workload(5, 3, data_dir=tmp_path)


@needs_shared
def test_tampered_data_is_refused(tmp_path):
    shutil.copy(SHARED / MNIST_TEST[0], tmp_path)
    raw = bytearray(gzip.decompress((SHARED / MNIST_TEST[1]).read_bytes()))
    raw[8] = (raw[8] + 1) % 10  # relabel the first digit
    (tmp_path / MNIST_TEST[1]).write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(DataIntegrityError):
        fb.load_workload(5, 3, data_dir=tmp_path)


@pytest.mark.parametrize(("hidden", "batch"), [(0, 3), (5, 0), (5, 2.5)])
def test_bad_sizes(hidden, batch):
    with pytest.raises(ValueError, match="positive integer"):
        fb.load_workload(hidden, batch, synthetic=True)


# --- validation and timing ------------------------------------------------------------


def test_sampled_reference_is_bitwise_the_full_one(tiny):
    w, ref = tiny
    sampled = fb.sampled_reference(w, n=40)
    assert set(sampled.entries) == {"W1", "b1", "W2", "b2"} and sampled.size >= 4
    for name, (picks, values) in sampled.entries.items():
        np.testing.assert_array_equal(ref[name].reshape(-1)[picks], values)
    assert fb.max_abs_error(ref, sampled) == 0.0


def test_validate_passes_good_and_fails_wrong_gradients(tiny):
    w, ref = tiny
    for method in METHODS:
        v = fb.validate(method, w, ref, threads=1)
        assert v.ok, v
        assert v.tol == (fb.ANALYTIC_TOL if method == "backprop" else fb.TOL)
    wrong = {k: v.copy() for k, v in ref.items()}
    wrong["b2"][3] += 2e-9
    assert fb.max_abs_error(wrong, ref) == pytest.approx(2e-9, rel=1e-3)
    assert fb.max_abs_error(wrong, ref) > fb.TOL


def test_time_method_rounds_loops_and_first_round(tiny):
    w, ref = tiny
    t = fb.time_method("incremental", w, threads=1, repeats=3, round_s=0.01)
    assert t.rounds == 3 and t.loops >= 1 and 0 < t.min <= t.median
    assert t.threads == 1 and t.blas_threads == 1
    assert fb.max_abs_error(t.result, ref) <= fb.TOL
    # a tight budget leaves min_rounds; the given first round is kept as round one
    t = fb.time_method("reference", w, repeats=5, budget_s=0.0, min_rounds=2,
                       first_round=(123.0, ref))
    assert t.rounds == 2 and t.times[0] == 123.0 and t.threads is None
    with pytest.raises(ValueError, match="unknown method"):
        fb.time_method("nope", w)
    with pytest.raises(ValueError, match="threads must be between"):
        fb.time_method("jit", w, threads=0)


def test_thread_counts():
    assert fb.thread_counts(1) == [1]
    assert fb.thread_counts(6) == [1, 2, 4, 6]
    assert fb.thread_counts(8) == [1, 2, 4, 8]
    assert fb.thread_counts()[-1] == config.max_threads()


def test_environment_reports_cpu_threads_and_blas():
    env = fb.environment()
    for key in ("cpu", "logical_cpus", "numba_threads", "threading_layer", "blas", "numpy"):
        assert env[key] not in (None, ""), key
    assert all({"internal_api", "num_threads"} <= set(b) for b in env["blas"])
    json.dumps(env)  # goes into the report as is


def test_startup_is_measured_in_a_subprocess(tmp_path):
    out = fb.measure_startup("incremental", hidden=3, save_to=tmp_path / "g.npz")
    assert {"wait_s", "import_s", "first_call_s", "run_s", "compile_s"} <= set(out)
    assert out["wait_s"] >= out["import_s"] > 0 and out["first_call_s"] >= out["compile_s"] >= 0
    with np.load(tmp_path / "g.npz") as z:
        grad = {k: z[k] for k in z.files}
    w = fb.load_workload(3, 1, synthetic=True)
    assert fb.max_abs_error(grad, fb.sampled_reference(w)) <= fb.TOL


# --- CLI ------------------------------------------------------------------------------


def test_cli_verify_only(capsys):
    assert main(["bench", "--verify-only", *TINY, "--synthetic"]) == 0
    out = capsys.readouterr().out
    assert "time per gradient" not in out and "all methods agree" in out
    rows = [line.split() for line in out.splitlines() if line.strip().endswith(" ok")]
    validated = {(r[0], r[1]) for r in rows}
    for t in fb.thread_counts():  # compiled methods at every thread count
        assert ("jit", str(t)) in validated and ("incremental", str(t)) in validated
    assert ("backprop", "-") in validated


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    d = tmp_path_factory.mktemp("bench")
    rc = main(["bench", "--quick", *TINY, "--no-compile", "--json", str(d / "r.json"),
               "--plot", str(d / "r.png")])
    return rc, d


def test_cli_quick_json_schema(quick_report):
    rc, d = quick_report
    assert rc == 0
    report = benchreport.load_json(d / "r.json")
    assert report["mode"] == "quick" and report["ok"] is True
    assert report["workload"]["layers"] == [784, 5, 10] and report["workload"]["batch"] == 3
    assert {v["method"] for v in report["validation"]} == {"jit", "incremental", "backprop"}
    assert all(v["ok"] and v["max_abs_error"] <= v["tol"] for v in report["validation"])
    rows = {(r["method"], r["threads"]): r for r in report["timings"]}
    counts = fb.thread_counts()
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
    assert report["startup"] is None  # --no-compile
    env = report["environment"]
    assert env["threading_layer"] and env["cpu"] and env["blas"]
    if HAVE_MPL:
        assert (d / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert not (d / "r.png").exists()


def test_cli_compare_flags_regressions(quick_report, tmp_path, capsys):
    _, d = quick_report
    report = benchreport.load_json(d / "r.json")
    assert not any(r["regression"] for r in benchreport.compare(report, report))
    fast = json.loads(json.dumps(report))
    for r in fast["timings"]:
        r["median_s"] /= 10  # the baseline was 10x faster: everything regressed
    (tmp_path / "fast.json").write_text(json.dumps(fast))
    capsys.readouterr()
    rc = main(["bench", "--quick", *TINY, "--no-compile", "--methods", "incremental",
               "--threads", "1", "--compare", str(tmp_path / "fast.json")])
    out = capsys.readouterr().out
    assert rc == 1 and "REGRESSION" in out and "compared with" in out
    rows = benchreport.compare(fast, report)  # the other way round: all faster
    assert rows and not any(r["regression"] for r in rows)


def test_compare_refuses_other_workloads(quick_report):
    _, d = quick_report
    report = benchreport.load_json(d / "r.json")
    other = json.loads(json.dumps(report))
    other["workload"]["batch"] = 100
    with pytest.raises(ValueError, match="not comparable"):
        benchreport.compare(report, other)
    assert main(["bench", "--compare", str(d / "r.json"), "--batch", "100"]) == 2


def test_compare_refuses_other_data(quick_report, capsys):
    _, d = quick_report
    report = benchreport.load_json(d / "r.json")
    for change in ({"data": "synthetic" if report["workload"]["data"] != "synthetic"
                    else "mnist"}, {"data": "fashion"}, {"seed": 1}):
        other = json.loads(json.dumps(report))
        other["workload"].update(change)
        with pytest.raises(ValueError, match="not comparable"):
            benchreport.compare(report, other)
        with pytest.raises(ValueError, match="not comparable"):
            benchreport.compare(other, report)
    # the CLI: a baseline on real digits is refused before a --synthetic run measures
    real = json.loads(json.dumps(report))
    real["workload"]["data"] = "mnist"
    (d / "real.json").write_text(json.dumps(real))
    capsys.readouterr()
    assert main(["bench", *TINY, "--synthetic", "--no-compile",
                 "--compare", str(d / "real.json")]) == 2
    err = capsys.readouterr().err
    assert "on real mnist test digits" in err and "on synthetic digits" in err
    assert "not comparable" in err and "reference:" not in err  # nothing was measured


def test_save_json_is_atomic(quick_report, tmp_path, monkeypatch):
    _, d = quick_report
    report = benchreport.load_json(d / "r.json")
    path = tmp_path / "r.json"
    benchreport.save_json(report, path)
    before = path.read_bytes()
    assert benchreport.load_json(path) == report

    def fails(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fails)
    with pytest.raises(OSError, match="disk full"):
        benchreport.save_json({**report, "mode": "changed"}, path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["r.json"]


def test_cli_validation_failure_exits_1_and_skips_timing(monkeypatch, capsys):
    good = METHODS["incremental"]

    def off_by_a_bit(params, x, labels, h, threads):
        grad = good.func(params, x, labels, h, threads)
        grad["W2"][0, 0] += 1e-7
        return grad

    monkeypatch.setitem(METHODS, "incremental", Method("incremental", off_by_a_bit, True, True,
                                                       "broken"))
    rc = main(["bench", "--quick", *TINY, "--no-compile", "--methods", "incremental",
               "--threads", "1", "--json", os.devnull])
    out = capsys.readouterr().out
    assert rc == 1 and "FAILED" in out and "VALIDATION FAILED" in out
    assert "incremental failed validation and was not timed" in out


def test_plot_without_matplotlib(quick_report, monkeypatch, tmp_path):
    _, d = quick_report
    report = benchreport.load_json(d / "r.json")
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    assert benchreport.plot(report, tmp_path / "p.png") is False
    assert not (tmp_path / "p.png").exists()


@pytest.mark.parametrize(("argv", "message"), [
    (["--threads", "0"], "threads must be between 1 and"),
    (["--threads", str(config.max_threads() + 1)], "threads must be between 1 and"),
    (["--batch", "0"], "--batch must be at least 1"),
    (["--repeats", "0"], "--repeats must be at least 1"),
    (["--json", "/nonexistent-dir/r.json"], "does not exist"),
    (["--plot", "/nonexistent-dir/r.png"], "does not exist"),
    (["--compare", "/nonexistent-dir/base.json"], "No such file"),
    (["--verify-only", "--compare", "x.json"], "need timings"),
])
def test_cli_bad_input_fails_fast(argv, message, capsys):
    assert main(["bench", *TINY, "--no-compile", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "reference:" not in err  # nothing was measured


@pytest.mark.parametrize(("argv", "message"), [
    (["--methods", "nope"], "invalid choice: 'nope'"),
    (["--blas-threads", "0"], "positive integer or 'auto'"),
    (["--threads", "two"], "invalid int value"),
])
def test_cli_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bench", *argv])
    assert exc.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "not valid JSON"),
    ('{"schema": "something-else/1"}', "not a fastgrad bench report"),
])
def test_cli_bad_baseline(tmp_path, content, message, capsys):
    (tmp_path / "base.json").write_text(content)
    assert main(["bench", *TINY, "--compare", str(tmp_path / "base.json")]) == 2
    assert message in capsys.readouterr().err
