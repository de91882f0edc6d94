"""The NumPy reference: the book's loop, exact restoration, analytic cross-checks."""

import numpy as np
import pytest

from fastgrad import reference
from fastgrad.functions import LOG_EPS
from tests.cases import make_case


def test_numerical_gradient_of_quadratic_any_shape():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 4))
    before = x.copy()
    grad = reference.numerical_gradient(lambda a: float(np.sum(a**2)), x)
    np.testing.assert_allclose(grad, 2 * before, atol=1e-9)
    assert np.array_equal(x, before)  # every element restored exactly


def test_numerical_gradient_restores_on_error():
    x = np.linspace(0.1, 1.0, 7)
    before = x.copy()
    calls = []

    def f(a):
        calls.append(1)
        if len(calls) == 6:
            raise RuntimeError("boom")
        return float(a.sum())

    with pytest.raises(RuntimeError):
        reference.numerical_gradient(f, x)
    assert np.array_equal(x, before)


def test_numerical_gradient_rejects_integer_arrays():
    with pytest.raises(TypeError, match="x"):
        reference.numerical_gradient(lambda a: 0.0, np.arange(3))


def test_numerical_gradient_non_contiguous_view():
    base = np.arange(12.0).reshape(3, 4)
    view = base[:, ::2]
    grad = reference.numerical_gradient(lambda a: float(np.sum(a**3)), view)
    np.testing.assert_allclose(grad, 3 * view**2, rtol=1e-7, atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_reference_matches_exact_analytic_gradient(seed):
    params, x, t = make_case(12, 5, 4, 6, seed)
    x = x.astype(np.float64)
    num = reference.net_numerical_gradient(params, x, t)
    exact = reference.backprop_gradient(params, x, t, exact=True)
    for name in reference.PARAM_NAMES:
        # O(h^2) truncation plus rounding: well under 1e-7
        np.testing.assert_allclose(num[name], exact[name], atol=1e-7, rtol=0)


@pytest.mark.parametrize("seed", [0, 3])
def test_exact_and_book_backprop_differ_by_the_log_epsilon(seed):
    """The book's output error ``y - e_t`` times ``y_t / (y_t + eps)`` is the exact one, so
    the two differ by ``E = -eps (y - e_t) / (y_t + eps) / batch`` per sample, propagated:
    ``db2 = sum_n E``, ``dW2 = z1^T E`` in closed form, and every entry within
    ``eps mean(1 / y_t) max(1, max_j ||W2[j]||_1 / 4)`` (|y - e_t| <= 1, z in (0, 1),
    sigmoid' <= 1/4, x in [0, 1]): 5.9e-7 for seed 3, where the largest difference is 4.1e-7."""
    params, x, t = make_case(8, 4, 3, 5, seed)
    x = x.astype(np.float64)
    exact = reference.backprop_gradient(params, x, t, exact=True)
    book = reference.backprop_gradient(params, x, t)
    y = reference.predict(params, x)
    rows = np.arange(len(t))
    y_t = y[rows, t]
    err = y.copy()
    err[rows, t] -= 1.0
    E = -(LOG_EPS / (y_t + LOG_EPS))[:, None] * err / len(t)
    z1 = 1 / (1 + np.exp(-(x @ params["W1"] + params["b1"])))
    np.testing.assert_allclose(exact["b2"] - book["b2"], E.sum(axis=0), rtol=1e-6, atol=1e-15)
    np.testing.assert_allclose(exact["W2"] - book["W2"], z1.T @ E, rtol=1e-6, atol=1e-15)
    bound = LOG_EPS * np.mean(1 / y_t) * max(1.0, np.max(np.abs(params["W2"]).sum(axis=1)) / 4)
    for n in reference.PARAM_NAMES:
        assert np.max(np.abs(exact[n] - book[n])) <= bound, n


def test_reference_gradient_leaves_params_untouched():
    params, x, t = make_case(6, 3, 2, 2, 4)
    before = {k: v.copy() for k, v in params.items()}
    reference.net_numerical_gradient(params, x, t)
    for k in params:
        assert np.array_equal(params[k], before[k])
