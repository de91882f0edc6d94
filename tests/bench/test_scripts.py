"""The checkout's bench/ scripts: they import fastgrad and each other as plain modules.

No script edits ``sys.path``: run as ``python bench/x.py`` its own folder is on
the path already, and under pytest the folder of ``bench/conftest.py`` is.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from fastgrad.bench import training
from fastgrad.bench.targets import load_targets
from tests.bench.helpers import REPO, REPO_TARGETS


def _script(name):
    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _digits(n, seed):
    rng = np.random.default_rng(seed)
    x = (rng.random((n, 784)) * (rng.random((n, 784)) < 0.2)).astype(np.float32)
    return x, rng.integers(0, 10, n)


def test_training_overhead_script(monkeypatch, tmp_path, capsys):
    """bench/training_overhead.py: a row per round, data and optimizer, judged by the worst."""
    script = _script("training_overhead")
    x, t = _digits(130, 1)
    data = ((x[:120], t[:120]), (x[120:], t[120:]))  # the book's batch of 100 fits
    monkeypatch.setattr(script, "load_data", lambda name: (data, f"synthetic {name}"))
    rc = script.main(["--optimizer", "sgd", "adam", "--iters", "4", "--rounds", "2",
                      "--threads", "1", "--json", str(tmp_path / "o.json")])
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "o.json").read_text())
    runs = report["runs"]
    assert [(r["round"], r["optimizer"]) for r in runs] == [(1, "sgd"), (1, "adam"),
                                                             (2, "sgd"), (2, "adam")]
    for r in runs:
        assert r["gradient_s"] > 0 and r["outside_s"] > 0
        assert r["share"] == pytest.approx(r["outside_s"] / (r["gradient_s"] + r["outside_s"]))
    worst = max(r["share"] for r in runs)
    assert report["worst_share"] == worst
    # judged in percent by the repository's file: the best level whose threshold it meets
    file = load_targets(REPO_TARGETS)
    thresholds = file.targets[script.FIGURE].thresholds
    expected = next((lv for lv in file.levels if 100 * worst <= thresholds[lv]), "MISSED")
    assert report["met"] == expected
    assert rc == (1 if report["met"] == "MISSED" else 0)
    assert "synthetic mnist" in out and f"{worst:.1%}" in out and report["probe"] is None
    assert f"must <= {thresholds['must']:g} %" in out
    probed = script.probe(gaps_ms=(0.01, 0.5), repeats=5)
    assert list(probed) == [0.01, 0.5] and all(a > 0 and b > 0 for a, b in probed.values())


def test_training_overhead_needs_its_target(tmp_path, capsys):
    script = _script("training_overhead")
    (tmp_path / "t.toml").write_text('levels = ["must"]\n')
    with pytest.raises(SystemExit):
        script.main(["--targets", str(tmp_path / "t.toml")])
    assert "has no [targets.training-overhead-share]" in capsys.readouterr().err


def test_optimizer_compare_script(monkeypatch, tmp_path, capsys):
    """bench/optimizer_compare.py: both gradients' figures, judged by the targets file."""
    script = _script("optimizer_compare")
    x, t = _digits(30, 3)
    monkeypatch.setattr(training, "load_data",
                        lambda name, n: (((x[:20], t[:20]), (x[20:], t[20:])), "synthetic"))
    monkeypatch.setattr(training, "NET", {**training.NET, "hidden_size_list": [3]})
    argv = ["--iters", "3", "--batch", "5", "--threads", "1", "--json", str(tmp_path / "c.json")]
    if importlib.util.find_spec("matplotlib") is not None:
        argv += ["--plot", str(tmp_path / "c.png")]
    rc = script.main(argv)
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "c.json").read_text())
    assert [r["id"] for r in report["rows"]] == [training.MINUTES, training.ACCURACY_GAP]
    assert rc == (1 if any(r["met"] == "MISSED" for r in report["rows"]) else 0)
    assert "must <= 10 min, stretch <= 4 min" in out and report["iters"] == 3
    if "--plot" in argv:
        assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("name", ["jit_inputs", "dense_report"])
def test_scripts_run_without_path_edits(name):
    """``python bench/x.py --help``: the sibling module it imports is found as is."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, str(REPO / "bench" / f"{name}.py"), "--help"],
                          capture_output=True, text=True, env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "usage:" in proc.stdout
