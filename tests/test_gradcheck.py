"""fastgrad.gradcheck: full and directional checks of a user's analytic gradient."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

import fastgrad


def loss(x, w, c):
    """sum(w * exp(sin(x))) + c * sum(x^2), over the flattened x."""
    flat = x.reshape(-1)
    total = 0.0
    for i in range(flat.size):
        total += w[i] * np.exp(np.sin(flat[i])) + c * flat[i] * flat[i]
    return total


def loss_grad(x, w, c):
    return w.reshape(x.shape) * np.exp(np.sin(x)) * np.cos(x) + 2 * c * x


jitted = njit(loss)


@pytest.fixture
def problem():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4))
    return x, (rng.uniform(0.5, 2.0, 12), 0.3)


@pytest.mark.parametrize("f", [loss, jitted], ids=["plain", "jitted"])
def test_correct_gradient_passes(f, problem):
    x, args = problem
    before = x.copy(), args[0].copy()
    report = fastgrad.gradcheck(f, x, loss_grad(x, *args), args=args)
    assert report and report.ok and report.n_failed == 0 and report.mode == "full"
    assert report.n_checked == 12 and report.max_abs < 1e-7
    assert np.array_equal(x, before[0]) and np.array_equal(args[0], before[1])
    callable_grad = fastgrad.gradcheck(f, x, loss_grad, args=args)
    assert callable_grad.ok and callable_grad.max_abs == report.max_abs
    text = str(report)
    assert "gradcheck passed" in text and "full mode" in text and "rule:" in text


@pytest.mark.parametrize("f", [loss, jitted], ids=["plain", "jitted"])
def test_one_wrong_element_is_named(f, problem):
    x, args = problem
    grad = loss_grad(x, *args)
    grad[2, 1] += 1e-3  # beyond atol + rtol |g| for every element here
    report = fastgrad.gradcheck(f, x, grad, args=args)
    assert not report and report.n_failed == 1
    worst = report.worst[0]
    assert worst.index == (2, 1) and not worst.ok
    assert worst.analytic == grad[2, 1]
    assert abs(worst.numerical - loss_grad(x, *args)[2, 1]) < 1e-7
    assert all(m.ok for m in report.worst[1:])
    line = next(t for t in str(report).splitlines() if t.startswith("(2, 1)"))
    assert "FAIL" in line and "gradcheck FAILED" in str(report)


def test_tolerances_decide(problem):
    x, args = problem
    grad = loss_grad(x, *args)
    grad[0, 0] += 1e-4
    # the classic rule, asked for by its tolerances: within rtol 1e-3 of |g| ~ 2
    assert fastgrad.gradcheck(jitted, x, grad, args=args, atol=1e-5, rtol=1e-3)
    assert fastgrad.gradcheck(jitted, x, grad, args=args, rtol=1e-3)  # atol defaults to 1e-5
    # by default no tolerance: 1e-4 is far beyond the finite difference's own error (~1e-9)
    default = fastgrad.gradcheck(jitted, x, grad, args=args)
    assert not default and default.atol is None and default.worst[0].index == (0, 0)
    assert not fastgrad.gradcheck(jitted, x, grad, args=args, rtol=0.0)
    assert fastgrad.gradcheck(jitted, x, grad, args=args, rtol=0.0, atol=2e-4)


def test_directional_agrees_with_full_on_a_correct_gradient(problem):
    x, args = problem
    grad = loss_grad(x, *args)
    full = fastgrad.gradcheck(jitted, x, grad, args=args)
    directional = fastgrad.gradcheck(jitted, x, grad, args=args, directions=16, seed=1)
    assert full.ok and directional.ok
    assert directional.mode == "directional" and directional.n_checked == 16
    assert directional.max_abs < 1e-7 and "16 random unit directions" in str(directional)
    again = fastgrad.gradcheck(loss, x, grad, args=args, directions=16, seed=1)
    assert again.max_abs == directional.max_abs  # same seed, same directions


def test_directional_catches_one_wrong_element():
    """Off by d in one element moves v.grad by d/sqrt(n) in every random-sign direction."""
    rng = np.random.default_rng(2)
    n = 400
    x, w = rng.standard_normal(n), rng.uniform(0.5, 2.0, n)
    grad = loss_grad(x, w, 0.3)
    grad[123] += 0.5
    caught = [not fastgrad.gradcheck(jitted, x, grad, args=(w, 0.3), directions=k, seed=s)
              for s in range(5) for k in (4,)]
    assert all(caught)
    one = fastgrad.gradcheck(jitted, x, grad, args=(w, 0.3), directions=1, seed=0)
    many = fastgrad.gradcheck(jitted, x, grad, args=(w, 0.3), directions=32, seed=0)
    assert many.n_failed >= one.n_failed
    assert many.n_failed == 32  # 0.5/20 = 0.025, far beyond atol + rtol |v.g|


def test_directional_mode_on_a_million_elements_is_cheap():
    f = njit(lambda x: 0.5 * np.sum(x * x))
    x = np.linspace(-1, 1, 10**6)
    # h = 1e-2: the sum of a million squares carries rounding noise ~1e-9, over 2h
    report = fastgrad.gradcheck(f, x, x, directions=16, h=1e-2)
    assert report.ok and report.n_checked == 16 and report.max_abs < 1e-6
    wrong = x.copy()
    wrong[777_777] += 0.1  # moves v.grad by 1e-4 in every direction
    strict = {"directions": 16, "h": 1e-2, "rtol": 0.0}  # rtol |v.g| ~ 6e-4 would hide it
    assert fastgrad.gradcheck(f, x, x, **strict).ok
    assert fastgrad.gradcheck(f, x, wrong, **strict).n_failed == 16


def test_bad_inputs(problem):
    x, args = problem
    grad = loss_grad(x, *args)
    with pytest.raises(ValueError, match=r"grad must have the shape of x \(3, 4\), got \(12,\)"):
        fastgrad.gradcheck(loss, x, grad.ravel(), args=args)
    bad = grad.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"grad contains NaN.*index \(1, 2\)"):
        fastgrad.gradcheck(loss, x, bad, args=args)
    with pytest.raises(TypeError, match="grad must be a real numeric array"):
        fastgrad.gradcheck(loss, x, grad.astype(complex), args=args)
    with pytest.raises(ValueError, match="atol must be finite and >= 0"):
        fastgrad.gradcheck(loss, x, grad, args=args, atol=-1.0)
    with pytest.raises(ValueError, match="rtol must be finite and >= 0"):
        fastgrad.gradcheck(loss, x, grad, args=args, rtol=np.nan)
    with pytest.raises(ValueError, match="directions must be at least 1"):
        fastgrad.gradcheck(loss, x, grad, args=args, directions=0)
    with pytest.raises(TypeError, match="directions must be a positive integer"):
        fastgrad.gradcheck(loss, x, grad, args=args, directions=2.5)
    with pytest.raises(TypeError, match="args must be a tuple"):
        fastgrad.gradcheck(loss, x, grad, args=list(args))
    with pytest.raises(TypeError, match=r"f \(loss\) does not compile"):
        fastgrad.gradcheck(jitted, x, grad, args=args[:1], directions=2)
    nan_f = njit(lambda a: np.nan * np.sum(a))
    with pytest.raises(ValueError, match="finite value, got nan at x"):
        fastgrad.gradcheck(nan_f, x, grad, directions=2)
