"""Every JIT method against the NumPy reference on the same inputs.

Tolerance: float64 JIT vs reference, max abs <= 1e-9 (TOL).
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from fastgrad import TwoLayerNet, compute_gradient, config, reference
from fastgrad.kernels.incremental import POLY_MAX
from fastgrad.methods import COMPILED_METHODS, METHODS, NUMERICAL_METHODS
from tests.cases import make_case, run_with_four_threads

TOL = 1e-9
JIT_METHODS = [m for m in NUMERICAL_METHODS if METHODS[m].compiled]


def max_abs_diff(a, b):
    return max(float(np.max(np.abs(a[k] - b[k]))) for k in reference.PARAM_NAMES)


def bitwise_equal(a, b):
    return all(np.array_equal(a[k], b[k]) for k in reference.PARAM_NAMES)


def test_registry_is_consistent():
    assert set(NUMERICAL_METHODS) == {"reference", "jit", "incremental"}
    assert set(COMPILED_METHODS) == {"jit", "incremental"}
    assert not METHODS["backprop"].numerical


@pytest.mark.parametrize("method", JIT_METHODS)
@pytest.mark.parametrize(
    ("n_in", "n_hidden", "n_out", "batch", "seed"),
    [(1, 1, 2, 1, 0), (5, 3, 2, 1, 1), (20, 7, 4, 5, 2), (30, 12, 10, 17, 3),
     (64, 9, 3, 40, 4), (784, 4, 10, 3, 5)],
)
def test_jit_methods_match_reference_on_small_nets(method, n_in, n_hidden, n_out, batch, seed):
    params, x, t = make_case(n_in, n_hidden, n_out, batch, seed)
    expected = compute_gradient("reference", params, x, t)
    got = compute_gradient(method, params, x, t)
    assert max_abs_diff(got, expected) <= TOL
    for k in params:
        assert got[k].shape == params[k].shape and got[k].dtype == np.float64


@pytest.mark.parametrize("method", JIT_METHODS)
def test_book_net_small_batch(method):
    net = TwoLayerNet(784, 50, 10, seed=7)
    _, x, t = make_case(784, 1, 10, 2, 8)
    expected = net.numerical_gradient(x, t, method="reference")
    got = net.numerical_gradient(x, t, method=method)
    assert max_abs_diff(got, expected) <= TOL


@pytest.fixture(scope="module")
def mnist_case(mnist_batch):
    """784-50-10 at the book's initialisation on 100 real digits, with its reference."""
    x, t = mnist_batch
    net = TwoLayerNet(784, 50, 10, seed=0)
    return net, x, t, net.numerical_gradient(x, t, method="reference")


@pytest.mark.parametrize("method", JIT_METHODS)
def test_real_mnist_batch_of_100(mnist_case, method):
    net, x, t, expected = mnist_case
    got = net.numerical_gradient(x, t, method=method)
    assert max_abs_diff(got, expected) <= TOL


def test_real_mnist_numerical_vs_backprop(mnist_case):
    net, x, t, expected = mnist_case
    got = net.numerical_gradient(x, t)  # the default, incremental
    # The book's backprop drops the 1e-7 in the log (relative drift ~1e-7 / y[t]);
    # at the book's initialisation on batch 100 the two agree to 1e-7.
    assert max_abs_diff(got, net.gradient(x, t)) <= 1e-7
    exact = reference.backprop_gradient(net.params, x.astype(np.float64), t, exact=True)
    assert max_abs_diff(expected, exact) <= 1e-8


