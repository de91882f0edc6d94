"""fastgrad.jacobian against analytic Jacobians, NumPy loops and itself across threads."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

import fastgrad
from fastgrad import config


def layer(x, w, b):
    """tanh(w @ x + b) for x of any shape (raveled): one dense layer's forward."""
    return np.tanh(w @ x.reshape(-1) + b)


def layer_jacobian(x, w, b):
    return (1.0 - np.tanh(w @ x.reshape(-1) + b) ** 2)[:, None] * w


jitted_layer = njit(layer)


def loop_jacobian(f, x, h, args=()):
    """The independent witness: one column at a time, by hand, in NumPy."""
    x = np.array(x, dtype=np.float64)
    cols = []
    for p in range(x.size):
        plus, minus = x.copy().reshape(-1), x.copy().reshape(-1)
        plus[p] += h
        minus[p] -= h
        cols.append((np.ravel(f(plus.reshape(x.shape), *args))
                     - np.ravel(f(minus.reshape(x.shape), *args))) / (2 * h))
    return np.stack(cols, axis=1)


@pytest.fixture
def problem():
    rng = np.random.default_rng(0)
    return rng.standard_normal((2, 3)), rng.standard_normal((4, 6)), rng.standard_normal(4)


@pytest.mark.parametrize("f", [layer, jitted_layer], ids=["plain", "jitted"])
def test_matches_the_analytic_jacobian_and_the_loop(f, problem):
    x, w, b = problem
    before = x.copy()
    jac = fastgrad.jacobian(f, x, args=(w, b))
    assert jac.shape == (4, 6) and jac.dtype == np.float64
    np.testing.assert_allclose(jac, layer_jacobian(x, w, b), atol=1e-8)
    assert np.max(np.abs(jac - loop_jacobian(layer, x, 1e-4, (w, b)))) <= 1e-9
    assert np.array_equal(x, before)


def test_jitted_and_plain_agree_and_threads_are_bitwise(problem):
    x, w, b = problem
    plain = fastgrad.jacobian(layer, x, args=(w, b), h=1e-3)
    one = fastgrad.jacobian(jitted_layer, x, args=(w, b), h=1e-3, threads=1)
    two = fastgrad.jacobian(jitted_layer, x, args=(w, b), h=1e-3, threads=2)
    assert np.array_equal(one, two)
    assert np.max(np.abs(one - plain)) <= 1e-12


def test_output_of_any_shape_is_raveled_into_rows():
    f = njit(lambda x: np.outer(x, x))  # (3, 3) output: d(x_i x_j)/dx_k
    x = np.array([1.0, -2.0, 0.5])
    jac = fastgrad.jacobian(f, x)
    exact = np.zeros((9, 3))
    for i in range(3):
        for j in range(3):
            exact[3 * i + j, i] += x[j]
            exact[3 * i + j, j] += x[i]
    np.testing.assert_allclose(jac, exact, atol=1e-9)


def test_scalar_f_gives_one_row_equal_to_the_gradient():
    f = njit(lambda x: np.sum(np.sin(x) * x))
    x = np.linspace(-1, 1, 7)
    jac = fastgrad.jacobian(f, x)
    assert jac.shape == (1, 7)
    assert np.array_equal(jac[0], fastgrad.numerical_gradient(f, x))


def test_float32_output_and_input():
    f = njit(lambda x: (x * x).astype(np.float32))
    x = np.array([1.0, 2.0], dtype=np.float32)
    jac = fastgrad.jacobian(f, x, h=1e-2)
    np.testing.assert_allclose(jac, np.diag(2 * x.astype(np.float64)), rtol=1e-3, atol=1e-3)


def test_bad_outputs_are_named():
    x = np.ones(3)
    calls = []

    def changing(a):
        calls.append(1)
        return np.ones(2 if len(calls) == 1 else 3) * a.sum()

    with pytest.raises(ValueError, match=r"same shape.*\(2,\) at x.*x \+ h\*e\[\(0,\)\]"):
        fastgrad.jacobian(changing, x)
    grows = njit(lambda a: np.ones(2 + int(a[1] > 1.00001)) * a.sum())
    with pytest.raises(ValueError, match=r"same shape.*got 3 values at x \+ h\*e\[\(1,\)\]"):
        fastgrad.jacobian(grows, x, h=1e-3)
    nan_at = njit(lambda a: np.array([np.log(a[2] - 0.99995), a[0]]))
    with pytest.raises(ValueError, match=r"finite value, got nan at x - h\*e\[\(2,\)\]"):
        fastgrad.jacobian(nan_at, x)
    with pytest.raises(TypeError, match="complex"):
        fastgrad.jacobian(lambda a: a * 1j, x)
    with pytest.raises(TypeError, match="real scalar or array"):
        fastgrad.jacobian(lambda a: "text", x)
    with pytest.raises(TypeError, match="f must be callable"):
        fastgrad.jacobian(3.0, x)
    with pytest.raises(ValueError, match="h must be positive"):
        fastgrad.jacobian(layer, x, h=0.0)


def test_threads_never_share_one_array():
    """Each chunk of columns perturbs its own copy of x: with one shared array, a
    thread's evaluations would see another's x_q +- h (every call sums all 3000
    elements, so the threads overlap for the whole run)."""
    threads = config.max_threads()
    if threads < 2:
        pytest.skip("Numba runs one thread here: no race to provoke")
    f = njit(lambda a: np.array([np.sum(np.sin(a) * a), np.sum(a * a)]))
    x = np.linspace(-2.0, 2.0, 3000)
    jac = fastgrad.jacobian(f, x, threads=threads)
    np.testing.assert_allclose(jac[0], np.cos(x) * x + np.sin(x), rtol=0, atol=1e-6)
    np.testing.assert_allclose(jac[1], 2 * x, rtol=0, atol=1e-6)
