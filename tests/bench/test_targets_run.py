"""fastgrad.bench.targets_run: the targets table measured in one run, judged by a file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fastgrad.bench import targets_run, training
from fastgrad.bench.targets import MISSED, judge, load_targets
from fastgrad.bench.targets_run import FIGURES, run_targets
from fastgrad.cli import main
from tests.bench.helpers import REPO, REPO_TARGETS, TINY

LEVELS = ("stretch", "must")


@pytest.fixture
def tiny_targets(monkeypatch):
    """The targets run on tiny nets: 784-4-4-10 at batch 3, the baseline row on 784-5-10."""
    monkeypatch.setattr(targets_run, "DEEP", (4, 4))
    monkeypatch.setattr(targets_run, "DEEP_BATCH", 3)
    monkeypatch.setattr(targets_run, "JIT_BATCH", 2)
    monkeypatch.setattr(targets_run, "STANDARD", (5, 3))
    return targets_run


def test_targets_report_marks_each_level(tiny_targets, tmp_path, monkeypatch, capsys):
    base = tmp_path / "base.json"
    rc = main(["bench", "--quick", *TINY, "--synthetic", "--no-compile", "--no-phases",
               "--threads", "1", "--json", str(base)])
    assert rc == 0
    capsys.readouterr()
    monkeypatch.chdir(REPO)  # --targets without FILE: the checkout's bench/targets.toml
    rc = main(["bench", "--targets", "--synthetic", "--threads", "1", "--repeats", "1",
               "--baseline", str(base), "--json", str(tmp_path / "t.json")])
    out = capsys.readouterr().out
    assert rc == 0, out
    report = json.loads((tmp_path / "t.json").read_text())
    assert report["schema"] == tiny_targets.SCHEMA and report["ok"]
    assert report["targets_file"] == "bench/targets.toml" and report["levels"] == list(LEVELS)
    rows = report["rows"]
    assert [r["id"] for r in rows] == list(FIGURES)[:6]
    assert all(r["met"].split(" (")[0] in ("stretch", "must", MISSED) for r in rows)
    file = load_targets(REPO_TARGETS)
    for r in rows:
        assert r["thresholds"] == file.targets[r["id"]].thresholds
    assert rows[0]["figure"] == pytest.approx(
        report["parts"]["relu"]["timings"]["reference"]["median_s"]
        / report["parts"]["relu"]["timings"]["incremental"]["median_s"])
    assert rows[0]["met"] == judge(rows[0]["figure"], file.targets[rows[0]["id"]], LEVELS)
    assert "batch 2, not 3" in rows[4]["note"]  # the jit row says it ran smaller
    assert rows[5]["baseline"] == str(base) and rows[5]["interval"][0] <= rows[5]["figure"]
    assert report["parts"]["relu"]["reference"]["sampled"] is False  # tiny: full loop
    assert "targets (bench/targets.toml); met = the best level reached (stretch, must)" in out
    assert "no slower" in out and "faster" in out and "projected speed-up" in out
    # the targets measured elsewhere are listed with what measures them
    unmeasured = report["not_measured_here"]
    # the deep net's thread efficiency, the convnet's four bench and two training figures...
    assert len(unmeasured) == 10 and "--targets --training" in out
    assert sum("`fastgrad bench --net convnet`" in t for t in unmeasured) == 4
    assert sum("fastgrad train --net convnet" in t for t in unmeasured) == 1
    assert "bench/training_overhead.py" in out


def test_targets_training_rows_judged_by_another_file(tiny_targets, monkeypatch, tmp_path,
                                                      capsys):
    rng = np.random.default_rng(0)
    x = (rng.random((40, 784)) * (rng.random((40, 784)) < 0.2)).astype(np.float32)
    t = rng.integers(0, 10, 40)
    data = ((x[:30], t[:30]), (x[30:], t[30:]))
    monkeypatch.setattr(training, "load_data", lambda: (data, "synthetic digits"))
    monkeypatch.setattr(training, "NET", {**training.NET, "hidden_size_list": [4, 4]})
    monkeypatch.setattr(training, "ITERS", 3)
    monkeypatch.setattr(training, "BATCH", 5)
    own = tmp_path / "own.toml"  # other level names, other thresholds: all from the file
    own.write_text('levels = ["gold", "silver"]\n'
                   '[targets.optimizer-comparison-minutes]\nwhat = "m"\nbetter = "lower"\n'
                   'unit = "min"\ngold = 1000\nsilver = 2000\n'
                   '[targets.optimizer-comparison-accuracy-gap]\nwhat = "g"\nbetter = "lower"\n'
                   'unit = "points"\nsilver = 100\n')
    monkeypatch.chdir(tmp_path)  # no saved baseline here: that row says so
    rc = main(["bench", "--targets", str(own), "--training", "--synthetic", "--threads", "1",
               "--repeats", "1", "--json", str(tmp_path / "t.json")])
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "t.json").read_text())
    rows = report["rows"]
    assert len(rows) == 8 and report["not_measured_here"] == [] and rc == 0
    assert report["levels"] == ["gold", "silver"]
    timed, accuracy = rows[6], rows[7]
    assert timed["unit"] == "min" and timed["thresholds"] == {"gold": 1000, "silver": 2000}
    assert timed["met"] == "gold" and accuracy["met"] == "silver"  # 100 points: any gap
    assert accuracy["unit"] == "points" and accuracy["thresholds"] == {"silver": 100}
    assert "synthetic digits" in timed["note"] and "adam" in accuracy["note"]
    assert all(r["met"] == "no target" for r in rows[:6])  # this file sets none of those
    assert "not measured here" not in out and " min " in out and "gold" in out
    assert "stretch" not in out and "must" not in out


def test_missing_baseline_and_bad_files_fail_before_measuring(tmp_path):
    part = {"workload": {"layers": [784, 5, 10]}, "timings": {}}
    assert "no baseline" in targets_run._baseline_row(part, None)["note"]
    (tmp_path / "b.json").write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        run_targets(REPO_TARGETS, 1, baseline=tmp_path / "b.json")
    with pytest.raises(FileNotFoundError, match="targets file"):
        run_targets(tmp_path / "none.toml", 1)
    with pytest.raises(ValueError, match="jit_batch must be at least 1"):
        run_targets(REPO_TARGETS, 1, jit_batch=0)
