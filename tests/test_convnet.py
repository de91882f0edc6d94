"""SimpleConvNet: the book's shapes and API, and every bad input refused by name."""

from __future__ import annotations

import numpy as np
import pytest

from fastgrad import SimpleConvNet, compute_conv_gradient, reference_conv
from fastgrad.convnet import DEFAULT_CONV_PARAM

SMALL = {"input_dim": (1, 12, 12),
         "conv_param": {"filter_num": 4, "filter_size": 3, "pad": 0, "stride": 1},
         "hidden_size": 10, "output_size": 10}


def small_net(**kwargs):
    return SimpleConvNet(**{**SMALL, "weight_init_std": 0.3, "seed": 0, **kwargs})


def batch(net, n=4, seed=0):
    rng = np.random.default_rng(seed)
    shape = (n, *net.input_dim)
    x = rng.random(shape) * (rng.random(shape) < 0.5)
    return x, rng.integers(0, net.params["W3"].shape[1], n)


def test_book_shapes_and_parameter_count():
    net = SimpleConvNet(seed=0)
    shapes = {k: v.shape for k, v in net.params.items()}
    assert shapes == {"W1": (30, 1, 5, 5), "b1": (30,), "W2": (4320, 100), "b2": (100,),
                      "W3": (100, 10), "b3": (10,)}
    assert sum(v.size for v in net.params.values()) == 433_890
    assert all(v.dtype == np.float64 for v in net.params.values())
    assert np.all(net.params["b1"] == 0) and 0.009 < net.params["W2"].std() < 0.011
    assert DEFAULT_CONV_PARAM == {"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1}


def test_seed_reproduces_and_generators_work():
    a, b = SimpleConvNet(seed=5), SimpleConvNet(seed=np.random.default_rng(5))
    assert all(np.array_equal(a.params[k], b.params[k]) for k in a.params)


@pytest.mark.parametrize(("input_dim", "conv_param", "w2_rows"), [
    ((3, 10, 10), {"filter_num": 5, "filter_size": 3, "pad": 0, "stride": 1}, 5 * 4 * 4),
    ((1, 12, 12), {"filter_num": 4, "filter_size": 3, "pad": 1, "stride": 1}, 4 * 6 * 6),
    ((2, 13, 9), {"filter_num": 3, "filter_size": 3, "pad": 0, "stride": 2}, 3 * 3 * 2),
    ((1, 28, 28), {"filter_num": 2, "filter_size": 1, "pad": 0, "stride": 3}, 2 * 5 * 5),
])
def test_any_pad_stride_and_channels_with_whole_sizes(input_dim, conv_param, w2_rows):
    net = SimpleConvNet(input_dim, conv_param, hidden_size=7, output_size=3, seed=1,
                        weight_init_std=0.3)
    assert net.params["W2"].shape == (w2_rows, 7)
    x, t = batch(net, 3)
    num = net.numerical_gradient(x, t)
    ref = net.numerical_gradient(x, t, method="reference")
    for k in num:
        assert float(np.max(np.abs(num[k] - ref[k]))) <= 1e-9


def test_predict_loss_accuracy_gradient_follow_the_reference():
    net = small_net()
    x, t = batch(net, 7)
    conv = net.conv
    np.testing.assert_array_equal(net.predict(x), reference_conv.predict(net.params, x, conv))
    assert net.loss(x, t) == reference_conv.loss(net.params, x, t, conv)
    scores = reference_conv.predict(net.params, x, conv)
    assert net.accuracy(x, t) == np.mean(np.argmax(scores, axis=1) == t)
    assert net.accuracy(x, t, batch_size=3) == net.accuracy(x, t)  # remainder scored too
    grads = net.gradient(x, t)
    want = reference_conv.backprop_gradient(net.params, x, t, conv)
    assert all(np.array_equal(grads[k], want[k]) for k in want)


def test_flat_rows_as_the_book_loader_gives_with_flatten_true():
    net = small_net()
    x, t = batch(net, 3)
    assert np.array_equal(net.predict(x.reshape(3, -1)), net.predict(x))
    a = net.numerical_gradient(x.reshape(3, -1), t)
    b = net.numerical_gradient(x, t)
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_parameters_never_modified():
    net = small_net()
    x, t = batch(net)
    before = {k: v.copy() for k, v in net.params.items()}
    for method in ("reference", "jit", "incremental"):
        net.numerical_gradient(x, t, method=method, h=1e-2)
    net.gradient(x, t)
    assert all(np.array_equal(net.params[k], before[k]) for k in before)


# --- bad input: a ValueError/TypeError naming the argument, nothing modified ------------


def conv_param(**changes):
    return {**SMALL["conv_param"], **changes}


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"conv_param": {"filter_num": 4, "filter_size": 3, "pad": 0}}, ValueError,
     r"conv_param is missing 'stride'"),
    ({"conv_param": conv_param(strides=1)}, ValueError, r"conv_param has unknown keys 'strides'"),
    ({"conv_param": conv_param(filter_size=3.0)}, TypeError,
     r"conv_param\['filter_size'\] must be an integer"),
    ({"conv_param": conv_param(stride="2")}, TypeError, r"conv_param\['stride'\] must be"),
    ({"conv_param": conv_param(stride=0)}, ValueError, r"conv_param\['stride'\] must be at least"),
    ({"conv_param": conv_param(pad=-1)}, ValueError, r"conv_param\['pad'\] must be at least"),
    ({"conv_param": conv_param(filter_num=0)}, ValueError, r"conv_param\['filter_num'\]"),
    ({"conv_param": conv_param(filter_size=15)}, ValueError,
     r"filter \(15\) is larger than the padded input height"),
    ({"conv_param": conv_param(filter_size=3, stride=2)}, ValueError,
     r"stride 2 does not fit: \(12 \+ 2\*0 - 3\) / 2 \+ 1 = 5.5 is not a whole number"),
    ({"conv_param": conv_param(filter_size=2)}, ValueError,
     r"11x11 convolution output, which the 2x2 pooling .* crash in the affine layer"),
    ({"conv_param": "filter_num=30"}, TypeError, r"conv_param must be a dict"),
    ({"input_dim": (1, 12)}, ValueError, r"input_dim must be \(channels, height, width\)"),
    ({"input_dim": (1, 12.0, 12)}, TypeError, r"input_dim\[1\] must be an integer"),
    ({"hidden_size": 0}, ValueError, r"hidden_size must be at least 1"),
    ({"output_size": 2.5}, TypeError, r"output_size must be an integer"),
    ({"weight_init_std": -0.1}, ValueError, r"weight_init_std must be finite and >= 0"),
    ({"weight_init_std": "he"}, TypeError, r"weight_init_std must be a real number"),
    ({"seed": -1}, ValueError, r"seed must be"),
])
def test_bad_constructor_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        small_net(**kwargs)


