"""Training the chapter-6 networks with the book's optimizers: steps, learning rates,
resuming with optimizer state, and bad network and optimizer arguments.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import fastgrad
from fastgrad import checkpoint, methods
from fastgrad.checkpoint import CheckpointError
from fastgrad.training import TrainingDiverged, TrainingInterrupted, train
from tests.training.helpers import (
    DATA,
    bytes_and_listing,
    meta_with,
    rewrite,
    run,
    same,
    swap_gradient,
)

DEEP = {"hidden_size_list": [8, 6], "activation": "relu", "weight_init_std": "he",
        "output_size": 3, "batch_size": 50}


def _deep(**kwargs):
    return train(DATA, **{**DEEP, **kwargs})


def test_a_step_is_params_minus_lr_grad():
    """One SGD step by hand: the seeded start, the first minibatch, p - lr * grad."""
    (x, t), _ = DATA
    init, batches = np.random.SeedSequence(4).spawn(2)
    net = fastgrad.MultiLayerNet(20, [8, 6], 3, activation="relu", weight_init_std="he",
                                 weight_decay_lambda=0.01, seed=np.random.default_rng(init))
    pick = np.random.default_rng(batches).integers(0, len(x), size=50)
    grad = net.gradient(x[pick], t[pick])
    want = {k: net.params[k] - 0.3 * grad[k] for k in net.params}
    h = _deep(iters=1, seed=4, lr=0.3, optimizer="sgd", method="backprop",
              weight_decay_lambda=0.01)
    assert list(h.params) == ["W1", "b1", "W2", "b2", "W3", "b3"]
    for k in want:
        assert h.params[k].tobytes() == want[k].tobytes(), k
    net.params = want
    assert h.losses[0] == net.loss(x[pick], t[pick])  # the loss after the update


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"])
def test_every_optimizer_trains_a_deep_relu_net(name):
    h = _deep(iters=40, optimizer=name, lr=0.01 if name == "adam" else 0.1)
    assert h.config["optimizer"] == name and h.config["activation"] == "relu"
    assert h.losses[-5:].mean() < h.losses[:5].mean()


def test_optimizers_share_the_start_and_the_minibatches(monkeypatch):
    real, seen = methods.METHODS["backprop"].func, []

    def spy(params, x, labels, h, threads, arch):
        seen[-1].append((x.tobytes(), params["W1"].tobytes() if not seen[-1] else None))
        return real(params, x, labels, h, threads, arch)

    swap_gradient(monkeypatch, spy, "backprop")
    for name in ("sgd", "adam", "rmsprop"):
        seen.append([])
        _deep(iters=6, optimizer=name, method="backprop")
    assert seen[0] == seen[1] == seen[2] and len(seen[0]) == 6


def test_default_and_named_learning_rates():
    # no optimizer named: the chapter-4 loop, SGD with lr 0.1
    assert run(iters=1, lr=None).config["lr"] == 0.1
    assert train(DATA, iters=1, output_size=3, batch_size=50).config["hidden_size_list"] == [50]
    named = {n: _deep(iters=1, optimizer=n).config for n in ("sgd", "adam", "momentum")}
    assert named["sgd"]["lr"] == 0.01 and named["adam"]["lr"] == 0.001
    assert named["adam"]["optimizer_options"] == {"beta1": 0.9, "beta2": 0.999}
    c = _deep(iters=1, optimizer="momentum", lr=0.05, optimizer_options={"momentum": 0.5}).config
    assert (c["lr"], c["optimizer_options"]) == (0.05, {"momentum": 0.5})


@pytest.mark.parametrize("optimizer", ["adam", "momentum", "rmsprop"])
@pytest.mark.parametrize("stop", [1, 13])
def test_resume_with_optimizer_state_is_bitwise(tmp_path, optimizer, stop):
    kwargs = {"optimizer": optimizer, "seed": 2, "weight_decay_lambda": 0.001}
    full = _deep(iters=30, **kwargs)
    path = tmp_path / "c.npz"
    _deep(iters=stop, checkpoint=path, **kwargs)
    saved = checkpoint.load(path)
    assert saved.optimizer_state.iter == stop
    slots = {"adam": {"m", "v"}, "momentum": {"v"}, "rmsprop": {"h"}}[optimizer]
    assert set(saved.optimizer_state.slots) == slots
    # the state is not zero any more: a resume that dropped it would differ
    assert all(np.any(v["W1"]) for v in saved.optimizer_state.slots.values())
    rest = train(DATA, iters=30, checkpoint=path, resume=True)
    assert rest.config["optimizer"] == optimizer and rest.start_iteration == stop
    same(full, rest)


def test_ctrl_c_keeps_the_optimizer_state_of_the_last_whole_step(tmp_path, monkeypatch):
    path = tmp_path / "c.npz"
    real, calls = methods.METHODS[methods.DEFAULT_METHOD].func, []

    def fake(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1 + 8:  # warm-up, 7 steps, then Ctrl-C inside step 8
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    swap_gradient(monkeypatch, fake)
    with pytest.raises(TrainingInterrupted):
        _deep(iters=20, optimizer="adam", checkpoint=path)
    assert checkpoint.load(path).optimizer_state.iter == 7
    swap_gradient(monkeypatch, real)
    same(_deep(iters=20, optimizer="adam"), train(DATA, checkpoint=path, resume=True))


@pytest.fixture
def saved_adam(tmp_path):
    path = tmp_path / "adam.npz"
    _deep(iters=5, optimizer="adam", checkpoint=path)
    return path


@pytest.mark.parametrize("kwargs, match", [
    ({"optimizer": "sgd"}, "optimizer='sgd' differs from the checkpoint's optimizer='adam'"),
    ({"lr": 0.01}, "lr=0.01 differs from the checkpoint's lr=0.001"),
    ({"optimizer_options": {"beta1": 0.8}}, "beta1=0.8 differs"),
    ({"optimizer_options": {"momentum": 0.8}}, "adam takes lr, beta1, beta2, not momentum"),
    ({"hidden_size_list": [8, 7]}, r"hidden_size_list=\[8, 7\] differs"),
    ({"hidden_size": 8}, r"hidden_size_list=\[8\] differs"),
    ({"activation": "sigmoid"}, "activation='sigmoid' differs"),
    ({"weight_decay_lambda": 0.1}, "weight_decay_lambda=0.1 differs"),
    ({"weight_init_std": "xavier"}, "weight_init_std='xavier' differs"),
])
def test_resume_refuses_another_network_or_optimizer(saved_adam, kwargs, match):
    before = bytes_and_listing(saved_adam)
    with pytest.raises(ValueError, match=match):
        train(DATA, iters=10, checkpoint=saved_adam, resume=True, **kwargs)
    assert bytes_and_listing(saved_adam) == before


def test_resume_of_a_chapter4_checkpoint_refuses_adam(saved):
    with pytest.raises(ValueError, match="optimizer='adam' differs from the checkpoint's "
                                         "optimizer='sgd'"):
        train(DATA, iters=20, checkpoint=saved, resume=True, optimizer="adam")


@pytest.mark.parametrize("damage, match", [
    ("no state", "missing opt_m_W2"),
    ("nan state", "opt_v_b1 contains NaN"),
    ("shape", r"opt_m_W1 must be float64 of shape \(20, 8\)"),
    ("count", "optimizer_iter must equal the iteration 5"),
    ("optimizer", "config optimizer must be one of"),
    ("options", "config optimizer_options="),
    ("lr", "config lr="),
])
def test_corrupt_optimizer_state(saved_adam, damage, match):
    if damage == "no state":
        rewrite(saved_adam, drop=("opt_m_W2",))
    elif damage == "nan state":
        rewrite(saved_adam, opt_v_b1=np.full(8, np.nan))
    elif damage == "shape":
        rewrite(saved_adam, opt_m_W1=np.zeros((8, 20)))
    elif damage == "count":
        rewrite(saved_adam, meta=meta_with(saved_adam, optimizer_iter=4))
    else:
        with np.load(saved_adam, allow_pickle=False) as z:
            config = json.loads(str(z["meta"]))["config"]
        config.update({"optimizer": {"optimizer": "adamw"},
                       "options": {"optimizer_options": {"beta1": 2.0}},
                       "lr": {"lr": -1}}[damage])
        rewrite(saved_adam, meta=meta_with(saved_adam, config=config))
    with pytest.raises(CheckpointError, match=match):
        train(DATA, iters=10, checkpoint=saved_adam, resume=True)


def test_format1_checkpoints_still_resume(tmp_path):
    """A chapter-4 checkpoint written before the optimizers (format 1) resumes bitwise."""
    path = tmp_path / "old.npz"
    run(iters=9, checkpoint=path)
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
    config = meta["config"]
    for key in ("activation", "weight_decay_lambda", "optimizer", "optimizer_options"):
        del config[key]
    config["hidden_size"] = config.pop("hidden_size_list")[0]
    del meta["optimizer_iter"]
    rewrite(path, format=np.array(1), meta=np.array(json.dumps(meta)))
    assert checkpoint.load(path).config["hidden_size_list"] == [8]
    same(run(iters=25), train(DATA, iters=25, checkpoint=path, resume=True))
    assert checkpoint.load(path).iteration == 25  # rewritten in today's format


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"optimizer": "adamw"}, ValueError, "unknown optimizer 'adamw'"),
    ({"optimizer": None, "optimizer_options": {"momentum": 0.9}}, ValueError,
     "sgd takes lr, not momentum"),
    ({"optimizer": "momentum", "optimizer_options": {"momentum": 1.0}}, ValueError,
     r"momentum must be in \[0, 1\)"),
    ({"optimizer": "adam", "optimizer_options": {"lr": 0.1}}, ValueError, "give the learning"),
    ({"optimizer": "adam", "optimizer_options": [0.9]}, TypeError, "optimizer_options must"),
    ({"hidden_size_list": []}, ValueError, "hidden_size_list must not be empty"),
    ({"hidden_size_list": [8, 0]}, ValueError, r"hidden_size_list\[1\] must be at least 1"),
    ({"hidden_size_list": [8, 2.5]}, TypeError, r"hidden_size_list\[1\] must be an integer"),
    ({"hidden_size_list": 8}, TypeError, "hidden_size_list must be a list"),
    ({"hidden_size": 8}, ValueError, "hidden_size or hidden_size_list, not both"),
    ({"activation": "tanh"}, ValueError, "activation must be one of"),
    ({"weight_init_std": "glorot"}, ValueError, "weight_init_std must be a number or one of"),
    ({"weight_init_std": -1.0}, ValueError, "weight_init_std must be >= 0"),
    ({"weight_decay_lambda": -0.1}, ValueError, "weight_decay_lambda must be finite and >= 0"),
    ({"weight_decay_lambda": math.nan}, ValueError, "weight_decay_lambda"),
])
def test_bad_network_and_optimizer_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        _deep(iters=2, **kwargs)


def test_adam_overflow_in_its_state_is_divergence(monkeypatch):
    real = methods.METHODS["backprop"].func

    def huge(*args):
        grad = real(*args)
        grad["W1"][0, 0] = 1e200  # finite, but its square is not
        return grad

    swap_gradient(monkeypatch, huge, "backprop")
    with pytest.raises(TrainingDiverged, match="optimizer state") as info:
        _deep(iters=5, optimizer="adam", method="backprop")
    assert info.value.iteration == 1
