"""The book's optimizers: each update bitwise against the book's formulas, written out here.

The ``book_*`` functions below restate ``common/optimizer.py`` of *Deep Learning
from Scratch* (in-place updates on dicts, the same operation order) without
using fastgrad.optimizers, so the two share no code.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from fastgrad import optimizers
from fastgrad.optimizers import OPTIMIZERS, OptimizerState, make_optimizer


def book_sgd(params, grads, state, lr=0.01):
    for key in params:
        params[key] -= lr * grads[key]


def book_momentum(params, grads, state, lr=0.01, momentum=0.9):
    v = state.setdefault("v", {key: np.zeros_like(val) for key, val in params.items()})
    for key in params:
        v[key] = momentum * v[key] - lr * grads[key]
        params[key] += v[key]


def book_nesterov(params, grads, state, lr=0.01, momentum=0.9):
    v = state.setdefault("v", {key: np.zeros_like(val) for key, val in params.items()})
    for key in params:
        v[key] *= momentum
        v[key] -= lr * grads[key]
        params[key] += momentum * momentum * v[key]
        params[key] -= (1 + momentum) * lr * grads[key]


def book_adagrad(params, grads, state, lr=0.01):
    h = state.setdefault("h", {key: np.zeros_like(val) for key, val in params.items()})
    for key in params:
        h[key] += grads[key] * grads[key]
        params[key] -= lr * grads[key] / (np.sqrt(h[key]) + 1e-7)


def book_rmsprop(params, grads, state, lr=0.01, decay_rate=0.99):
    h = state.setdefault("h", {key: np.zeros_like(val) for key, val in params.items()})
    for key in params:
        h[key] *= decay_rate
        h[key] += (1 - decay_rate) * grads[key] * grads[key]
        params[key] -= lr * grads[key] / (np.sqrt(h[key]) + 1e-7)


def book_adam(params, grads, state, lr=0.001, beta1=0.9, beta2=0.999):
    m = state.setdefault("m", {key: np.zeros_like(val) for key, val in params.items()})
    v = state.setdefault("v", {key: np.zeros_like(val) for key, val in params.items()})
    state["iter"] = state.get("iter", 0) + 1
    lr_t = lr * np.sqrt(1.0 - beta2 ** state["iter"]) / (1.0 - beta1 ** state["iter"])
    for key in params:
        m[key] += (1 - beta1) * (grads[key] - m[key])
        v[key] += (1 - beta2) * (grads[key] ** 2 - v[key])
        params[key] -= lr_t * m[key] / (np.sqrt(v[key]) + 1e-7)


BOOK = {"sgd": book_sgd, "momentum": book_momentum, "nesterov": book_nesterov,
        "adagrad": book_adagrad, "rmsprop": book_rmsprop, "adam": book_adam}
DEFAULTS = {"sgd": {"lr": 0.01}, "momentum": {"lr": 0.01, "momentum": 0.9},
            "nesterov": {"lr": 0.01, "momentum": 0.9}, "adagrad": {"lr": 0.01},
            "rmsprop": {"lr": 0.01, "decay_rate": 0.99},
            "adam": {"lr": 0.001, "beta1": 0.9, "beta2": 0.999}}


def _params(rng):
    return {"W1": rng.standard_normal((5, 4)), "b1": rng.standard_normal(4),
            "W2": rng.standard_normal((4, 3)), "b2": np.zeros(3)}


def _grads(rng, params, scale):
    return {k: scale * rng.standard_normal(v.shape) for k, v in params.items()}


def test_the_registry_and_the_book_defaults():
    assert tuple(OPTIMIZERS) == tuple(BOOK)
    for name, hyper in DEFAULTS.items():
        assert make_optimizer(name).hyper == hyper
        assert make_optimizer(name.upper()).name == name


@pytest.mark.parametrize("compiled", [True, False], ids=["kernel", "numpy"])
@pytest.mark.parametrize("name", list(BOOK))
@pytest.mark.parametrize("hyper", [{}, {"lr": 0.3}, "other"])
def test_updates_are_bitwise_the_books(name, hyper, compiled):
    if hyper == "other":  # every hyper-parameter away from its default
        hyper = {k: v * 0.7 for k, v in DEFAULTS[name].items()}
    rng = np.random.default_rng(7)
    params = _params(rng)
    opt = make_optimizer(name, **hyper)
    state = opt.init_state(params)
    book_params = {k: v.copy() for k, v in params.items()}
    book_state = {}
    for step in range(1, 9):
        # gradients of varied size, with exact zeros, as real ones have
        grads = _grads(rng, params, scale=10.0 ** rng.integers(-4, 2))
        grads["b2"][0] = 0.0
        before = ({k: v.copy() for k, v in params.items()},
                  {k: v.copy() for k, v in grads.items()})
        params_new, state_new = opt.update(params, grads, state, compiled=compiled)
        # nothing given is modified
        for k in params:
            assert params[k].tobytes() == before[0][k].tobytes()
            assert grads[k].tobytes() == before[1][k].tobytes()
        book = BOOK[name]
        book(book_params, grads, book_state, **hyper)
        for k in params:
            assert params_new[k].tobytes() == book_params[k].tobytes(), (name, step, k)
            for slot in opt.slot_names:
                assert state_new.slots[slot][k].tobytes() == book_state[slot][k].tobytes()
        assert state_new.iter == step and state.iter == step - 1
        params, state = params_new, state_new


@pytest.mark.parametrize("compiled", [True, False], ids=["kernel", "numpy"])
@pytest.mark.parametrize("name", list(BOOK))
def test_update_checked_reports_any_non_finite_value(name, compiled):
    rng = np.random.default_rng(5)
    params = _params(rng)
    opt = make_optimizer(name)
    state = opt.init_state(params)
    grads = _grads(rng, params, 1.0)
    assert opt.update_checked(params, grads, state, compiled=compiled)[2] is True
    for bad in (np.nan, np.inf, -np.inf):
        for key in params:  # in any array, at the last element too
            broken = {k: v.copy() for k, v in grads.items()}
            broken[key].reshape(-1)[-1] = bad
            with np.errstate(invalid="ignore"):
                new, new_state, finite = opt.update_checked(params, broken, state,
                                                            compiled=compiled)
            assert finite is False, (bad, key)
    # a finite gradient whose g * g overflows in the state is caught too
    huge = {k: np.full(v.shape, 1e300) for k, v in params.items()}
    squares = name in ("adagrad", "rmsprop", "adam")
    with np.errstate(over="ignore", invalid="ignore"):  # as the training loop runs it
        assert opt.update_checked(params, huge, state, compiled=compiled)[2] is not squares


def test_update_leaves_the_state_alone_and_starts_from_zeros():
    rng = np.random.default_rng(0)
    params = _params(rng)
    opt = make_optimizer("adam")
    state = opt.init_state(params)
    assert state.iter == 0 and set(state.slots) == {"m", "v"}
    assert all(not v.any() and v.dtype == np.float64 for v in state.slots["m"].values())
    copy = {k: v.copy() for k, v in state.slots["m"].items()}
    opt.update(params, _grads(rng, params, 1.0), state)
    assert all(state.slots["m"][k].tobytes() == copy[k].tobytes() for k in copy)
    assert make_optimizer("sgd").init_state(params) == OptimizerState(0, {})


@pytest.mark.parametrize("name, hyper, exc, match", [
    ("sgd", {"lr": 0}, ValueError, "lr must be positive"),
    ("sgd", {"lr": -0.1}, ValueError, "lr must be positive"),
    ("adam", {"lr": math.inf}, ValueError, "lr must be positive and finite"),
    ("adagrad", {"lr": math.nan}, ValueError, "lr must be positive"),
    ("sgd", {"lr": "0.1"}, TypeError, "lr must be a real number"),
    ("sgd", {"lr": True}, TypeError, "lr must be a real number"),
    ("momentum", {"momentum": 1.0}, ValueError, r"momentum must be in \[0, 1\)"),
    ("nesterov", {"momentum": -0.1}, ValueError, r"momentum must be in \[0, 1\)"),
    ("rmsprop", {"decay_rate": 1.5}, ValueError, r"decay_rate must be in \[0, 1\)"),
    ("rmsprop", {"decay_rate": math.nan}, ValueError, "decay_rate must be in"),
    ("adam", {"beta1": 1.0}, ValueError, r"beta1 must be in \[0, 1\)"),
    ("adam", {"beta2": -1e-9}, ValueError, r"beta2 must be in \[0, 1\)"),
    ("adam", {"momentum": 0.9}, ValueError, "adam takes lr, beta1, beta2, not momentum"),
    ("sgd", {"decay_rate": 0.9}, ValueError, "sgd takes lr, not decay_rate"),
    ("adamw", {}, ValueError, "unknown optimizer 'adamw'"),
    (3, {}, TypeError, "optimizer must be a string"),
])
def test_bad_hyper_parameters(name, hyper, exc, match):
    with pytest.raises(exc, match=match):
        make_optimizer(name, **hyper)


def test_edges_of_the_ranges_are_accepted():
    assert make_optimizer("momentum", momentum=0).hyper["momentum"] == 0.0
    assert make_optimizer("rmsprop", decay_rate=0.0).decay_rate == 0.0
    assert make_optimizer("adam", beta1=0, beta2=0.999999).beta2 == 0.999999
    assert optimizers.check_lr(1e-300) == 1e-300
