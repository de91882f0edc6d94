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
    with pytest.raises(TypeError, match="does not compile"):
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


# --- args= ------------------------------------------------------------------------


def quad_form(x, a, c):
    """0.5 x.A.x + c.x over the flattened x (a loop, so plain and jitted sum alike)."""
    flat = x.reshape(-1)
    total = 0.0
    for i in range(flat.size):
        total += c[i] * flat[i]
        for j in range(flat.size):
            total += 0.5 * flat[i] * a[i, j] * flat[j]
    return total


def scaled_norm(x, scale, power):
    """scale * sum(|x|^power) + a nested-tuple argument's offset."""
    flat = x.reshape(-1)
    total = 0.0
    for i in range(flat.size):
        total += abs(flat[i]) ** power
    return scale * total


def with_nested(x, pair, k):
    w, (s, b) = pair
    flat = x.reshape(-1)
    total = 0.0
    for i in range(flat.size):
        v = s * flat[i] + b[i % b.size]
        total += w[i] * v / (1.0 + v * v)  # basic operations: rounded alike in both engines
    return total * k


def _quad_args(n, rng):
    a = rng.standard_normal((n, n))
    return (a + a.T, rng.standard_normal(n))


CASES = [
    (quad_form, (6,), lambda rng: _quad_args(6, rng)),
    (quad_form, (2, 3), lambda rng: _quad_args(6, rng)),
    (scaled_norm, (3, 2, 2), lambda rng: (2.5, 3)),
    (with_nested, (5,), lambda rng: ((rng.standard_normal(5), (0.7, rng.standard_normal(2))), 3)),
    (with_nested, (2, 4), lambda rng: ((rng.standard_normal(8), (1.3, np.ones(1))), -1.0)),
]


@pytest.mark.parametrize("func, shape, make_args", CASES)
def test_args_jitted_and_plain_agree(func, shape, make_args):
    rng = np.random.default_rng(3)
    x = rng.uniform(0.5, 1.5, shape)
    args = make_args(rng)
    snapshot = [np.copy(a) for a in _leaves(args)]
    x_before = x.copy()
    fast = fastgrad.numerical_gradient(njit(func), x, args=args)
    slow = fastgrad.numerical_gradient(func, x, args=args)
    assert fast.shape == shape
    assert np.max(np.abs(fast - slow)) <= 1e-12
    assert np.array_equal(x, x_before)
    for before, after in zip(snapshot, _leaves(args), strict=True):
        assert np.array_equal(before, after) and np.asarray(after).dtype == before.dtype


def _leaves(value):
    if isinstance(value, tuple):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


def test_quadratic_form_gradient_is_exact():
    rng = np.random.default_rng(4)
    a, c = _quad_args(6, rng)
    x = rng.standard_normal(6)
    g = fastgrad.numerical_gradient(njit(quad_form), x, args=(a, c))
    np.testing.assert_allclose(g, a @ x + c, atol=1e-8)


def test_arrays_in_args_are_not_frozen():
    f = njit(lambda x, w: np.sum(x * w))
    x = np.ones(4)
    w = np.arange(4.0)
    first = fastgrad.numerical_gradient(f, x, args=(w,))
    w[:] = -7.0  # the same array object, new data
    second = fastgrad.numerical_gradient(f, x, args=(w,))
    np.testing.assert_allclose(first, [0, 1, 2, 3], atol=1e-8)
    np.testing.assert_allclose(second, -7.0, atol=1e-8)
    third = fastgrad.numerical_gradient(f, x, args=(np.full(4, 2.0),))
    np.testing.assert_allclose(third, 2.0, atol=1e-8)


def test_scalar_args_are_arguments_not_constants():
    f = njit(lambda x, s: s * np.sum(x**2))
    x = np.array([1.0, 2.0])
    for s in (1.0, 3.0):
        np.testing.assert_allclose(fastgrad.numerical_gradient(f, x, args=(s,)), 2 * s * x,
                                   atol=1e-7)
    assert len(f.signatures) == 1  # one compilation served both values


def test_args_are_read_only_for_f():
    def writes(x, w):
        w[0] = 1.0
        return float(np.sum(x))

    w = np.zeros(3)
    with pytest.raises(ValueError, match="read-only"):
        fastgrad.numerical_gradient(writes, np.ones(3), args=(w,))
    with pytest.raises(TypeError, match=r"f \(writes\) does not compile.*read-only"):
        fastgrad.numerical_gradient(njit(writes), np.ones(3), args=(w,))
    assert np.array_equal(w, np.zeros(3))


def test_bad_args():
    f = njit(lambda x, w: np.sum(x * w))
    with pytest.raises(TypeError, match="args must be a tuple"):
        fastgrad.numerical_gradient(f, np.ones(3), args=[np.ones(3)])
    with pytest.raises(TypeError, match="args must be a tuple"):
        fastgrad.numerical_gradient(f, np.ones(3), args=np.ones(3))
    with pytest.raises(TypeError, match=r"args\[0\] must be an array.*got list"):
        fastgrad.numerical_gradient(f, np.ones(3), args=([1.0, 2.0, 3.0],))
    with pytest.raises(TypeError, match=r"args\[0\]\[1\] must be a plain numeric array"):
        fastgrad.numerical_gradient(f, np.ones(3), args=((1.0, np.array(["a"])),))
    with pytest.raises(TypeError, match=r"f \(<lambda>\) does not compile"):
        fastgrad.numerical_gradient(f, np.ones(3), args=(np.ones(3), 2.0))


@pytest.mark.parametrize("jit", [False, True])
def test_f_returning_no_scalar(jit):
    wrap = njit if jit else (lambda fn: fn)
    vector = wrap(lambda x: x * 2.0)
    with pytest.raises(TypeError, match=r"real scalar, got ndarray of shape \(3,\) at x"):
        fastgrad.numerical_gradient(vector, np.ones(3))
    cplx = wrap(lambda x: np.sum(x) * 1j)
    with pytest.raises(TypeError, match="real scalar, got complex"):
        fastgrad.numerical_gradient(cplx, np.ones(3))


@pytest.mark.parametrize("jit", [False, True])
def test_f_returning_nan_names_the_index(jit):
    wrap = njit if jit else (lambda fn: fn)

    def log_sum(x):  # NaN once x[1, 2] - h goes below zero
        return np.sum(np.log(x))

    x = np.ones((2, 3))
    x[1, 2] = 5e-5
    with np.errstate(all="ignore"):  # NumPy's warnings about the log are not the point
        with pytest.raises(ValueError, match=r"finite value, got nan at x - h\*e\[\(1, 2\)\]"):
            fastgrad.numerical_gradient(wrap(log_sum), x)
        with pytest.raises(ValueError, match=r"finite value, got -inf at x$"):
            fastgrad.numerical_gradient(wrap(log_sum), np.zeros(2))
