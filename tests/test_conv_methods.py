"""Every compiled method on the convolutional net against the NumPy reference, same inputs.

Tolerance: float64 method vs reference, max abs <= 1e-9 (TOL). The cases
cover the shortcuts of :mod:`fastgrad.kernels.conv_incremental`: steps that
cross ReLU kinks and switch pool windows (h = 1e-2), exact ties in the pool
windows (binarised digits), padding, stride, three channels, trained weights.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest

from fastgrad import compute_conv_gradient, config, methods, reference_conv
from fastgrad.convarch import ConvArch
from fastgrad.methods import METHODS
from tests.cases import run_with_four_threads
from tests.conv_cases import conv_params, features_of, make_conv_case, small_digits, trained

TOL = 1e-9
FAST = ["jit", "incremental"]


def max_abs_diff(a, b):
    assert a.keys() == b.keys()
    return max(float(np.max(np.abs(a[k] - b[k]))) for k in a)


def gradients(params, x, labels, conv, h, methods=("reference", *FAST)):
    stride, pad = conv
    return {m: compute_conv_gradient(m, params, x, labels, h, stride=stride, pad=pad)
            for m in methods}


CASES = {
    "base": {},
    "five_by_five": {"filter_size": 5, "size": 12, "filters": 6, "hidden": 16},
    "pad1_3x3": {"size": 12, "pad": 1},
    "stride2": {"size": 13, "stride": 2, "filters": 8, "hidden": 20},
    "stride2_pad2_5x5": {"size": 11, "filter_size": 5, "stride": 2, "pad": 2},
    "three_channels": {"channels": 3, "size": 10, "filters": 5, "batch": 9},
    "batch16": {"batch": 16, "hidden": 10, "filters": 4, "size": 8},
    "one_sample": {"batch": 1, "classes": 3},
}


@pytest.mark.parametrize("h", [1e-4, 1e-2])
@pytest.mark.parametrize("name", list(CASES))
def test_methods_match_the_reference(name, h):
    params, x, labels, conv = make_conv_case(seed=len(name), **CASES[name])
    before = {k: v.copy() for k, v in params.items()}
    got = gradients(params, x, labels, conv, h)
    for method in FAST:
        assert max_abs_diff(got[method], got["reference"]) <= TOL, method
        for k in params:
            assert got[method][k].shape == params[k].shape
            assert got[method][k].dtype == np.float64
    for k in params:  # never modified
        assert np.array_equal(params[k], before[k])


def test_large_steps_do_cross_kinks_and_switch_pool_windows():
    """h = 1e-2 in the base case moves some pool window's winner and crosses ReLU kinks:
    the central difference then differs from the derivative by far more than O(h^2)."""
    params, x, labels, conv = make_conv_case(seed=len("base"))
    exact = reference_conv.backprop_gradient(params, x, labels, conv, exact=True)
    got = gradients(params, x, labels, conv, 1e-2, ("incremental",))["incremental"]
    assert float(np.max(np.abs(got["W1"] - exact["W1"]))) > 1e-4
    cache = reference_conv.forward(params, x, conv)
    a1 = cache["conv"]
    windows = a1.reshape(*a1.shape[:2], a1.shape[2] // 2, 2, a1.shape[3] // 2, 2)
    ordered = np.sort(windows.transpose(0, 1, 2, 4, 3, 5).reshape(-1, 4), axis=1)
    runner_gap = ordered[:, 3] - ordered[:, 2]
    assert np.any((runner_gap < 2e-2) & (ordered[:, 3] > 0))  # winners a step can overtake


@pytest.fixture(scope="module")
def digits(mnist_batch):
    """16 real MNIST test digits subsampled to 14x14, and their labels."""
    x, t = mnist_batch
    return x[:16], np.asarray(t[:16], dtype=np.int64)


@pytest.mark.parametrize("h", [1e-4, 1e-2])
def test_binarised_digits_with_tied_pool_windows(digits, h):
    """Binary inputs: every blank patch gives the same convolution output (exactly b1),
    so windows tie; some b1 positive (tied maxima above the kink), some negative."""
    x_flat, labels = digits
    x = small_digits(x_flat[:8], binarise=True)
    rng = np.random.default_rng(11)
    params = conv_params(rng, 5, 1, 3, features_of(5, 14, 3), 10, 10)
    params["b1"] = np.array([0.3, -0.2, 0.0, 0.1, 0.25])
    a1 = reference_conv.forward(params, x, (1, 0))["conv"]
    assert np.sum(a1[:, 0] == 0.3) > 100  # the ties are there
    got = gradients(params, x, labels[:8], (1, 0), h)
    for method in FAST:
        assert max_abs_diff(got[method], got["reference"]) <= TOL, method


def test_trained_weights_on_real_digits(digits):
    x_flat, labels = digits
    x = small_digits(x_flat)
    rng = np.random.default_rng(12)
    params = conv_params(rng, 5, 1, 3, features_of(5, 14, 3), 10, 10, std=0.1)
    start = reference_conv.loss(params, x, labels, (1, 0))
    params = trained(params, x, labels, (1, 0), steps=30, lr=0.3)
    assert reference_conv.loss(params, x, labels, (1, 0)) < 0.5 * start  # it has learnt
    for h in (1e-4, 1e-2):
        got = gradients(params, x[:10], labels[:10], (1, 0), h)
        for method in FAST:
            assert max_abs_diff(got[method], got["reference"]) <= TOL, (method, h)


def test_book_net_on_real_digits_sampled_entries(digits):
    """The book's default net (433,890 parameters) on 4 real digits: the incremental
    method's whole gradient against the reference loop on a sample of entries."""
    from fastgrad import SimpleConvNet

    x_flat, labels = digits
    net = SimpleConvNet(seed=3, weight_init_std=0.05)
    x = np.asarray(x_flat[:4], dtype=np.float64).reshape(-1, 1, 28, 28)
    got = net.numerical_gradient(x, labels[:4])
    rng = np.random.default_rng(13)
    indices = {k: rng.choice(v.size, min(v.size, 12), replace=False)
               for k, v in net.params.items()}
    indices["W1"] = np.arange(net.params["W1"].size)[::7]
    want = reference_conv.numerical_gradient(net.params, x, labels[:4], 1e-4, net.conv,
                                             indices)
    for k in want:
        chosen = ~np.isnan(want[k])
        assert float(np.max(np.abs(got[k][chosen] - want[k][chosen]))) <= TOL, k


