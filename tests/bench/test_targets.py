"""fastgrad.bench.targets: the targets table measured, and judged by a targets file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fastgrad.bench import targets as targets_mod
from fastgrad.bench import training
from fastgrad.bench.targets import (
    FIGURES,
    MISSED,
    Target,
    judge,
    judge_interval,
    judge_row,
    load_targets,
    run_targets,
    thresholds_text,
)
from fastgrad.cli import main
from tests.bench.helpers import REPO, REPO_TARGETS, TINY

LEVELS = ("stretch", "must")


@pytest.fixture
def tiny_targets(monkeypatch):
    """The targets run on tiny nets: 784-4-4-10 at batch 3, the baseline row on 784-5-10."""
    monkeypatch.setattr(targets_mod, "DEEP", (4, 4))
    monkeypatch.setattr(targets_mod, "DEEP_BATCH", 3)
    monkeypatch.setattr(targets_mod, "JIT_BATCH", 2)
    monkeypatch.setattr(targets_mod, "STANDARD", (5, 3))
    return targets_mod


def _target(better, **thresholds):
    return Target("figure", "a figure", better, thresholds)


# --- the targets file -----------------------------------------------------------------


def test_the_repository_file_holds_every_figure():
    t = load_targets(REPO_TARGETS)
    assert t.levels == LEVELS
    assert set(FIGURES) <= set(t.targets)  # a targets run judges every figure it measures
    assert {training.MINUTES, training.ACCURACY_GAP} <= set(FIGURES)
    for target in t.targets.values():
        assert target.what and target.better in ("higher", "lower") and target.thresholds
    for name in set(t.targets) - set(FIGURES):  # measured elsewhere: the file says by what
        assert t.targets[name].by, name


_GOOD = '''levels = ["gold", "silver"]
[targets.speed]
what = "a speed-up"
better = "higher"
gold = 10
silver = 3
'''


@pytest.mark.parametrize(("text", "message"), [
    ("levels = [", "not valid TOML"),
    ("[targets.speed]\nwhat = 'x'\nbetter = 'higher'\nmust = 1\n", "'levels' must list"),
    ('levels = ["a", "a"]\n', "must be distinct"),
    ('levels = ["MISSED"]\n', "must be distinct names other than 'MISSED'"),
    ('levels = ["a"]\nthresholds = 1\n', "unknown key"),
    (_GOOD + "silvr = 2\n", r"unknown key\(s\) \['silvr'\]"),
    (_GOOD.replace('better = "higher"', 'better = "up"'), "'better' must be"),
    (_GOOD.replace("gold = 10", 'gold = "10k"'), "gold: expected a finite number"),
    (_GOOD.replace("gold = 10", "gold = true"), "gold: expected a finite number"),
    (_GOOD.replace("gold = 10", "gold = nan"), "gold: expected a finite number"),
    (_GOOD.replace("gold = 10\nsilver = 3\n", ""), "no threshold for any level"),
    (_GOOD.replace("gold = 10", "gold = 2"), "at least as hard to meet"),
    (_GOOD.replace('what = "a speed-up"\n', ""), "what: expected a non-empty string"),
])
def test_bad_targets_files_are_refused_with_the_key_named(tmp_path, text, message):
    path = tmp_path / "t.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_targets(path)


def test_a_targets_file_is_read(tmp_path):
    (tmp_path / "t.toml").write_text(_GOOD + '\n[targets.time]\nwhat = "minutes"\n'
                                     'better = "lower"\nunit = "min"\nby = "a script"\n'
                                     "silver = 15\n")
    t = load_targets(tmp_path / "t.toml")
    assert t.levels == ("gold", "silver") and t.path == str(tmp_path / "t.toml")
    assert t.targets["speed"] == Target("speed", "a speed-up", "higher",
                                        {"gold": 10.0, "silver": 3.0})
    assert t.targets["time"].thresholds == {"silver": 15.0} and t.targets["time"].by
    assert thresholds_text(t.targets["speed"], t.levels) == "silver >= 3x, gold >= 10x"
    assert thresholds_text(t.targets["time"], t.levels) == "silver <= 15 min"
    with pytest.raises(FileNotFoundError, match="targets file .* not found"):
        load_targets(tmp_path / "none.toml")


# --- judging --------------------------------------------------------------------------


def test_judging_marks_the_best_level_met():
    speed = _target("higher", stretch=10000, must=3000)
    assert judge(12000, speed, LEVELS) == "stretch" and judge(10000, speed, LEVELS) == "stretch"
    assert judge(5000, speed, LEVELS) == "must"
    assert judge(2000, speed, LEVELS) == MISSED
    cost = _target("lower", stretch=20, must=100)
    assert judge(15, cost, LEVELS) == "stretch" and judge(150, cost, LEVELS) == MISSED
    minutes = _target("lower", stretch=5, must=15)
    assert judge(15, minutes, LEVELS) == "must" and judge(15.01, minutes, LEVELS) == MISSED
    assert judge(5, minutes, LEVELS) == "stretch"
    gap = _target("lower", stretch=0.2, must=1.0)
    assert judge(0.2, gap, LEVELS) == "stretch" and judge(0.21, gap, LEVELS) == "must"
    assert judge(1.01, gap, LEVELS) == MISSED
    assert judge(None, gap, LEVELS) == "not measured"
    only_must = _target("lower", must=1.0)  # a level may be left out
    assert judge(0.5, only_must, LEVELS) == "must" and judge(2, only_must, LEVELS) == MISSED


def test_interval_figures_neither_earn_nor_fail_a_level_by_noise():
    baseline = _target("lower", stretch=1.0, must=1.0)
    assert judge_interval(0.8, 0.7, 0.9, baseline, LEVELS) == "stretch"  # faster beyond noise
    assert judge_interval(0.9, 0.8, 1.0, baseline, LEVELS) == "must"  # not beyond it
    assert judge_interval(0.95, 0.9, 1.02, baseline, LEVELS) == "must"
    assert judge_interval(1.1, 0.98, 1.2, baseline, LEVELS) == "must (within noise)"
    assert judge_interval(1.3, 1.2, 1.4, baseline, LEVELS) == MISSED
    speed = _target("higher", stretch=2.0, must=1.0)
    assert judge_interval(2.5, 2.1, 2.9, speed, LEVELS) == "stretch"
    assert judge_interval(2.5, 1.9, 2.9, speed, LEVELS) == "must"
    assert judge_interval(0.9, 0.8, 1.1, speed, LEVELS) == "must (within noise)"


def test_judge_row_takes_the_thresholds_from_the_file():
    t = load_targets(REPO_TARGETS)
    row = judge_row({"id": "deep-relu-incremental-cost", "workload": "w", "figure": 15.0}, t)
    assert row["met"] == "stretch" and row["higher_is_better"] is False
    assert row["thresholds"] == t.targets["deep-relu-incremental-cost"].thresholds
    assert judge_row({"id": "unknown", "figure": 1.0}, t)["met"] == "no target"
    assert judge_row({"id": "deep-relu-jit-speedup", "figure": None}, t)["met"] == "not measured"


# --- the targets run ------------------------------------------------------------------


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
    assert [r["id"] for r in rows] == list(FIGURES)[:5]
    assert all(r["met"].split(" (")[0] in ("stretch", "must", MISSED) for r in rows)
    file = load_targets(REPO_TARGETS)
    for r in rows:
        assert r["thresholds"] == file.targets[r["id"]].thresholds
    assert rows[0]["figure"] == pytest.approx(
        report["parts"]["relu"]["timings"]["reference"]["median_s"]
        / report["parts"]["relu"]["timings"]["incremental"]["median_s"])
    assert rows[0]["met"] == judge(rows[0]["figure"], file.targets[rows[0]["id"]], LEVELS)
    assert "batch 2, not 3" in rows[3]["note"]  # the jit row says it ran smaller
    assert rows[4]["baseline"] == str(base) and rows[4]["interval"][0] <= rows[4]["figure"]
    assert report["parts"]["relu"]["reference"]["sampled"] is False  # tiny: full loop
    assert "targets (bench/targets.toml); met = the best level reached (stretch, must)" in out
    assert "no slower" in out and "faster" in out and "projected speed-up" in out
    # the targets measured elsewhere are listed with what measures them
    assert len(report["not_measured_here"]) == 3 and "--targets --training" in out
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
    assert len(rows) == 7 and report["not_measured_here"] == [] and rc == 0
    assert report["levels"] == ["gold", "silver"]
    timed, accuracy = rows[5], rows[6]
    assert timed["unit"] == "min" and timed["thresholds"] == {"gold": 1000, "silver": 2000}
    assert timed["met"] == "gold" and accuracy["met"] == "silver"  # 100 points: any gap
    assert accuracy["unit"] == "points" and accuracy["thresholds"] == {"silver": 100}
    assert "synthetic digits" in timed["note"] and "adam" in accuracy["note"]
    assert all(r["met"] == "no target" for r in rows[:5])  # this file sets none of those
    assert "not measured here" not in out and " min " in out and "gold" in out
    assert "stretch" not in out and "must" not in out


def test_missing_baseline_and_bad_files_fail_before_measuring(tmp_path):
    part = {"workload": {"layers": [784, 5, 10]}, "timings": {}}
    assert "no baseline" in targets_mod._baseline_row(part, None)["note"]
    (tmp_path / "b.json").write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        run_targets(REPO_TARGETS, 1, baseline=tmp_path / "b.json")
    with pytest.raises(FileNotFoundError, match="targets file"):
        run_targets(tmp_path / "none.toml", 1)
    with pytest.raises(ValueError, match="jit_batch must be at least 1"):
        run_targets(REPO_TARGETS, 1, jit_batch=0)
