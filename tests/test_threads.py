"""``threads=`` and ``$FASTGRAD_THREADS`` reach Numba.

Results are bitwise the same for any thread count by design, so the setting
is only visible from inside: the kernels are replaced by stand-ins that
record ``numba.get_num_threads()`` when they run.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest
from numba import njit

import fastgrad
from fastgrad import config, generic, methods
from fastgrad.config import THREADS_ENV
from tests.cases import make_case

pytestmark = pytest.mark.skipif(config.max_threads() < 2,
                                reason="Numba runs one thread here: nothing to tell apart")


@pytest.fixture
def seen(monkeypatch):
    """Thread counts the (stand-in) kernels ran with, in call order."""
    record = []

    def full(theta, *args):
        record.append(numba.get_num_threads())
        return np.zeros(theta.size)

    def incremental(params, *args):  # the phase drivers run inside the thread setting
        record.append(numba.get_num_threads())
        return {k: np.zeros_like(v) for k, v in params.items()}

    def generic_kernel(f, flat, *args):
        record.append(numba.get_num_threads())
        return np.zeros(flat.size)

    monkeypatch.setattr(methods, "full_gradient", full)
    monkeypatch.setattr(methods, "deep_full_gradient", full)
    monkeypatch.setattr(methods, "_deep_incremental", incremental)
    monkeypatch.setattr(methods, "_two_layer_incremental", incremental)
    monkeypatch.setattr(generic, "generic_gradient", generic_kernel)
    monkeypatch.delenv(THREADS_ENV, raising=False)
    return record


@pytest.mark.parametrize("method", ["jit", "incremental"])
def test_threads_argument_reaches_the_kernel(method, seen):
    params, x, t = make_case(6, 3, 2, 2, 0)
    before = numba.get_num_threads()
    for threads in (1, 2, 1):
        fastgrad.compute_gradient(method, params, x, t, threads=threads)
    assert seen == [1, 2, 1]
    assert numba.get_num_threads() == before  # restored afterwards


@pytest.mark.parametrize("method", ["jit", "incremental"])
def test_threads_reach_the_deep_kernels(method, seen):
    rng = np.random.default_rng(0)
    params = {"W1": rng.random((4, 3)), "b1": np.zeros(3), "W2": rng.random((3, 3)),
              "b2": np.zeros(3), "W3": rng.random((3, 2)), "b3": np.zeros(2)}
    for threads in (2, 1):
        fastgrad.compute_gradient(method, params, rng.random((2, 4)), [0, 1], threads=threads,
                                  activation="relu")
    assert seen == [2, 1]


@pytest.mark.parametrize("method", ["jit", "incremental"])
def test_environment_variable_reaches_the_kernel(method, seen, monkeypatch):
    params, x, t = make_case(6, 3, 2, 2, 0)
    monkeypatch.setenv(THREADS_ENV, "1")
    fastgrad.compute_gradient(method, params, x, t)
    monkeypatch.setenv(THREADS_ENV, "2")
    fastgrad.compute_gradient(method, params, x, t)
    assert seen == [1, 2]


def test_generic_engine_threads(seen, monkeypatch):
    f = njit(lambda a: a.sum())
    fastgrad.numerical_gradient(f, np.ones(5), threads=1)
    monkeypatch.setenv(THREADS_ENV, "1")
    fastgrad.numerical_gradient(f, np.ones(5))
    fastgrad.numerical_gradient(f, np.ones(5), threads=2)
    assert seen == [1, 1, 2]


def test_training_runs_its_gradients_on_the_given_threads(seen):
    rng = np.random.default_rng(0)
    data = ((rng.random((30, 8)), rng.integers(0, 10, 30)),
            (rng.random((5, 8)), rng.integers(0, 10, 5)))
    fastgrad.train(data, iters=3, batch_size=4, hidden_size=3, method="jit", threads=1)
    assert seen and set(seen) == {1}
