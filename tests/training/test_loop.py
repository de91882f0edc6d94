"""The training loop (fastgrad.training.loop): learning, epochs, seeds, methods, divergence.

Small synthetic problems only (20 inputs, 8 hidden units, 3 classes), so the module
runs in seconds.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

import fastgrad
from fastgrad import checkpoint, inputs, methods
from fastgrad.checkpoint import History
from fastgrad.network import TwoLayerNet
from fastgrad.training import TrainingDiverged, train
from tests.training.helpers import DATA, SMALL, blobs, run, same, swap_gradient


def test_loss_decreases_and_net_learns():
    h = run(iters=150)
    assert h.losses[:10].mean() > 1.0 > 0.3 > h.losses[-10:].mean()
    assert h.final_train_acc > 0.95 and h.final_test_acc > 0.95
    net = TwoLayerNet(20, 8, 3)
    net.params = h.params
    (x, t), (xt, tt) = DATA
    assert h.final_test_acc == net.accuracy(xt, tt) and h.final_train_acc == net.accuracy(x, t)
    assert h.time_per_gradient > 0 and h.timing["grad_calls"] == 150
    assert 0 < h.step_overhead < h.timing["wall_time"] / 150
    summary = h.to_dict()["summary"]
    assert summary["step_overhead"] == h.step_overhead
    assert 0 < summary["step_overhead_share"] < 1


def test_step_overhead_arithmetic():
    # 10 iterations: 10 s in the loop, 6 s of gradients, 2 s of accuracy checks
    h = History({}, {}, np.zeros(10), [], None, None,
                {"wall_time": 10.0, "grad_time": 6.0, "grad_calls": 10, "eval_time": 2.0,
                 "warmup_time": 0.0})
    assert h.step_overhead == pytest.approx(0.2)  # (10 - 6 - 2) / 10
    assert h.step_overhead_share == pytest.approx(0.2 / 0.8)  # of 0.6 + 0.2 per iteration


def test_history_and_epoch_accounting():
    # 500 samples / batch 50: 10 iterations per epoch, measured at i = 0, 10, 20, 30
    h = run(iters=35)
    assert h.iterations == len(h.losses) == 35 and h.losses.dtype == np.float64
    assert [r.iteration for r in h.epochs] == [1, 11, 21, 31]
    assert [r.epoch for r in h.epochs] == [0.0, 1.0, 2.0, 3.0]
    assert all(0.0 <= r.train_acc <= 1.0 and 0.0 <= r.test_acc <= 1.0 for r in h.epochs)
    # not iters / batch_size: a long run measures as often per epoch
    assert [r.iteration for r in run(iters=100).epochs] == list(range(1, 100, 10))
    # 12.5 iterations per epoch: once per epoch, at the first step past each boundary
    h = run(iters=40, batch_size=40)
    assert [r.iteration for r in h.epochs] == [1, 14, 26, 39]
    # a batch as large as the set: max(train_size / batch_size, 1) = 1
    small = (tuple(a[:50] for a in DATA[0]), DATA[1])
    h = train(small, **{**SMALL, "iters": 4})
    assert [r.iteration for r in h.epochs] == [1, 2, 3, 4]
    assert [r.iteration for r in run(iters=20, eval_every=7).epochs] == [1, 8, 15]
    # the final accuracies reuse a measurement made at the last step
    h = run(iters=31)
    assert (h.final_train_acc, h.final_test_acc) == (h.epochs[-1].train_acc,
                                                     h.epochs[-1].test_acc)


def test_same_seed_same_run_and_seeds_differ():
    same(run(iters=25, seed=3), run(iters=25, seed=3))
    assert not np.array_equal(run(iters=5, seed=3).losses, run(iters=5, seed=4).losses)
    # threads change nothing in the numerical methods
    same(run(iters=10, threads=1), run(iters=10, threads=2))


@pytest.mark.parametrize("method", ["incremental", "jit", "backprop"])
def test_methods_train(method):
    h = run(iters=60, method=method)
    assert h.config["method"] == method and h.losses[-5:].mean() < h.losses[:5].mean()


@pytest.mark.parametrize("method", ["incremental", "backprop"])
def test_steps_call_the_registry_on_checked_arrays(monkeypatch, method):
    """The loop skips compute_gradient's checks, bitwise to no effect, and pins BLAS to
    one thread only under the compiled methods."""
    from threadpoolctl import threadpool_info

    def blas_threads():
        return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]

    real, seen = methods.METHODS[method].func, []

    def checked(params, x, labels, h, threads, arch):
        assert x.dtype == np.float64 and x.flags.c_contiguous
        assert labels.dtype == np.int64 and labels.flags.c_contiguous
        assert all(v.dtype == np.float64 and v.flags.c_contiguous for v in params.values())
        seen.append(blas_threads())
        return real(params, x, labels, h, threads, arch)

    # one-hot float labels, float32 images: converted once, up front
    (x, t), test = DATA
    onehot = ((x.astype(np.float32), np.eye(3)[t]), test)
    swap_gradient(monkeypatch, checked, method)
    direct = train(onehot, iters=15, method=method, **{**SMALL, "lr": 0.5})
    outside, compiled = blas_threads(), methods.METHODS[method].compiled
    steps = seen[1:] if compiled else seen  # compiled: call 1 loads the kernels
    assert len(steps) == 15
    assert all(s == ([1] * len(outside) if compiled else outside) for s in steps)

    def validated(params, x, labels, h, threads, arch):  # what compute_gradient does
        return real(*inputs.check_batch(params, x, labels), inputs.check_h(h), threads, arch)

    swap_gradient(monkeypatch, validated, method)
    same(direct, train(onehot, iters=15, method=method, **{**SMALL, "lr": 0.5}))


def test_reference_method_on_a_tiny_net():
    tiny = blobs(n_train=60, n_test=20, n_in=6)
    a = train(tiny, iters=3, hidden_size=3, output_size=3, batch_size=10, method="reference")
    b = train(tiny, iters=3, hidden_size=3, output_size=3, batch_size=10, method="incremental")
    for name in a.params:
        np.testing.assert_allclose(a.params[name], b.params[name], rtol=0, atol=1e-12)


def test_incremental_follows_backprop():
    inc, bp = run(iters=20, method="incremental"), run(iters=20, method="backprop")
    np.testing.assert_allclose(inc.losses, bp.losses, rtol=1e-7)
    for name in inc.params:
        np.testing.assert_allclose(inc.params[name], bp.params[name], rtol=0, atol=1e-7)


def test_one_hot_labels_and_image_shaped_inputs():
    (x, t), (xt, tt) = DATA
    eye = np.eye(3, dtype=np.float32)
    a = train(((x, eye[t]), (xt, eye[tt])), iters=8, **SMALL)
    same(a, run(iters=8))
    img = blobs(n_in=16)
    b = train(((img[0][0].reshape(-1, 1, 4, 4), img[0][1]), img[1]), iters=3, **SMALL)
    assert b.config["input_size"] == 16


def test_package_train_is_the_function():
    # fastgrad.train is the function, also after the training module is imported
    h = fastgrad.train(DATA, iters=2, **SMALL)
    assert h.iterations == 2 and callable(fastgrad.train)
    assert fastgrad.train is train


def test_progress_bar_and_log(capsys):
    lines = []
    run(iters=12, progress=True, log=lines.append)
    err = capsys.readouterr().err
    assert "train (incremental)" in err and "loss=" in err and "12/12" in err
    assert lines[0].startswith("training from iteration 0: 20-8-3 sigmoid net on custom")
    assert len(lines) == 1 + 2 and "train acc" in lines[-1]


# --- divergence -----------------------------------------------------------------------


def test_huge_learning_rate_diverges():
    with pytest.raises(TrainingDiverged, match="diverged at iteration") as info:
        run(iters=50, lr=1e308, method="backprop")
    err = info.value
    assert isinstance(err, RuntimeError) and not math.isfinite(err.loss)
    assert err.history.iterations == err.iteration - 1
    assert all(np.isfinite(v).all() for v in err.history.params.values())


def test_divergence_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "c.npz"
    real, calls = methods.METHODS[methods.DEFAULT_METHOD].func, []

    def blows_up(*args, **kwargs):
        calls.append(1)
        grad = real(*args, **kwargs)
        if len(calls) == 1 + 23:  # warm-up + 23 steps
            grad["W1"][0, 0] = np.inf
        return grad

    swap_gradient(monkeypatch, blows_up)
    with pytest.raises(TrainingDiverged) as info:
        run(iters=40, checkpoint=path, checkpoint_every=10)
    assert info.value.iteration == 23 and info.value.history.iterations == 22
    assert checkpoint.load(path).iteration == 20
    assert os.listdir(tmp_path) == ["c.npz"]