@pytest.mark.parametrize("small_rows", [6, 3], ids=["series-path", "mixed-paths"])
def test_incremental_is_the_finite_difference_not_the_derivative(small_rows):
    """With a large step the central difference's O(h^2) error is visible; the
    incremental method reproduces it instead of the analytic derivative, on
    its series path (small W2 rows) and where both paths are taken."""
    params, x, t = make_case(30, 6, 5, 8, 11)
    params["W2"][:small_rows] *= 0.2
    h = 1e-2
    eps = 0.25 * h * np.abs(params["W2"]).max(axis=1)
    assert np.all(eps[:small_rows] <= POLY_MAX) and np.all(eps[small_rows:] > POLY_MAX)
    expected = compute_gradient("reference", params, x, t, h=h)
    got = compute_gradient("incremental", params, x, t, h=h)
    exact = reference.backprop_gradient(params, x.astype(np.float64), t, exact=True)
    assert max_abs_diff(expected, exact) > 1e-6  # truncation error is there ...
    assert max_abs_diff(got, expected) <= TOL  # ... and reproduced


def test_incremental_direct_path_for_large_weights():
    """|d| max|w| > POLY_MAX sends (sample, unit) pairs down the math.exp path."""
    params, x, t = make_case(25, 5, 6, 9, 12, std=0.5)
    params["W2"] *= 40.0
    h = 1e-2
    assert 0.25 * h * np.abs(params["W2"]).max() > POLY_MAX
    expected = compute_gradient("reference", params, x, t, h=h)
    got = compute_gradient("incremental", params, x, t, h=h)
    assert max_abs_diff(got, expected) <= TOL


def test_saturated_hidden_units():
    """exp(-a) overflows for a < -709: the unit is exactly 0 and stays so."""
    params, x, t = make_case(8, 4, 3, 5, 0)
    params["b1"][0] = -720.0
    params["b1"][1] = 720.0
    expected = compute_gradient("reference", params, x, t)
    for method in JIT_METHODS:
        got = compute_gradient(method, params, x, t)
        assert all(np.all(np.isfinite(g)) for g in got.values())
        assert max_abs_diff(got, expected) <= TOL


def test_large_steps_and_inputs_take_the_direct_path():
    params, x, t = make_case(8, 4, 3, 5, 1)
    params["W2"][1] = 0.0  # a unit the loss ignores: no step size may turn it into NaN
    x = x * 2000.0
    expected = compute_gradient("reference", params, x, t, h=1.0)
    got = compute_gradient("incremental", params, x, t, h=1.0)
    assert max_abs_diff(got, expected) <= TOL


def test_inputs_outside_unit_interval():
    params, x, t = make_case(15, 4, 3, 6, 13)
    x = (x - 0.3) * 4.0  # negative and > 1 values, no zeros
    for method in JIT_METHODS:
        assert max_abs_diff(compute_gradient(method, params, x, t),
                            compute_gradient("reference", params, x, t)) <= TOL


@pytest.mark.parametrize("method", JIT_METHODS)
def test_bitwise_identical_for_any_thread_count(method):
    params, x, t = make_case(40, 8, 5, 12, 14)
    counts = sorted({1, config.max_threads()})
    results = [compute_gradient(method, params, x, t, threads=n) for n in counts + [1]]
    assert all(bitwise_equal(results[0], r) for r in results[1:])


THREADS_SCRIPT = """
import sys, numpy as np
from fastgrad import compute_gradient
from tests.cases import make_case
params, x, t = make_case(40, 8, 5, 12, 14)
for method in ("jit", "incremental"):
    runs = [compute_gradient(method, params, x, t, threads=n) for n in (1, 3, 4)]
    for r in runs[1:]:
        assert all(np.array_equal(runs[0][k], r[k]) for k in r), method
print("ok")
"""


def test_bitwise_identical_for_more_threads_than_cores():
    """1, 3 and 4 threads in a process started with 4 (more than this machine has)."""
    run_with_four_threads(THREADS_SCRIPT, timeout=300)


def test_thread_count_from_environment(monkeypatch):
    params, x, t = make_case(10, 3, 2, 4, 15)
    monkeypatch.setenv("FASTGRAD_THREADS", "1")
    one = compute_gradient("incremental", params, x, t)
    monkeypatch.setenv("FASTGRAD_THREADS", "0")
    with pytest.raises(ValueError, match="FASTGRAD_THREADS"):
        compute_gradient("incremental", params, x, t)
    monkeypatch.delenv("FASTGRAD_THREADS")
    assert bitwise_equal(one, compute_gradient("incremental", params, x, t))