def test_backprop_entry_is_the_book_backprop():
    params, x, labels, conv = make_conv_case(seed=21)
    got = compute_conv_gradient("backprop", params, x, labels, stride=1, pad=0)
    want = reference_conv.backprop_gradient(params, x, labels, ConvArch(1, 0))
    for k in want:
        assert np.array_equal(got[k], want[k])


def test_every_method_serves_the_conv_net():
    assert all(m.conv_func is not None for m in METHODS.values())


def test_one_hot_labels_and_flat_rows():
    params, x, labels, conv = make_conv_case(batch=3, classes=4, channels=2, size=8, seed=22)
    flat = x.reshape(3, -1)
    one_hot = np.eye(4)[labels]
    a = compute_conv_gradient("incremental", params, x, labels)
    b = compute_conv_gradient("incremental", params, flat, one_hot, input_dim=(2, 8, 8))
    for k in a:
        assert np.array_equal(a[k], b[k])


THREADS_SCRIPT = """
import numpy as np
from fastgrad import compute_conv_gradient
from tests.conv_cases import make_conv_case
for kwargs, h in [({}, 1e-4), ({"channels": 3, "size": 10, "pad": 1}, 1e-2),
                  ({"size": 13, "stride": 2, "batch": 11}, 1e-2)]:
    params, x, labels, (stride, pad) = make_conv_case(seed=5, **kwargs)
    for method in ("jit", "incremental"):
        runs = [compute_conv_gradient(method, params, x, labels, h, threads=n, stride=stride,
                                      pad=pad) for n in (1, 2, 3, 4)]
        for other in runs[1:]:
            for k in params:
                assert np.array_equal(runs[0][k], other[k]), (method, k, kwargs)
print("ok")
"""


def test_bitwise_identical_for_any_thread_count():
    """1 to 4 threads in a process started with 4 (more than this machine has)."""
    run_with_four_threads(THREADS_SCRIPT, timeout=900)


@pytest.mark.skipif(config.max_threads() < 2, reason="Numba runs one thread here")
def test_threads_argument_reaches_the_conv_kernels(monkeypatch):
    seen = []

    def full(theta, *args):
        seen.append(("jit", numba.get_num_threads()))
        return np.zeros(theta.size)

    def sweep(xpad, W2, W3, stride, filter_h, filter_w, a1, *args):
        seen.append(("incremental", numba.get_num_threads()))
        return np.zeros((a1.shape[1], xpad.shape[1] * filter_h * filter_w + 1))

    monkeypatch.setattr(methods, "conv_full_gradient", full)
    monkeypatch.setattr(methods, "conv_sweep", sweep)
    params, x, labels, _ = make_conv_case(batch=2, seed=30)
    before = numba.get_num_threads()
    for threads in (1, 2):
        for method in FAST:
            compute_conv_gradient(method, params, x, labels, threads=threads)
    assert seen == [("jit", 1), ("incremental", 1), ("jit", 2), ("incremental", 2)]
    assert numba.get_num_threads() == before
