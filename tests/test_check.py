"""``fastgrad check``, validation reports and the CLI entry points."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from fastgrad import cli, validate
from fastgrad.methods import METHODS
from tests.cases import make_case


def test_validate_reports_every_method_and_tensor():
    params, x, t = make_case(12, 4, 3, 6, 0)
    reports = validate.validate(params, x, t)
    assert [(r.method, r.against) for r in reports] == [
        ("jit", "reference"), ("incremental", "reference"),
        ("reference", "analytic"), ("reference", "backprop")]
    assert all(r.ok for r in reports)
    assert [te.name for te in reports[0].tensors] == ["W1", "b1", "W2", "b2"]


def test_validate_catches_a_wrong_method(monkeypatch):
    params, x, t = make_case(12, 4, 3, 6, 1)
    real = METHODS["incremental"]

    def off_by_a_bit(*args):
        grads = real.func(*args)
        grads["W2"][1, 2] += 3e-9
        return grads

    monkeypatch.setitem(METHODS, "incremental", real.__class__(
        real.name, off_by_a_bit, real.numerical, real.compiled, real.summary))
    reports = validate.validate(params, x, t, methods=["incremental"])
    assert not reports[0].ok
    w2 = reports[0].tensors[2]
    assert w2.worst_index == (1, 2) and w2.max_abs == pytest.approx(3e-9, rel=1e-2)


def test_check_cli_passes_on_small_synthetic_batch(capsys):
    assert cli.main(["check", "--batch", "4", "--hidden", "6", "--synthetic"]) == 0
    out = capsys.readouterr().out
    assert "synthetic" in out and "all methods within tolerance" in out
    for name in ("jit", "incremental", "analytic", "backprop"):
        assert name in out


def test_check_cli_real_digits(capsys, mnist_batch):
    assert cli.main(["check", "--batch", "3", "--hidden", "5", "--methods", "incremental"]) == 0
    assert "mnist test digits" in capsys.readouterr().out


def test_check_cli_fails_when_tolerance_is_impossible(capsys):
    code = cli.main(["check", "--batch", "3", "--hidden", "4", "--synthetic", "--tol", "1e-30"])
    assert code == 1
    assert "FAILED" in capsys.readouterr().out


def test_cli_reports_bad_arguments(capsys):
    assert cli.main(["check", "--batch", "0", "--synthetic"]) == 2
    assert "batch must be a positive integer" in capsys.readouterr().err
    assert cli.main(["check", "--threads", "0", "--synthetic", "--batch", "2"]) == 2
    with pytest.raises(SystemExit):
        cli.main(["check", "--methods", "nope"])


def test_python_dash_m_entry_point():
    out = subprocess.run([sys.executable, "-m", "fastgrad", "--help"], capture_output=True,
                         text=True, check=True).stdout
    for command in ("check", "bench", "train", "download"):
        assert command in out


def test_synthetic_workload_looks_like_mnist():
    from fastgrad.standard import standard_workload

    w = standard_workload(batch=200, synthetic=True)
    assert w.x.dtype == np.float32 and w.x.min() == 0.0 and w.x.max() <= 1.0
    assert 0.15 < np.mean(w.x > 0) < 0.24
    assert not w.real and "synthetic" in w.source


@pytest.mark.parametrize("layer", ["tbb", "omp"])
def test_threading_layer_chosen_by_the_user_loads(layer):
    """NUMBA_THREADING_LAYER is respected, and TBB loads from the wheel in a venv."""
    code = ("import numpy as np, fastgrad, numba\n"
            "from fastgrad.standard import synthetic_batch\n"
            "x, t = synthetic_batch(3)\n"
            "fastgrad.TwoLayerNet(784, 4, 10, seed=0).numerical_gradient(x, t)\n"
            "print(numba.threading_layer())")
    env = {**os.environ, "NUMBA_THREADING_LAYER": layer}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-1500:]
    assert out.stdout.strip() == layer


# --- each tolerance can fail the check ------------------------------------------------


def _failed(out):
    return out.split("FAILED:", 1)[1].strip() if "FAILED:" in out else ""


@pytest.mark.parametrize("data", [["--synthetic"], []], ids=["synthetic", "readme"])
def test_readme_large_step_example_exits_1(capsys, data, request):
    """README: ``fastgrad check --batch 1 --hidden 7 --h 1e-2`` exits 1, because at h = 1e-2
    the central difference's own O(h^2) error (~1e-6) exceeds the analytic tolerance."""
    if not data:
        request.getfixturevalue("mnist_batch")  # README's run uses the real digits
    args = ["check", "--batch", "1", "--hidden", "7", "--h", "1e-2", *data]
    assert cli.main(args) == 1
    assert _failed(capsys.readouterr().out) == "reference vs analytic"
    # the same run within a looser --backprop-tol passes: the flag is what decides
    assert cli.main([*args, "--backprop-tol", "1e-4"]) == 0


def test_backprop_tolerance_fails_the_check(capsys):
    args = ["check", "--batch", "2", "--hidden", "3", "--synthetic", "--methods", "incremental"]
    assert cli.main([*args, "--backprop-tol", "1e-30"]) == 1
    assert _failed(capsys.readouterr().out) == "reference vs analytic"


def test_default_tolerance_fails_a_method_off_by_3e_9(capsys, monkeypatch):
    real = METHODS["incremental"]

    def off(*args):
        grads = real.func(*args)
        grads["b2"][0] += 3e-9
        return grads

    monkeypatch.setitem(METHODS, "incremental", real.__class__(
        real.name, off, real.numerical, real.compiled, real.summary))
    args = ["check", "--batch", "2", "--hidden", "3", "--synthetic", "--methods", "incremental"]
    assert cli.main(args) == 1
    assert _failed(capsys.readouterr().out) == "incremental vs reference"
    assert cli.main([*args, "--tol", "1e-8"]) == 0


def test_relu_kinks_are_excused_and_a_wrong_reference_is_not(monkeypatch):
    """ReLU: entries whose step crosses a kink are excused one by one, not by a share."""
    params, x, t = make_case(12, 8, 3, 10, 2)
    pre = x @ params["W1"] + params["b1"]
    params["b1"][3] -= pre[0, 3]  # unit 3 exactly at zero on sample 0: b1[3]'s step crosses
    reports = validate.validate(params, x, t, activation="relu", methods=["incremental"])
    analytic = reports[1]
    assert (analytic.method, analytic.against) == ("reference", "analytic")
    assert analytic.ok and analytic.excusable and analytic.excused >= 1
    b1 = next(te for te in analytic.tensors if te.name == "b1")
    assert b1.excused >= 1 and b1.max_abs > validate.BACKPROP_TOL
    real = validate.reference_gradient

    def wrong_reference(*args, **kwargs):
        grads = real(*args, **kwargs)
        grads["W2"][4, 1] += 1e-5  # one entry off, on a smooth part of the loss
        return grads

    monkeypatch.setattr(validate, "reference_gradient", wrong_reference)
    bad = validate.validate(params, x, t, activation="relu", methods=["incremental"])
    w2 = next(te for te in bad[1].tensors if te.name == "W2")
    assert not bad[1].ok and w2.within == w2.compared - 1 and w2.worst_index == (4, 1)


def test_check_cli_on_a_relu_net(capsys):
    assert cli.main(["check", "--batch", "8", "--hidden", "10", "10", "--activation", "relu",
                     "--synthetic", "--methods", "incremental"]) == 0
    out = capsys.readouterr().out
    assert "excused" in out and "all methods within tolerance" in out
