"""fastgrad.standard: the standard net and batch, and the dense standardised batch."""

from __future__ import annotations

import numpy as np
import pytest

from fastgrad import standard
from fastgrad.network import MultiLayerNet


def test_dense_batch_is_standardised_per_pixel_over_the_test_set():
    full = np.array([[0.0, 1.0, 2.0], [0.0, 3.0, 2.0]])
    z = standard.standardise(full[:1], full)
    np.testing.assert_allclose(z, [[0.0, -1.0, 0.0]])  # constant pixels become 0
    found = standard.dense_batch(5)
    if found is not None:
        x, t, source = found
        assert x.shape == (5, 784) and t.shape == (5,) and "standardised per pixel" in source


def test_net_phrase_describes_a_network_once():
    assert standard.net_phrase([784, 50, 10]) == "784-50-10 sigmoid"
    assert (standard.net_phrase((784, 4, 3, 10), "relu", "he", 0.1)
            == "784-4-3-10 relu (init he), weight decay 0.1")
    net = MultiLayerNet(784, [4, 3], 10, activation="relu", weight_decay_lambda=0.1, seed=0)
    assert standard.describe(net) == "784-4-3-10 relu, weight decay 0.1"


def test_standard_workload_names_its_source():
    w = standard.standard_workload(batch=4, hidden=3, synthetic=True)
    assert isinstance(w, standard.StandardWorkload) and not w.real
    assert w.source.startswith("synthetic (seed 0, mnist-like")
    assert w.x.shape == (4, 784) and w.net.sizes == [784, 3, 10]


def test_standard_conv_workload_is_seeded_images_and_names_its_source():
    from fastgrad.standard import describe_conv, standard_conv_workload

    a = standard_conv_workload(4, hidden=5, conv_param={"filter_num": 3, "filter_size": 3,
                                                        "pad": 0, "stride": 1}, synthetic=True)
    b = standard_conv_workload(4, hidden=5, conv_param={"filter_num": 3, "filter_size": 3,
                                                        "pad": 0, "stride": 1}, synthetic=True)
    assert a.x.shape == (4, 1, 28, 28) and a.x.dtype == np.float64
    assert a.source.startswith("synthetic") and not a.real
    assert np.array_equal(a.x, b.x) and np.array_equal(a.net.params["W1"], b.net.params["W1"])
    assert a.net.params["W1"].shape == (3, 1, 3, 3) and a.net.params["W3"].shape == (5, 10)
    assert describe_conv(a.net).startswith("conv 3x3x3 (pad 0, stride 1)")
    with pytest.raises(ValueError, match="batch"):
        standard_conv_workload(0)
