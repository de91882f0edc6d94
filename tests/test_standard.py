"""fastgrad.standard: the standard net and batch, and the dense standardised batch."""

from __future__ import annotations

import numpy as np

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
