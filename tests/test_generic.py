"""fastgrad.numerical_gradient on plain and Numba-jitted functions."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

import fastgrad
from fastgrad import config


def plain(x):
    """sum(sin(x) x^2) + x0 x1 over the flattened array, summed left to right."""
    flat = x.reshape(-1)
    total = 0.0
    for i in range(flat.size):
        total += np.sin(flat[i]) * flat[i] ** 2
    return total + flat[0] * flat[-1 if flat.size < 2 else 1]


jitted = njit(plain)  # the same arithmetic, compiled


@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 3, 2)])
def test_jitted_and_plain_agree(shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    before = x.copy()
    fast = fastgrad.numerical_gradient(jitted, x)
    slow = fastgrad.numerical_gradient(plain, x)
    assert fast.shape == shape and slow.shape == shape
    assert np.max(np.abs(fast - slow)) <= 1e-12  # only the engines differ
    assert np.array_equal(x, before)
    analytic = np.sin(before) * 2 * before + np.cos(before) * before**2
    flat = analytic.reshape(-1)
    flat[0] += before.reshape(-1)[1]
    flat[1] += before.reshape(-1)[0]
    np.testing.assert_allclose(fast, analytic, atol=1e-7)


def test_numpy_style_functions_agree_to_rounding():
    """np.sum sums pairwise, Numba left to right: the values differ by rounding only."""
    f = njit(lambda a: np.sum(a**3) - a[0, 0] * a[1, 1])
    x = np.random.default_rng(1).standard_normal((4, 5))
    fast = fastgrad.numerical_gradient(f, x)
    slow = fastgrad.numerical_gradient(lambda a: float(np.sum(a**3) - a[0, 0] * a[1, 1]), x)
    assert np.max(np.abs(fast - slow)) <= 1e-10


def test_jitted_bitwise_for_any_thread_count():
    x = np.linspace(-1, 1, 101)
    one = fastgrad.numerical_gradient(jitted, x, threads=1)
    two = fastgrad.numerical_gradient(jitted, x, threads=2)
    assert np.array_equal(one, two)


def test_integer_and_float32_inputs_are_converted():
    x = np.arange(5)
    g = fastgrad.numerical_gradient(lambda a: float(np.sum(a**2)), x)
    np.testing.assert_allclose(g, 2 * x, atol=1e-7)
    g32 = fastgrad.numerical_gradient(jitted, x.astype(np.float32))
    assert g32.dtype == np.float64


def test_zero_dimensional_input():
    f = njit(lambda a: a**3)
    x = np.array(2.0)
    for fn in (f, lambda a: float(a**3)):
        g = fastgrad.numerical_gradient(fn, x)
        assert g.shape == () and abs(g - 12.0) < 1e-6


def test_jitted_function_of_the_wrong_kind():
    with pytest.raises(TypeError, match="f must compile"):
        fastgrad.numerical_gradient(njit(lambda a, b: a[0] + b), np.ones(3))


def test_bad_inputs():
    with pytest.raises(TypeError, match="f must be callable"):
        fastgrad.numerical_gradient(3, np.ones(2))
    with pytest.raises(ValueError, match="h must be positive"):
        fastgrad.numerical_gradient(plain, np.ones(2), h=0)
    with pytest.raises(ValueError, match="x contains NaN"):
        fastgrad.numerical_gradient(plain, np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="at least one element"):
        fastgrad.numerical_gradient(plain, np.array([]))
    with pytest.raises(TypeError, match="x must be a real"):
        fastgrad.numerical_gradient(plain, np.array(["a"]))
    with pytest.raises(ValueError, match="threads"):
        fastgrad.numerical_gradient(jitted, np.ones(3), threads=0)


def test_threads_never_share_one_array():
    """Each chunk of parameters must perturb its own copy of ``x``.

    Were the threads to write one shared array, every evaluation of ``f`` by one
    thread would see another thread's ``x_q +- h`` and its quotient would be off
    by about ``|df/dx_q| / 2``. Here every ``f`` call sums all 3000 elements, so
    the calls take long enough that the threads overlap for the whole run and a
    shared array corrupts entries in every run, not in some (7 elements did not).
    """
    threads = config.max_threads()
    if threads < 2:
        pytest.skip("Numba runs one thread here: no race to provoke")
    x = np.linspace(-2.0, 2.0, 3000)
    grad = fastgrad.numerical_gradient(jitted, x, threads=threads)
    analytic = np.sin(x) * 2 * x + np.cos(x) * x**2
    analytic[0] += x[1]
    analytic[1] += x[0]
    np.testing.assert_allclose(grad, analytic, rtol=0, atol=1e-6)
