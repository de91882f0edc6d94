"""MultiLayerNet (chapter 6) and the any-depth kernels against the NumPy reference.

Tolerance: float64 JIT vs reference, max abs <= 1e-9 (TOL), as everywhere.
"""

from __future__ import annotations

import numpy as np
import pytest

from fastgrad import MultiLayerNet, TwoLayerNet, compute_gradient, reference
from fastgrad.methods import METHODS
from tests.cases import run_with_four_threads

TOL = 1e-9
FAST = ["jit", "incremental"]


def deep_case(sizes, batch, seed, density=0.3, std=0.5):
    """Seeded params of any depth, sparse inputs in [0, 1], integer labels."""
    rng = np.random.default_rng(seed)
    params = {}
    for i in range(1, len(sizes)):
        params[f"W{i}"] = std * rng.standard_normal((sizes[i - 1], sizes[i]))
        params[f"b{i}"] = 0.1 * rng.standard_normal(sizes[i])
    x = rng.random((batch, sizes[0])) * (rng.random((batch, sizes[0])) < density)
    return params, x, rng.integers(0, sizes[-1], size=batch)


def max_abs_diff(a, b):
    assert a.keys() == b.keys()
    return max(float(np.max(np.abs(a[k] - b[k]))) for k in a)


SHAPES = [[6, 5, 3], [7, 5, 4, 3], [8, 6, 5, 4, 3], [9, 5, 6, 4, 5, 3]]


@pytest.mark.parametrize("method", FAST)
@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
@pytest.mark.parametrize("decay", [0.0, 0.3])
@pytest.mark.parametrize(("sizes", "batch"), list(zip(SHAPES, [1, 4, 1, 6], strict=True)))
def test_any_depth_matches_reference(method, activation, decay, sizes, batch):
    params, x, t = deep_case(sizes, batch, seed=len(sizes) + batch)
    kw = {"activation": activation, "weight_decay": decay}
    expected = compute_gradient("reference", params, x, t, **kw)
    got = compute_gradient(method, params, x, t, **kw)
    assert max_abs_diff(got, expected) <= TOL


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_one_hot_and_integer_labels_agree_bitwise(activation):
    params, x, t = deep_case([7, 5, 4, 3], 5, seed=3)
    one_hot = np.eye(3)[t]
    for method in FAST:
        a = compute_gradient(method, params, x, t, activation=activation)
        b = compute_gradient(method, params, x, one_hot, activation=activation)
        assert all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_incremental_is_the_finite_difference_not_the_derivative(activation):
    """At h = 1e-2 the O(h^2) truncation is visible: incremental keeps it."""
    params, x, t = deep_case([8, 6, 5, 4], 3, seed=11, std=1.0)
    kw = {"activation": activation, "h": 1e-2}
    ref = compute_gradient("reference", params, x, t, **kw)
    exact = reference.backprop_gradient(params, x, t, True, activation)
    assert max_abs_diff(ref, exact) > 1e-6  # the truncation error is there ...
    assert max_abs_diff(compute_gradient("incremental", params, x, t, **kw), ref) <= TOL


def _place_near_kinks(params, x, gap):
    """Move biases so that some pre-activation of sample 0 sits ``gap`` from zero, per layer."""
    pre = reference.forward(params, x, "relu")
    for layer in range(len(pre) - 1):
        for k in (0, 2):
            params[f"b{layer + 1}"][k] -= pre[layer][0, k] - gap * (-1) ** k
        pre = reference.forward(params, x, "relu")
    return pre