def test_the_book_default_with_odd_output_is_refused():
    """28x28 with 5x5 filters, pad 1: (28 + 2 - 5) + 1 = 26 is even and fine; pad 0 with
    4x4 gives 25, odd: the book would crash in its affine layer."""
    SimpleConvNet(conv_param={"filter_num": 2, "filter_size": 5, "pad": 1, "stride": 1})
    with pytest.raises(ValueError, match="25x25 convolution output"):
        SimpleConvNet(conv_param={"filter_num": 2, "filter_size": 4, "pad": 0, "stride": 1})


@pytest.mark.parametrize("method", ["numerical_gradient", "gradient", "loss", "accuracy"])
@pytest.mark.parametrize(("make_bad", "error", "match"), [
    (lambda x, t: (x[:, :, :11], t), ValueError, r"x must have shape \(batch, 1, 12, 12\)"),
    (lambda x, t: (np.concatenate([x, x], axis=1), t), ValueError,
     r"x has 2 channels, the net expects 1"),
    (lambda x, t: (x.reshape(4, -1)[:, :100], t), ValueError, r"x must have shape"),
    (lambda x, t: (x[:0], t[:0]), ValueError, r"x is an empty batch"),
    (lambda x, t: (np.where(x > 0.9, np.nan, x), t), ValueError, r"x contains NaN"),
    (lambda x, t: (x, t + 10), ValueError, r"t labels must lie in \[0, 10\)"),
    (lambda x, t: (x, t - 1 - t.max()), ValueError, r"t labels must lie in \[0, 10\)"),
    (lambda x, t: (x, t[:3]), ValueError, r"t must be 4 integer labels"),
    (lambda x, t: (x, t + 0.5), ValueError, r"t must hold integer labels"),
    (lambda x, t: (x.astype(str), t), TypeError, r"x must be a real numeric array"),
])
def test_bad_batches_are_refused_and_nothing_moves(method, make_bad, error, match):
    net = small_net()
    x, t = batch(net)
    bad_x, bad_t = make_bad(x, t)
    before = {k: v.copy() for k, v in net.params.items()}
    x_before, t_before = np.array(bad_x, copy=True), np.array(bad_t, copy=True)
    with pytest.raises(error, match=match):
        getattr(net, method)(bad_x, bad_t)
    assert all(np.array_equal(net.params[k], before[k]) for k in before)
    np.testing.assert_array_equal(bad_x, x_before)
    np.testing.assert_array_equal(bad_t, t_before)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"method": "backprop"}, ValueError, r"unknown method 'backprop'"),
    ({"method": 3}, TypeError, r"method must be a string"),
    ({"h": 0.0}, ValueError, r"h must be positive"),
    ({"h": 2.0}, ValueError, r"h must lie in"),
    ({"threads": 0}, ValueError, r"threads must be between"),
])
def test_bad_method_step_threads(kwargs, error, match):
    net = small_net()
    x, t = batch(net)
    with pytest.raises(error, match=match):
        net.numerical_gradient(x, t, **kwargs)


