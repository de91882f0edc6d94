"""fastgrad.bench.targets: targets files, read and checked, and figures judged by them."""

from __future__ import annotations

import pytest

from fastgrad.bench import training
from fastgrad.bench.targets import (
    MISSED,
    Target,
    judge,
    judge_interval,
    judge_row,
    load_targets,
    thresholds_text,
)
from fastgrad.bench.targets_run import FIGURES
from tests.bench.helpers import REPO_TARGETS

LEVELS = ("stretch", "must")


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
    row = judge_row({"id": "deep-relu-incremental-cost", "workload": "w", "figure": 3.0}, t)
    assert row["met"] == "stretch" and row["higher_is_better"] is False
    assert row["thresholds"] == t.targets["deep-relu-incremental-cost"].thresholds
    assert judge_row({"id": "unknown", "figure": 1.0}, t)["met"] == "no target"
    assert judge_row({"id": "deep-relu-jit-speedup", "figure": None}, t)["met"] == "not measured"
