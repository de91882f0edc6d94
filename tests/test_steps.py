"""The step-size study: O(h^2) truncation, rounding below the best h, the CLI."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from numba import njit

import fastgrad
from fastgrad import cli, steps
from fastgrad.standard import standard_workload


@njit
def smooth(x):
    total = 0.0
    for i in range(x.size):
        total += np.exp(np.sin(x[i])) + 0.1 * x[i] ** 3
    return total


def smooth_grad(x):
    return np.exp(np.sin(x)) * np.cos(x) + 0.3 * x**2


def test_truncation_error_falls_as_h_squared():
    x = np.linspace(-1.0, 2.0, 40)
    curve = steps.function_curve(smooth, x, smooth_grad(x), np.logspace(-1, -9, 17))
    assert 1.8 <= curve.truncation_slope <= 2.2
    assert 1e-6 <= curve.best_h <= 1e-3  # where h^2 meets eps/h for an O(1) function
    assert curve.rounding_slope is not None and curve.rounding_slope < -0.5
    assert curve.errors[0] > 1e3 * curve.best_error


def test_fit_slope():
    h = np.array([1e-1, 1e-2, 1e-3])
    assert steps.fit_slope(h, 3 * h**2) == pytest.approx(2.0)
    assert steps.fit_slope(h[:1], h[:1]) is None
    assert steps.fit_slope(h, np.zeros(3)) is None  # exact zeros have no logarithm


@pytest.mark.parametrize("floor_at", [-1, 17], ids=["last", "mid-floor"])
def test_truncation_fit_leaves_out_a_floor(floor_at):
    """A curve without rounding: h^2 down to an eps-level floor, then flat noise."""
    h = np.logspace(-1, -12, 23)
    noise = np.random.default_rng(0).uniform(3e-17, 6e-17, h.size)
    noise[floor_at] = 2.5e-17  # where the smallest floor value falls moves the best h
    curve = steps.Curve("flat", "", h, np.maximum(1.2e-2 * h**2, noise), 1)
    assert curve.truncation_slope == pytest.approx(2.0, abs=0.02)
    side = curve.truncation_side()
    assert side[:11].all() and not side[11:].any()  # 1e-1..1e-6 in, the floor out
    # with the floor points in, the slope is off: the side must leave them out
    above = h >= 10 * curve.best_h
    assert abs(steps.fit_slope(h[above], curve.errors[above]) - 2.0) > 0.1


@pytest.fixture(scope="module")
def small_sweep():
    work = standard_workload(batch=8, hidden=5, synthetic=True)
    grid = np.logspace(-1, -12, 23)
    return steps.step_sweep(work.net, work.x, work.t, steps=grid, sample=16, threads=1,
                            source=work.source)


def test_network_sweep(small_sweep):
    ref, inc, f32 = small_sweep.curves
    assert [c.name for c in small_sweep.curves] == ["reference", "incremental", "float32"]
    for curve in (ref, inc):
        assert 1.8 <= curve.truncation_slope <= 2.2, curve.name
    # the same finite difference on the truncation side: the sample is no better or worse
    side = ref.truncation_side()
    np.testing.assert_allclose(ref.errors[side], inc.errors[side], rtol=0.5)
    assert ref.rounding_slope < -0.5  # the book's loop: rounding grows as 1/h below the best
    # float32 meets its rounding ~1e8 times sooner, and its smallest steps round away
    assert f32.best_h >= 100 * ref.best_h and f32.best_error > 1e3 * ref.best_error
    assert f32.errors[-1] == f32.errors[-2]  # x + h == x in float32: the gradient is 0
    text = small_sweep.table()
    assert "best h" in text and text.count("*") == 3
    data = small_sweep.as_dict()
    assert len(data["curves"][0]["errors"]) == 23 and data["layers"] == "784-5-10"


def test_sweep_leaves_params_alone():
    work = standard_workload(batch=2, hidden=3, synthetic=True)
    before = {k: v.copy() for k, v in work.net.params.items()}
    steps.step_sweep(work.net, work.x, work.t, steps=[1e-2, 1e-4], sample=4, float32=False)
    assert all(np.array_equal(before[k], work.net.params[k]) for k in before)
    assert fastgrad.step_sweep is steps.step_sweep


def test_bad_sweep_inputs():
    work = standard_workload(batch=2, hidden=3, synthetic=True)
    with pytest.raises(ValueError, match=r"h must lie in \[1e-300, 1\]"):
        steps.step_sweep(work.net, work.x, work.t, steps=[2.0, 1e-3])
    with pytest.raises(ValueError, match="at least 2 step sizes"):
        steps.step_sweep(work.net, work.x, work.t, steps=[1e-3])
    with pytest.raises(ValueError, match="pass x and t"):
        steps.step_sweep(work.net)
    with pytest.raises(ValueError, match="without net"):
        steps.step_sweep(x=work.x, t=work.t)
    with pytest.raises(TypeError, match=r"net must have \.params"):
        steps.step_sweep(object(), work.x, work.t)
    with pytest.raises(ValueError, match="sample must be a positive integer"):
        steps.step_sweep(work.net, work.x, work.t, sample=0)


def test_cli_table_json_and_plot(tmp_path, capsys):
    out_json, out_png = tmp_path / "s.json", tmp_path / "s.png"
    code = cli.main(["steps", "--batch", "3", "--hidden", "4", "--synthetic", "--sample", "8",
                     "--h-min", "1e-8", "--per-decade", "1", "--json", str(out_json),
                     "--plot", str(out_png)])
    assert code == 0
    out = capsys.readouterr().out
    assert "synthetic" in out and "best h" in out and "1.0e-08" in out
    data = json.loads(out_json.read_text())
    assert [c["name"] for c in data["curves"]] == ["reference", "incremental", "float32"]
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_plot_without_matplotlib(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails
    code = cli.main(["steps", "--synthetic", "--plot", str(tmp_path / "s.png")])
    assert code == 2 and "pip install 'fastgrad[plot]'" in capsys.readouterr().err
    assert not (tmp_path / "s.png").exists()


def test_cli_bad_grid(capsys):
    assert cli.main(["steps", "--h-min", "1e-1", "--h-max", "1e-2"]) == 2
    assert "--h-min" in capsys.readouterr().err