def _params():
    return {k: v.copy() for k, v in small_net().params.items()}


@pytest.mark.parametrize(("change", "kwargs", "error", "match"), [
    (lambda p: p.pop("b3"), {}, ValueError, r"params is missing b3"),
    (lambda p: p.update(W4=np.ones(2)), {}, ValueError, r"unexpected entries W4"),
    (lambda p: p.update(W1=p["W1"][0]), {}, ValueError, r"params\['W1'\] must have shape"),
    (lambda p: p.update(W2=p["W2"][:-1]), {}, ValueError,
     r"params\['W2'\] must have shape \(100, 10\) \(4 filters x 5x5 pooled\)"),
    (lambda p: p.update(b1=np.ones(3)), {}, ValueError, r"params\['b1'\] must have shape"),
    (lambda p: p.update(b2=p["b2"][:-1]), {}, ValueError, r"params\['b2'\] must have shape"),
    (lambda p: p.update(W1=np.concatenate([p["W1"]] * 2, axis=1)), {}, ValueError,
     r"x has 1 channels but params\['W1'\] \(4, 2, 3, 3\) expects 2"),
    (lambda p: None, {"stride": 2}, ValueError, r"stride 2 does not fit"),
    (lambda p: None, {"stride": 1.5}, TypeError, r"stride must be an integer"),
    (lambda p: None, {"pad": -1}, ValueError, r"pad must be at least 0"),
    (lambda p: None, {"pad": 1}, ValueError, r"params\['W2'\] must have shape \(144, 10\)"),
    (lambda p: None, {"input_dim": (1, 12, 13)}, ValueError, r"x must have shape"),
])
def test_compute_conv_gradient_refuses_bad_params(change, kwargs, error, match):
    params = _params()
    change(params)
    before = {k: v.copy() for k, v in params.items()}
    x, t = batch(small_net())
    with pytest.raises(error, match=match):
        compute_conv_gradient("incremental", params, x, t, **kwargs)
    assert all(np.array_equal(params[k], before[k]) for k in before)


def test_flat_rows_need_input_dim():
    x, t = batch(small_net())
    with pytest.raises(ValueError, match=r"x must have shape \(batch, channels, height, width\)"):
        compute_conv_gradient("incremental", _params(), x.reshape(4, -1), t)
