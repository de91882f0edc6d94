"""The training loop's compiled per-step work against NumPy and the reference.

The minibatch CSR drawn from the training set's CSR, the loss after the update
(:func:`minibatch.loss`) and a run through the incremental method's CSR entry
are each checked against what they replace: ``dense_to_csr(x[pick])``,
:func:`reference.loss`, and the same run on dense minibatches.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import fastgrad
from fastgrad import methods, reference
from fastgrad.arch import make_arch
from fastgrad.kernels.forward import dense_to_csr
from fastgrad.network import MultiLayerNet
from fastgrad.training.minibatch import TrainingRows, loss
from tests.cases import run_with_four_threads

#: The loss is a sum of per-sample logs of the same values: rounding apart only.
LOSS_RTOL = 1e-12


def _images(n, n_in, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = rng.random((n, n_in)) * (rng.random((n, n_in)) < 0.3)
    x[1] = 0.0  # a blank image: an empty CSR row
    if np.dtype(dtype).kind == "u":
        return (x * 255).astype(dtype)
    return x.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8])
def test_minibatch_csr_is_the_csr_of_the_gathered_rows(dtype):
    x = _images(40, 13, seed=1, dtype=dtype)
    pick = np.random.default_rng(2).integers(0, len(x), size=25)
    pick[:3] = 1  # repeats and the blank row
    want = dense_to_csr(np.ascontiguousarray(x[pick], dtype=np.float64))
    for threads in (1, 2):
        rows = TrainingRows(x, threads)
        got = rows.sparse(pick)
        for g, w, dt in zip(got, want, (np.int64, np.int64, np.float64), strict=True):
            assert g.dtype == dt and g.flags.c_contiguous
            np.testing.assert_array_equal(g, w)
        np.testing.assert_array_equal(rows.dense(pick), x[pick].astype(np.float64))


CASES = [("sigmoid", [9], 0.0), ("relu", [9], 0.0), ("relu", [7, 6, 5], 0.0),
         ("sigmoid", [7, 6], 0.1), ("relu", [8, 4], 0.05)]


@pytest.mark.parametrize("activation, hidden, decay", CASES)
def test_loss_after_the_update_is_the_references(activation, hidden, decay):
    x = _images(30, 12, seed=3)
    t = np.random.default_rng(4).integers(0, 4, size=30)
    net = MultiLayerNet(12, hidden, 4, activation=activation, weight_init_std=0.5,
                        weight_decay_lambda=decay, seed=5)
    params = net.params
    params[f"b{len(hidden) + 1}"] += 300.0  # softmax needs its max-shift
    arch = make_arch(activation, decay)
    csr = dense_to_csr(x)
    want = reference.loss(params, x, t, activation, decay)
    runs = [loss(params, csr, t, arch, threads) for threads in (1, 2)]
    assert runs[0] == runs[1]  # each sample is one thread's: no thread-dependent sums
    assert abs(runs[0] - want) <= LOSS_RTOL * abs(want), (runs[0], want)


def test_loss_is_not_the_loss_before_the_update():
    """A changed parameter changes the loss (the kernel reads the params it is given)."""
    x, t = _images(20, 10, seed=6), np.arange(20) % 3
    params = MultiLayerNet(10, [5], 3, activation="sigmoid", seed=7).params
    csr, arch = dense_to_csr(x), make_arch("sigmoid")
    moved = {**params, "W1": params["W1"].copy()}
    moved["W1"][np.flatnonzero(x[0])[0], 0] += 1.0  # a weight that sample 0 reads
    assert loss(moved, csr, t, arch, 1) != loss(params, csr, t, arch, 1)
    assert abs(loss(moved, csr, t, arch, 1) - reference.loss(moved, x, t)) <= LOSS_RTOL


@pytest.mark.parametrize("activation, hidden", [("sigmoid", 6), ("relu", [6, 5])])
def test_training_from_the_csr_is_bitwise_training_from_dense_rows(monkeypatch, activation,
                                                                   hidden):
    x = _images(200, 16, seed=8, dtype=np.float32)
    t = np.random.default_rng(9).integers(0, 3, size=200)
    data = ((x, t), (x[:20], t[:20]))
    kwargs = dict(iters=12, batch_size=20, output_size=3, activation=activation,
                  optimizer="adam", method="incremental", threads=2, lr=0.01)
    key = "hidden_size_list" if isinstance(hidden, list) else "hidden_size"
    kwargs[key] = hidden
    if activation == "relu":
        kwargs["weight_init_std"] = "he"
    sparse = fastgrad.train(data, **kwargs)
    calls = []
    real = methods.METHODS["incremental"]

    def dense_only(params, xb, labels, h, threads, arch):
        calls.append(xb.shape)
        return real.func(params, xb, labels, h, threads, arch)

    monkeypatch.setitem(methods.METHODS, "incremental",
                        dataclasses.replace(real, func=dense_only, csr_func=None))
    dense = fastgrad.train(data, **kwargs)
    assert len(calls) == 13  # the warm-up and every step took the dense path
    assert sparse.losses.tobytes() == dense.losses.tobytes()
    for name in sparse.params:
        assert sparse.params[name].tobytes() == dense.params[name].tobytes(), name


THREADS_SCRIPT = """
import numpy as np
import fastgrad
from tests.training.test_minibatch import _images
x = _images(300, 20, seed=10, dtype=np.float32)
t = np.random.default_rng(11).integers(0, 4, size=300)
runs = [fastgrad.train(((x, t), (x[:30], t[:30])), iters=8, batch_size=30, output_size=4,
                       hidden_size_list=[7, 5], activation="relu", weight_init_std="he",
                       optimizer="momentum", threads=n) for n in (1, 2, 3, 4)]
for r in runs[1:]:
    assert r.losses.tobytes() == runs[0].losses.tobytes()
    assert all(r.params[k].tobytes() == runs[0].params[k].tobytes() for k in r.params)
print("ok")
"""


def test_training_is_bitwise_the_same_for_any_thread_count():
    """Gather, gradient, compiled update and loss: 1 to 4 threads in a 4-thread process."""
    run_with_four_threads(THREADS_SCRIPT, timeout=600)


@pytest.mark.parametrize("dtype", [np.float16, np.int8, np.uint16, np.int64])
def test_training_takes_any_real_image_dtype(dtype):
    """Images of any real dtype train, as their float64 values (float16 widened first)."""
    x = _images(120, 10, seed=12) * 100
    t = np.random.default_rng(13).integers(0, 3, size=120)
    kwargs = dict(iters=3, batch_size=20, hidden_size=4, output_size=3)
    got = fastgrad.train(((x.astype(dtype), t), (x[:10].astype(dtype), t[:10])), **kwargs)
    same = x.astype(dtype).astype(np.float64)
    want = fastgrad.train(((same, t), (same[:10], t[:10])), **kwargs)
    assert got.losses.tobytes() == want.losses.tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8])
def test_minibatch_gather_is_fancy_indexing(dtype):
    from fastgrad.training.minibatch import gather

    x = (np.random.default_rng(3).random((50, 7)) * 200).astype(dtype)
    pick = np.random.default_rng(4).integers(0, 50, size=13)
    for threads in (1, 2):
        got = gather(x, pick, threads)
        assert got.dtype == np.float64 and got.flags.c_contiguous
        np.testing.assert_array_equal(got, x[pick].astype(np.float64))
