"""One step of ``fastgrad.train`` against the definition of the book's SGD step.

``theta_{n+1} = theta_n - lr * grad(theta_n; minibatch n)``, the minibatch
drawn with replacement by the documented seeding (``SeedSequence(seed)
.spawn(2)``: the first child seeds the weights, the second the generator
whose ``integers(0, n_train, size=batch_size)`` picks each minibatch), and
``losses[n]`` the minibatch loss *after* the step. Only the public
``train()`` and ``History`` are used, plus the registry for the gradient.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastgrad
from fastgrad import inputs, reference
from fastgrad.methods import METHODS
from fastgrad.network import TwoLayerNet
from fastgrad.training import DEFAULTS
from fastgrad.training.settings import CHAPTER4_LR

N_TRAIN, N_IN = 120, 20


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((N_TRAIN, N_IN)) * (rng.random((N_TRAIN, N_IN)) < 0.4)
    t = rng.integers(0, 10, N_TRAIN)
    return (x, t), (x[:10], t[:10])


def _draws(seed, n_steps, batch_size):
    """The minibatch indices of steps 1..n, re-derived from the documented seeding."""
    _init, batches = np.random.SeedSequence(seed).spawn(2)
    rng = np.random.default_rng(batches)
    return [rng.integers(0, N_TRAIN, size=batch_size) for _ in range(n_steps)]


def _initial(seed, hidden, std):
    init, _batches = np.random.SeedSequence(seed).spawn(2)
    return TwoLayerNet(N_IN, hidden, 10, std, seed=np.random.default_rng(init)).params


def _step(params, picks, data, lr, method, h=1e-4):
    (x, t), _ = data
    p, xb, tb = inputs.check_batch(params, x[picks], t[picks])
    grad = METHODS[method].func(p, xb, tb, h, 1)
    return {k: p[k] - lr * grad[k] for k in reference.PARAM_NAMES}, xb, tb


def _assert_step(got, want, start):
    """``got == want`` to far below the step itself (a 0.1% longer step fails)."""
    for k in reference.PARAM_NAMES:
        step = np.max(np.abs(want[k] - start[k]))
        assert step > 0, k
        err = np.max(np.abs(got[k] - want[k]))
        assert err <= 1e-6 * step, f"{k}: off by {err:.3g} on a step of {step:.3g}"


@pytest.mark.parametrize("method", ["incremental", "backprop"])
def test_each_step_is_params_minus_lr_grad_of_its_minibatch(method):
    data, seed, lr, hidden, std, batch = _data(), 3, 0.5, 6, 0.3, 40
    one = fastgrad.train(data, iters=1, batch_size=batch, lr=lr, hidden_size=hidden,
                         weight_init_std=std, seed=seed, method=method, threads=1)
    two = fastgrad.train(data, iters=2, batch_size=batch, lr=lr, hidden_size=hidden,
                         weight_init_std=std, seed=seed, method=method, threads=1)
    picks = _draws(seed, 2, batch)
    assert any(len(np.unique(p)) < batch for p in picks)  # with replacement: repeats occur
    theta0 = _initial(seed, hidden, std)
    theta1, xb1, tb1 = _step(theta0, picks[0], data, lr, method)
    _assert_step(one.params, theta1, theta0)
    theta2, xb2, tb2 = _step(one.params, picks[1], data, lr, method)
    _assert_step(two.params, theta2, one.params)
    # the recorded loss is the minibatch's loss after its update, not before
    after = [reference.loss(theta1, xb1, tb1), reference.loss(theta2, xb2, tb2)]
    before = reference.loss(theta0, xb1, tb1)
    np.testing.assert_allclose(two.losses, after, rtol=1e-12, atol=0)
    assert abs(before - after[0]) > 1e-6  # the two are told apart by this case


def test_defaults_are_the_books():
    assert {k: DEFAULTS[k] for k in ("iters", "batch_size", "hidden_size_list",
                                     "weight_init_std", "optimizer")} == {
        "iters": 10_000, "batch_size": 100, "hidden_size_list": [50],
        "weight_init_std": 0.01, "optimizer": "sgd"}
    assert CHAPTER4_LR == 0.1  # SGD's rate when no optimizer is named (train_neuralnet.py)
    data = _data(1)
    hist = fastgrad.train(data, iters=1, method="backprop", threads=1)
    config = hist.config
    assert (config["lr"], config["batch_size"], config["hidden_size_list"],
            config["weight_init_std"], config["seed"]) == (0.1, 100, [50], 0.01, 0)
    theta0 = _initial(0, 50, 0.01)
    theta1, _, _ = _step(theta0, _draws(0, 1, 100)[0], data, 0.1, "backprop")
    _assert_step(hist.params, theta1, theta0)