@pytest.mark.parametrize("sizes", [[6, 5, 4, 3], [6, 5, 5, 4, 3]])
def test_perturbations_that_cross_a_relu_kink(sizes):
    """Pre-activations within h*|x| of zero in every hidden layer: units flip under +-h."""
    params, x, t = deep_case(sizes, 2, seed=5, density=1.0)
    pre = _place_near_kinks(params, x, 2e-6)
    assert all(abs(p[0, 0]) < 1e-5 for p in pre[:-1])
    ref = compute_gradient("reference", params, x, t, activation="relu")
    exact = reference.backprop_gradient(params, x, t, True, "relu")
    assert max_abs_diff(ref, exact) > 1e-4  # kinks crossed: not the derivative
    for method in FAST:
        got = compute_gradient(method, params, x, t, activation="relu")
        assert max_abs_diff(got, ref) <= TOL, method


def test_large_logits_and_saturated_sigmoids():
    params, x, t = deep_case([6, 5, 4, 3], 3, seed=9)
    params["b3"] += 800.0  # softmax unchanged; without the max-shift exp overflows
    params["W1"] *= 600.0  # hidden units saturate: exp(-a) overflows
    for activation in ("relu", "sigmoid"):
        ref = compute_gradient("reference", params, x, t, activation=activation)
        for method in FAST:
            got = compute_gradient(method, params, x, t, activation=activation)
            assert max_abs_diff(got, ref) <= TOL, (activation, method)


@pytest.mark.parametrize("method", FAST)
def test_params_bitwise_unchanged(method):
    net = MultiLayerNet(8, [5, 4], 3, seed=2, weight_decay_lambda=0.1)
    before = {k: v.copy() for k, v in net.params.items()}
    _, x, t = deep_case([8, 5, 4, 3], 3, seed=2)
    net.numerical_gradient(x, t, method=method)
    assert all(np.array_equal(before[k], net.params[k]) for k in before)


DEEP_THREADS_SCRIPT = """
import numpy as np
from fastgrad import compute_gradient
from tests.test_multilayer import deep_case
params, x, t = deep_case([20, 9, 7, 6, 4], 9, seed=4)
for activation in ("relu", "sigmoid"):
    for method in ("jit", "incremental"):
        runs = [compute_gradient(method, params, x, t, threads=n, activation=activation)
                for n in (1, 2, 3, 4)]
        for r in runs[1:]:
            assert all(np.array_equal(runs[0][k], r[k]) for k in r), (activation, method)
print("ok")
"""


def test_bitwise_identical_for_any_thread_count():
    """1 to 4 threads in a process started with 4 (more than this machine has)."""
    run_with_four_threads(DEEP_THREADS_SCRIPT, timeout=600)


def test_chapter5_gradient_check(mnist_batch):
    """The book's gradient_check.py: ReLU TwoLayerNet, 3 digits, numerical vs backprop."""
    x, t = mnist_batch
    net = TwoLayerNet(784, 50, 10, seed=0, activation="relu")
    numerical = net.numerical_gradient(x[:3], t[:3])
    backprop = net.gradient(x[:3], t[:3])
    exact = reference.backprop_gradient(net.params, x[:3], np.asarray(t[:3], dtype=np.int64),
                                        True, "relu")
    for key in numerical:
        # the book prints W1 4e-10, b1 2e-9, W2 5e-9, b2 1.4e-7: its backprop drops the
        # 1e-7 in the log (a relative 1e-7 / y[t] on the output error, ~1e-7 on b2)
        assert np.mean(np.abs(numerical[key] - backprop[key])) < 5e-7, key
        assert np.mean(np.abs(numerical[key] - exact[key])) < 1e-9, key


def test_weight_decay_adds_lambda_w():
    net = MultiLayerNet(6, [5], 3, weight_decay_lambda=0.7, seed=1)
    plain = MultiLayerNet(6, [5], 3, seed=1)
    _, x, t = deep_case([6, 5, 3], 4, seed=1)
    with_decay, without = net.gradient(x, t), plain.gradient(x, t)
    for key in with_decay:
        extra = 0.7 * net.params[key] if key.startswith("W") else 0.0
        np.testing.assert_allclose(with_decay[key], without[key] + extra, rtol=0, atol=1e-15)
    numerical = net.numerical_gradient(x, t)
    assert max_abs_diff(numerical, with_decay) < 1e-6
    loss_gap = net.loss(x, t) - plain.loss(x, t)
    expected = 0.35 * sum(np.sum(net.params[f"W{i}"] ** 2) for i in (1, 2))
    assert loss_gap == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(("init", "gain"), [("relu", 2.0), ("he", 2.0), ("sigmoid", 1.0),
                                            ("xavier", 1.0)])
