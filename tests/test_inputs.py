"""Bad input gets a clear ValueError/TypeError naming the argument; params survive."""

from __future__ import annotations

import numpy as np
import pytest

from fastgrad import TwoLayerNet, compute_gradient
from fastgrad.methods import METHODS
from tests.cases import make_case

ALL = list(METHODS)


@pytest.fixture
def case():
    return make_case(8, 4, 3, 5, 0)


def _assert_unchanged(params, before):
    assert all(np.array_equal(params[k], before[k]) for k in params)


def _bad_calls(params, x, t):
    """(description, kwargs override, exception type, message pattern)."""
    p = lambda **kw: {**params, **kw}  # noqa: E731
    nan_x = x.astype(np.float64)
    nan_x[0, 0] = np.nan
    inf_w = params["W1"].copy()
    inf_w[1, 1] = np.inf
    return [
        ("x wrong width", {"x": x[:, :-1]}, ValueError, r"x must have shape \(batch, 8\)"),
        ("x 3-d", {"x": x[None]}, ValueError, "x must have shape"),
        ("x empty batch", {"x": x[:0], "t": t[:0]}, ValueError, "empty batch"),
        ("x NaN", {"x": nan_x}, ValueError, "x contains NaN"),
        ("x strings", {"x": np.array([["a"] * 8] * 5)}, TypeError, "x must be"),
        ("x complex", {"x": x + 1j}, TypeError, "x must be a real"),
        ("t too short", {"t": t[:-1]}, ValueError, "t must be 5 integer labels"),
        ("t out of range", {"t": np.array([0, 1, 2, 3, 0])}, ValueError, r"t labels must lie"),
        ("t negative", {"t": np.array([0, -1, 2, 1, 0])}, ValueError, r"t labels must lie"),
        ("t fractional", {"t": np.array([0, 1.5, 2, 1, 0])}, ValueError, "integer labels"),
        ("t NaN", {"t": np.array([0, np.nan, 2, 1, 0])}, ValueError, "t contains NaN"),
        ("t soft rows", {"t": np.full((5, 3), 1 / 3)}, ValueError, "one-hot"),
        ("t two hot", {"t": np.ones((5, 3))}, ValueError, "one-hot"),
        ("W1 Inf", {"params": p(W1=inf_w)}, ValueError, r"params\['W1'\] contains NaN"),
        ("b1 wrong", {"params": p(b1=np.zeros(5))}, ValueError, r"params\['b1'\] must have"),
        ("W2 wrong", {"params": p(W2=np.zeros((5, 3)))}, ValueError, r"params\['W2'\]"),
        ("b2 2-d", {"params": p(b2=np.zeros((3, 1)))}, ValueError, r"params\['b2'\]"),
        ("W1 missing", {"params": {k: v for k, v in params.items() if k != "W1"}},
         ValueError, "missing W1"),
        ("params list", {"params": [1, 2]}, TypeError, "params must be a dict"),
        ("h zero", {"h": 0.0}, ValueError, "h must be positive"),
        ("h negative", {"h": -1e-4}, ValueError, "h must be positive"),
        ("h NaN", {"h": float("nan")}, ValueError, "h must be positive and finite"),
        ("h Inf", {"h": float("inf")}, ValueError, "h must be positive and finite"),
        ("h string", {"h": "1e-4"}, TypeError, "h must be a real number"),
        ("h above 1", {"h": 2.0}, ValueError, r"h must lie in \[1e-300, 1\]"),
        ("h subnormal", {"h": 5e-324}, ValueError, r"h must lie in"),
        ("x masked", {"x": np.ma.masked_array(x, mask=x > 0)}, TypeError, "masked"),
        ("threads zero", {"threads": 0}, ValueError, "threads must be between 1"),
        ("threads huge", {"threads": 10_000}, ValueError, "threads must be between 1"),
        ("threads float", {"threads": 1.5}, TypeError, "threads must be an integer"),
        ("threads bool", {"threads": True}, TypeError, "threads must be an integer"),
    ]


@pytest.mark.parametrize("method", ALL)
def test_bad_inputs_raise_clear_errors(case, method):
    params, x, t = case
    before = {k: v.copy() for k, v in params.items()}
    for _what, override, exc, pattern in _bad_calls(params, x, t):
        kwargs = {"params": params, "x": x, "t": t, "h": 1e-4, "threads": None, **override}
        with pytest.raises(exc, match=pattern):
            compute_gradient(method, **kwargs)
        _assert_unchanged(params, before)


def test_unknown_method(case):
    params, x, t = case
    with pytest.raises(ValueError, match="unknown method 'fast'"):
        compute_gradient("fast", params, x, t)
    with pytest.raises(TypeError, match="method must be a string"):
        compute_gradient(None, params, x, t)
    net = TwoLayerNet(8, 4, 3, seed=0)
    with pytest.raises(ValueError, match="unknown method 'backprop'"):
        net.numerical_gradient(x, t, method="backprop")


def test_boolean_one_hot_labels_are_accepted(case):
    params, x, t = case
    one_hot = np.eye(3, dtype=bool)[t]
    a = compute_gradient("incremental", params, x, one_hot)
    b = compute_gradient("incremental", params, x, t)
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_network_constructor_validation():
    with pytest.raises(ValueError, match="hidden_size"):
        TwoLayerNet(784, 0, 10)
    with pytest.raises(TypeError, match="input_size"):
        TwoLayerNet(784.0, 50, 10)
    with pytest.raises(ValueError, match="weight_init_std"):
        TwoLayerNet(784, 50, 10, weight_init_std=float("nan"))
    with pytest.raises(TypeError, match="weight_init_std"):
        TwoLayerNet(784, 50, 10, weight_init_std=None)
    with pytest.raises(ValueError, match="seed"):
        TwoLayerNet(784, 50, 10, seed=-1)


def test_net_methods_validate_after_params_replaced(case):
    _, x, t = case
    net = TwoLayerNet(8, 4, 3, seed=0)
    net.params["W2"] = np.zeros((5, 3))
    for call in (lambda: net.loss(x, t), lambda: net.predict(x),
                 lambda: net.numerical_gradient(x, t), lambda: net.gradient(x, t)):
        with pytest.raises(ValueError, match=r"params\['W2'\]"):
            call()


def test_single_sample_1d_input_is_a_batch_of_one(case):
    params, x, t = case
    one = compute_gradient("incremental", params, x[0], t[:1])
    two = compute_gradient("incremental", params, x[:1], t[:1])
    assert all(np.array_equal(one[k], two[k]) for k in params)