def test_concurrent_calls_from_python_threads():
    """The threading layer must survive parallel regions entered from several threads."""
    params, x, t = make_case(50, 10, 4, 20, 16)
    expected = compute_gradient("incremental", params, x, t)
    out, errors = [None] * 4, []

    def work(i):
        try:
            out[i] = compute_gradient("incremental", params, x, t)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors
    assert all(bitwise_equal(expected, r) for r in out)


@pytest.mark.parametrize("method", list(METHODS))
def test_one_hot_and_integer_labels_agree_bitwise(method):
    params, x, t = make_case(12, 4, 5, 7, 17)
    one_hot = np.eye(5)[t]
    assert bitwise_equal(compute_gradient(method, params, x, t),
                         compute_gradient(method, params, x, one_hot))
    assert bitwise_equal(compute_gradient(method, params, x, t),
                         compute_gradient(method, params, x, t.astype(np.float64)))


@pytest.mark.parametrize("method", JIT_METHODS)
def test_layouts_and_dtypes_are_converted(method):
    params, x, t = make_case(16, 5, 3, 6, 18)
    base = compute_gradient(method, params, x.astype(np.float64), t)
    fortran = {k: np.asfortranarray(v) for k, v in params.items()}
    wide = np.zeros((x.shape[0], 2 * x.shape[1]), dtype=np.float32)
    wide[:, ::2] = x
    assert bitwise_equal(base, compute_gradient(method, fortran, np.asfortranarray(x), t))
    assert bitwise_equal(base, compute_gradient(method, params, wide[:, ::2], t))
    f32 = {k: v.astype(np.float32) for k, v in params.items()}
    expected = compute_gradient("reference", f32, x, t)
    assert max_abs_diff(compute_gradient(method, f32, x, t), expected) <= TOL


@pytest.mark.parametrize("method", list(METHODS))
def test_params_bitwise_unchanged(method):
    params, x, t = make_case(10, 4, 3, 5, 19)
    before = {k: v.copy() for k, v in params.items()}
    compute_gradient(method, params, x, t)
    assert bitwise_equal(params, before)


def test_params_unchanged_when_interrupted_mid_way(monkeypatch):
    net = TwoLayerNet(10, 4, 3, weight_init_std=0.5, seed=20)
    _, x, t = make_case(10, 4, 3, 5, 20)
    before = {k: v.copy() for k, v in net.params.items()}
    calls = []
    real_loss = reference.loss

    def flaky(*args):
        calls.append(1)
        if len(calls) == 25:
            raise KeyboardInterrupt
        return real_loss(*args)

    monkeypatch.setattr(reference, "loss", flaky)
    with pytest.raises(KeyboardInterrupt):
        net.numerical_gradient(x, t, method="reference")
    assert bitwise_equal(net.params, before)


def test_default_method_is_incremental(monkeypatch):
    net = TwoLayerNet(6, 3, 2, weight_init_std=0.5, seed=21)
    _, x, t = make_case(6, 3, 2, 4, 21)
    assert bitwise_equal(net.numerical_gradient(x, t),
                         net.numerical_gradient(x, t, method="incremental"))


def test_network_basics():
    net = TwoLayerNet(784, 50, 10, seed=0)
    assert {k: v.shape for k, v in net.params.items()} == {
        "W1": (784, 50), "b1": (50,), "W2": (50, 10), "b2": (10,)}
    assert all(v.dtype == np.float64 for v in net.params.values())
    assert bitwise_equal(net.params, TwoLayerNet(784, 50, 10, seed=0).params)
    _, x, t = make_case(784, 1, 10, 8, 22)
    y = net.predict(x)
    np.testing.assert_allclose(y.sum(axis=1), 1.0)
    assert net.loss(x, t) == pytest.approx(np.log(10), rel=0.01)
    assert 0.0 <= net.accuracy(x, t) <= 1.0
    assert net.accuracy(x, np.eye(10)[t]) == net.accuracy(x, t)