def test_named_initialisations(init, gain):
    net = MultiLayerNet(400, [300, 200], 10, weight_init_std=init, seed=0)
    for i, fan_in in enumerate((400, 300, 200), start=1):
        std = np.std(net.params[f"W{i}"])
        assert std == pytest.approx(np.sqrt(gain / fan_in), rel=0.05)
        assert not np.any(net.params[f"b{i}"])
    same = MultiLayerNet(400, [300, 200], 10, weight_init_std=init, seed=0)
    assert all(np.array_equal(net.params[k], same.params[k]) for k in net.params)


def test_two_layer_net_is_the_one_hidden_layer_case():
    two = TwoLayerNet(6, 5, 3, weight_init_std=0.3, seed=4, activation="relu")
    multi = MultiLayerNet(6, [5], 3, activation="relu", weight_init_std=0.3, seed=4)
    assert all(np.array_equal(two.params[k], multi.params[k]) for k in two.params)
    assert two.arch == multi.arch
    assert len(METHODS) == 4  # one registry for both


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"hidden_size_list": []}, ValueError, "hidden_size_list must not be empty"),
    ({"hidden_size_list": 5}, TypeError, "hidden_size_list must be a list"),
    ({"hidden_size_list": [4, 2.5]}, TypeError, r"hidden_size_list\[1\] must be an integer"),
    ({"hidden_size_list": [4, 0]}, ValueError, r"hidden_size_list\[1\] must be at least 1"),
    ({"input_size": 0}, ValueError, "input_size must be at least 1"),
    ({"activation": "tanh"}, ValueError, "activation must be one of"),
    ({"activation": None}, TypeError, "activation must be a string"),
    ({"weight_init_std": "glorot"}, ValueError, "weight_init_std must be a number or one of"),
    ({"weight_init_std": -1.0}, ValueError, "weight_init_std must be finite and >= 0"),
    ({"weight_decay_lambda": -0.1}, ValueError, "weight_decay_lambda must be finite and >= 0"),
    ({"weight_decay_lambda": float("nan")}, ValueError, "weight_decay_lambda must be finite"),
    ({"weight_decay_lambda": "0.1"}, TypeError, "weight_decay_lambda must be a real number"),
])
def test_bad_network_arguments(kwargs, error, match):
    args = {"input_size": 6, "hidden_size_list": [5], "output_size": 3, **kwargs}
    with pytest.raises(error, match=match):
        MultiLayerNet(**args)


def test_bad_params_and_arch_in_compute_gradient():
    params, x, t = deep_case([6, 5, 4, 3], 2, seed=0)
    broken = dict(params)
    broken["W2"] = broken["W2"][:, :3]
    with pytest.raises(ValueError, match=r"params\['b2'\] must have shape \(3,\)"):
        compute_gradient("incremental", broken, x, t)
    skipped = {k: v for k, v in params.items() if k != "b2"}
    with pytest.raises(ValueError, match="params is missing b2"):
        compute_gradient("incremental", skipped, x, t)
    with pytest.raises(ValueError, match="params has unexpected entries W9"):
        compute_gradient("incremental", {**params, "W9": params["W1"]}, x, t)
    with pytest.raises(ValueError, match="activation must be one of"):
        compute_gradient("incremental", params, x, t, activation="elu")
    with pytest.raises(ValueError, match="weight_decay must be finite and >= 0"):
        compute_gradient("jit", params, x, t, weight_decay=-1.0)
