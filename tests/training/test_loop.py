"""Tests for fastgrad.train, fastgrad.checkpoint, fastgrad.plots and ``fastgrad train``.

Small synthetic problems only (20 inputs, 8 hidden units, 3 classes; 784
inputs for the CLI), so the whole file runs in seconds; the real data is
never touched (the CLI's loader is replaced).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import signal
import sys

import numpy as np
import pytest

import fastgrad
from fastgrad import checkpoint, data, files, inputs, methods, plots
from fastgrad import training as train_mod
from fastgrad.checkpoint import CheckpointError, History
from fastgrad.cli import main
from fastgrad.network import TwoLayerNet
from fastgrad.training import TrainingDiverged, TrainingInterrupted, schedule, train

SMALL = {"hidden_size": 8, "output_size": 3, "batch_size": 50, "lr": 1.0}


def _blobs(n_train=500, n_test=100, n_in=20, n_classes=3, seed=0):
    """Sparse inputs in [0, 1] around one centre per class: learnable in a few epochs."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 1, (n_classes, n_in)) * (rng.uniform(size=(n_classes, n_in)) < 0.6)
    t = rng.integers(0, n_classes, n_train + n_test)
    x = np.clip(centres[t] + 0.15 * rng.standard_normal((len(t), n_in)), 0, 1)
    x[x < 0.1] = 0.0  # sparse, like MNIST pixels
    return (x[:n_train], t[:n_train]), (x[n_train:], t[n_train:])


DATA = _blobs()


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    # never the user cache, the Debian copy or the network
    monkeypatch.setenv(data.ENV_DATA_DIR, str(tmp_path / "data-cache"))
    monkeypatch.setattr(data, "SYSTEM_DIRS", {"mnist": (), "fashion": ()})

    def no_loading(*args, **kwargs):
        raise AssertionError("a test tried to load a real data set")

    monkeypatch.setattr(data, "load_mnist", no_loading)


def _run(**kwargs):
    return train(DATA, **{**SMALL, **kwargs})


def _swap_gradient(monkeypatch, fake, method=methods.DEFAULT_METHOD):
    """Make ``fake`` the registry function that ``train`` calls for ``method``
    (on dense minibatches: the method's CSR entry is taken away)."""
    monkeypatch.setitem(methods.METHODS, method,
                        dataclasses.replace(methods.METHODS[method], func=fake, csr_func=None))


def _same(a, b):
    """Bitwise equality of two runs (timings aside)."""
    assert a.losses.tobytes() == b.losses.tobytes()
    assert a.epochs == b.epochs
    assert list(a.params) == list(b.params)
    for name in a.params:
        assert a.params[name].tobytes() == b.params[name].tobytes(), name
    assert (a.final_train_acc, a.final_test_acc) == (b.final_train_acc, b.final_test_acc)
    assert {k: v for k, v in a.config.items() if k != "iters"} == \
        {k: v for k, v in b.config.items() if k != "iters"}


# --- the loop ------------------------------------------------------------------------


def test_loss_decreases_and_net_learns():
    h = _run(iters=150)
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
    h = _run(iters=35)
    assert h.iterations == len(h.losses) == 35 and h.losses.dtype == np.float64
    assert [r.iteration for r in h.epochs] == [1, 11, 21, 31]
    assert [r.epoch for r in h.epochs] == [0.0, 1.0, 2.0, 3.0]
    assert all(0.0 <= r.train_acc <= 1.0 and 0.0 <= r.test_acc <= 1.0 for r in h.epochs)
    # not iters / batch_size: a long run measures as often per epoch
    assert [r.iteration for r in _run(iters=100).epochs] == list(range(1, 100, 10))
    # 12.5 iterations per epoch: once per epoch, at the first step past each boundary
    h = _run(iters=40, batch_size=40)
    assert [r.iteration for r in h.epochs] == [1, 14, 26, 39]
    # a batch as large as the set: max(train_size / batch_size, 1) = 1
    small = (tuple(a[:50] for a in DATA[0]), DATA[1])
    h = train(small, **{**SMALL, "iters": 4})
    assert [r.iteration for r in h.epochs] == [1, 2, 3, 4]
    assert [r.iteration for r in _run(iters=20, eval_every=7).epochs] == [1, 8, 15]
    # the final accuracies reuse a measurement made at the last step
    h = _run(iters=31)
    assert (h.final_train_acc, h.final_test_acc) == (h.epochs[-1].train_acc,
                                                     h.epochs[-1].test_acc)


def test_same_seed_same_run_and_seeds_differ():
    _same(_run(iters=25, seed=3), _run(iters=25, seed=3))
    assert not np.array_equal(_run(iters=5, seed=3).losses, _run(iters=5, seed=4).losses)
    # threads change nothing in the numerical methods
    _same(_run(iters=10, threads=1), _run(iters=10, threads=2))


@pytest.mark.parametrize("method", ["incremental", "jit", "backprop"])
def test_methods_train(method):
    h = _run(iters=60, method=method)
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
    _swap_gradient(monkeypatch, checked, method)
    direct = train(onehot, iters=15, method=method, **{**SMALL, "lr": 0.5})
    outside, compiled = blas_threads(), methods.METHODS[method].compiled
    steps = seen[1:] if compiled else seen  # compiled: call 1 loads the kernels
    assert len(steps) == 15
    assert all(s == ([1] * len(outside) if compiled else outside) for s in steps)

    def validated(params, x, labels, h, threads, arch):  # what compute_gradient does
        return real(*inputs.check_batch(params, x, labels), inputs.check_h(h), threads, arch)

    _swap_gradient(monkeypatch, validated, method)
    _same(direct, train(onehot, iters=15, method=method, **{**SMALL, "lr": 0.5}))


def test_reference_method_on_a_tiny_net():
    tiny = _blobs(n_train=60, n_test=20, n_in=6)
    a = train(tiny, iters=3, hidden_size=3, output_size=3, batch_size=10, method="reference")
    b = train(tiny, iters=3, hidden_size=3, output_size=3, batch_size=10, method="incremental")
    for name in a.params:
        np.testing.assert_allclose(a.params[name], b.params[name], rtol=0, atol=1e-12)


def test_incremental_follows_backprop():
    inc, bp = _run(iters=20, method="incremental"), _run(iters=20, method="backprop")
    np.testing.assert_allclose(inc.losses, bp.losses, rtol=1e-7)
    for name in inc.params:
        np.testing.assert_allclose(inc.params[name], bp.params[name], rtol=0, atol=1e-7)


def test_one_hot_labels_and_image_shaped_inputs():
    (x, t), (xt, tt) = DATA
    eye = np.eye(3, dtype=np.float32)
    a = train(((x, eye[t]), (xt, eye[tt])), iters=8, **SMALL)
    _same(a, _run(iters=8))
    img = _blobs(n_in=16)
    b = train(((img[0][0].reshape(-1, 1, 4, 4), img[0][1]), img[1]), iters=3, **SMALL)
    assert b.config["input_size"] == 16


def test_package_train_is_the_function():
    # fastgrad.train is the function, also after the training module is imported
    h = fastgrad.train(DATA, iters=2, **SMALL)
    assert h.iterations == 2 and callable(fastgrad.train)
    assert fastgrad.train is train


# --- checkpoints and resuming --------------------------------------------------------


@pytest.mark.parametrize("stop", [1, 10, 11, 17])
def test_stop_and_resume_is_bitwise(tmp_path, stop):
    full = _run(iters=40, seed=5)
    path = tmp_path / "c.npz"
    first = _run(iters=stop, seed=5, checkpoint=path)
    assert first.iterations == stop
    # the rest of the configuration comes from the checkpoint
    rest = train(DATA, iters=40, checkpoint=path, resume=True)
    assert rest.start_iteration == stop and rest.config["lr"] == 1.0
    _same(full, rest)
    assert checkpoint.load(path).iteration == 40


def test_resume_to_the_same_count_does_nothing(tmp_path):
    path = tmp_path / "c.npz"
    a = _run(iters=12, checkpoint=path)
    b = train(DATA, checkpoint=path, resume=True)  # iters: the checkpoint's target
    _same(a, b)
    assert b.timing["grad_calls"] == 12


def test_ctrl_c_from_callback_saves_and_resumes_bitwise(tmp_path):
    path = tmp_path / "c.npz"

    def stop_at_13(step):
        if step.iteration == 13:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted, match="after iteration 13 of 40") as info:
        _run(iters=40, checkpoint=path, callback=stop_at_13)
    assert isinstance(info.value, KeyboardInterrupt)
    assert info.value.checkpoint == path and info.value.history.iterations == 13
    assert checkpoint.load(path).iteration == 13
    _same(_run(iters=40), train(DATA, checkpoint=path, resume=path))


@pytest.fixture
def default_sigint():
    """Python's own Ctrl-C handler, even where pytest runs with SIGINT ignored (``cmd &``)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_real_sigint_mid_run(tmp_path, default_sigint):
    path = tmp_path / "c.npz"

    def sigint(step):
        if step.iteration == 7:
            signal.raise_signal(signal.SIGINT)

    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with pytest.raises(TrainingInterrupted) as info:
        _run(iters=30, checkpoint=path, callback=sigint)
    # the handler only flags the request: the loop stops at the next step boundary
    assert checkpoint.load(path).iteration == info.value.history.iterations == 7
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
    _same(_run(iters=30), train(DATA, checkpoint=path, resume=True))


def test_second_sigint_stops_at_once_even_inside_numba(tmp_path, monkeypatch,
                                                        default_sigint):
    path = tmp_path / "c.npz"
    real, calls = methods.METHODS[methods.DEFAULT_METHOD].func, []

    def numba_like(*args, **kwargs):
        # two presses inside step 5's gradient; Numba reports the second as SystemError
        calls.append(1)
        if len(calls) == 1 + 5:
            signal.raise_signal(signal.SIGINT)
            try:
                signal.raise_signal(signal.SIGINT)
            except KeyboardInterrupt as exc:
                raise SystemError("CPUDispatcher returned a result with an exception set") \
                    from exc
        return real(*args, **kwargs)

    _swap_gradient(monkeypatch, numba_like)
    lines = []
    with pytest.raises(TrainingInterrupted):
        _run(iters=30, checkpoint=path, log=lines.append)
    assert checkpoint.load(path).iteration == 4
    assert any("press again to stop at once" in line for line in lines)


def test_unrelated_system_error_is_not_an_interrupt(monkeypatch):
    def broken(*args, **kwargs):
        raise SystemError("something else")

    _swap_gradient(monkeypatch, broken)
    with pytest.raises(SystemError, match="something else"):
        _run(iters=3)


@pytest.mark.parametrize("where", ["gradient", "accuracy"])
def test_ctrl_c_inside_a_step_keeps_the_last_whole_step(tmp_path, monkeypatch, where):
    path = tmp_path / "c.npz"
    calls = []
    if where == "gradient":
        # call 1 is the kernel warm-up, call k + 1 computes step k
        real, done = methods.METHODS[methods.DEFAULT_METHOD].func, 9

        def fake(*args, **kwargs):
            calls.append(1)
            if len(calls) == done + 2:
                raise KeyboardInterrupt
            return real(*args, **kwargs)

        _swap_gradient(monkeypatch, fake)
    else:
        # measured at steps 1, 11, 21: the third measurement is in step 21
        real, done = schedule.accuracy, 20

        def fake(*args, **kwargs):
            calls.append(1)
            if len(calls) == 5:  # train acc of the third measurement
                raise KeyboardInterrupt
            return real(*args, **kwargs)

        monkeypatch.setattr(schedule, "accuracy", fake)
    with pytest.raises(TrainingInterrupted) as info:
        _run(iters=40, checkpoint=path)
    assert checkpoint.load(path).iteration == info.value.history.iterations == done
    if where == "gradient":
        _swap_gradient(monkeypatch, real)
    else:
        monkeypatch.setattr(schedule, "accuracy", real)
    _same(_run(iters=40), train(DATA, checkpoint=path, resume=True))


def test_ctrl_c_without_checkpoint_returns_the_history():
    def stop(step):
        if step.iteration == 3:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted, match="not saved") as info:
        _run(iters=10, callback=stop)
    assert info.value.checkpoint is None and info.value.history.iterations == 3


def test_periodic_checkpoints(tmp_path, monkeypatch):
    path = tmp_path / "c.npz"
    saved = []
    real = checkpoint.save
    monkeypatch.setattr(checkpoint, "save", lambda p, c: (saved.append(c.iteration),
                                                          real(p, c))[1])
    _run(iters=25, checkpoint=path, checkpoint_every=10)
    assert saved == [10, 20, 25]
    assert sorted(os.listdir(tmp_path)) == ["c.npz"]


def _bytes_and_listing(path):
    return path.read_bytes(), sorted(os.listdir(path.parent))


@pytest.mark.parametrize("failure", ["replace", "savez"])
def test_failed_checkpoint_write_keeps_the_old_one(tmp_path, monkeypatch, failure):
    path = tmp_path / "c.npz"
    _run(iters=10, checkpoint=path)
    before = _bytes_and_listing(path)
    if failure == "replace":
        def broken(*args):
            raise OSError("disk full (simulated)")

        monkeypatch.setattr(os, "replace", broken)
    else:
        real = np.savez

        def broken(fh, **arrays):
            real(fh, **arrays)
            fh.truncate(100)  # half a file on disk, then the failure
            raise OSError("disk full (simulated)")

        monkeypatch.setattr(np, "savez", broken)
    with pytest.raises(OSError, match="simulated"):
        train(DATA, iters=30, checkpoint=path, checkpoint_every=5, resume=True)
    assert _bytes_and_listing(path) == before  # intact, and no temp file left behind
    monkeypatch.undo()
    assert checkpoint.load(path).iteration == 10


def test_atomic_write_on_ctrl_c(tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("old")

    def interrupted(fh):
        fh.write(b"new but incomplete")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        files.atomic_write(path, interrupted)
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["f.txt"]


def test_checkpoint_is_pickle_free_json(tmp_path):
    path = tmp_path / "c.npz"
    _run(iters=5, checkpoint=path)
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        assert all(z[key].dtype != object for key in z.files)
    assert meta["iteration"] == 5 and meta["rng_state"]["bit_generator"] == "PCG64"
    assert meta["config"]["hidden_size_list"] == [8] and meta["config"]["dataset"] == "custom"


def test_existing_checkpoint_is_not_overwritten_by_a_new_run(tmp_path):
    path = tmp_path / "c.npz"
    _run(iters=5, checkpoint=path)
    before = _bytes_and_listing(path)
    with pytest.raises(FileExistsError, match="checkpoint"):
        _run(iters=5, seed=1, checkpoint=path)
    assert _bytes_and_listing(path) == before
    _run(iters=5, seed=1, checkpoint=path, overwrite=True)
    assert checkpoint.load(path).config["seed"] == 1


# --- bad input -----------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"lr": 0}, ValueError, "lr"),
    ({"lr": -0.1}, ValueError, "lr"),
    ({"lr": math.nan}, ValueError, "lr"),
    ({"lr": math.inf}, ValueError, "lr"),
    ({"lr": "0.1"}, TypeError, "lr"),
    ({"iters": 0}, ValueError, "iters"),
    ({"iters": -3}, ValueError, "iters"),
    ({"iters": 2.5}, TypeError, "iters"),
    ({"iters": math.inf}, TypeError, "iters"),
    ({"iters": True}, TypeError, "iters"),
    ({"batch_size": 0}, ValueError, "batch_size"),
    ({"batch_size": math.nan}, TypeError, "batch_size"),
    ({"batch_size": 501}, ValueError, "batch_size=501 is larger than the training set"),
    ({"hidden_size": 0}, ValueError, "hidden_size"),
    ({"output_size": 1}, ValueError, "output_size"),
    ({"method": "adam"}, ValueError, "method"),
    ({"method": 3}, TypeError, "method"),
    ({"seed": -1}, ValueError, "seed"),
    ({"eval_every": 0}, ValueError, "eval_every"),
    ({"h": 0.0}, ValueError, "h must"),
    ({"h": 2.0}, ValueError, "h must"),
    ({"threads": 0}, ValueError, "threads"),
    ({"checkpoint_every": 0}, ValueError, "checkpoint_every"),
    ({"checkpoint_every": 5}, ValueError, "checkpoint_every needs a checkpoint"),
    ({"resume": True}, ValueError, "resume=True needs a checkpoint"),
    ({"resume": 3}, TypeError, "resume must be a path"),
    ({"callback": 3}, TypeError, "callback"),
    ({"dataset": "fashion"}, ValueError, "data or dataset"),
])
def test_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        _run(iters=kwargs.pop("iters", 5), **kwargs)


def test_unknown_dataset():
    with pytest.raises(ValueError, match="dataset must be one of"):
        train(dataset="cifar", iters=5)


@pytest.mark.parametrize("bad, exc, match", [
    ("not data", TypeError, "data must be"),
    (((np.zeros((5, 3)), np.zeros(5)),), TypeError, "data must be"),
    (((np.full((5, 3), np.nan), np.zeros(5)), (np.zeros((2, 3)), np.zeros(2))), ValueError,
     "x_train contains NaN"),
    (((np.zeros((5, 3)), np.zeros(5)), (np.zeros((2, 4)), np.zeros(2))), ValueError,
     "x_test has 4 features"),
    (((np.zeros((5, 3)), np.full(5, 7)), (np.zeros((2, 3)), np.zeros(2))), ValueError,
     "t_train: t labels must lie in"),
    (((np.zeros((5, 3)), np.zeros(4)), (np.zeros((2, 3)), np.zeros(2))), ValueError,
     "t_train"),
    (((np.zeros((0, 3)), np.zeros(0)), (np.zeros((2, 3)), np.zeros(2))), ValueError,
     "x_train must have shape"),
    (((np.zeros((5, 3), dtype=object), np.zeros(5)), (np.zeros((2, 3)), np.zeros(2))),
     TypeError, "x_train must be a real numeric array"),
])
def test_bad_data(bad, exc, match):
    with pytest.raises(exc, match=match):
        train(bad, iters=1, batch_size=1, hidden_size=2, output_size=3)


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "c.npz"
    _run(iters=12, checkpoint=path)
    return path


@pytest.mark.parametrize("kwargs, match", [
    ({"hidden_size": 9}, r"hidden_size_list=\[9\] differs from the checkpoint's "
                         r"hidden_size_list=\[8\]"),
    ({"lr": 0.5}, "lr=0.5 differs"),
    ({"method": "backprop"}, "method='backprop' differs"),
    ({"seed": 1}, "seed=1 differs"),
    ({"batch_size": 25}, "batch_size=25 differs"),
    ({"iters": 11}, "iters=11 is below the checkpoint's iteration 12"),
    ({"data": _blobs(n_in=21)}, "data: its features"),
    ({"data": _blobs(seed=1)}, "data: its data"),
])
def test_resume_refuses_a_different_run(saved, kwargs, match):
    before = _bytes_and_listing(saved)
    with pytest.raises(ValueError, match=match):
        train(kwargs.pop("data", DATA), checkpoint=saved, resume=True, **kwargs)
    assert _bytes_and_listing(saved) == before


def test_resume_a_custom_run_needs_its_data(saved):
    with pytest.raises(ValueError, match="pass them as data"):
        train(resume=saved)


def _rewrite(path, drop=(), **replace):
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k not in drop}
    arrays.update(replace)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def _meta(path, **changes):
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
    meta.update(changes)
    return np.array(json.dumps(meta))


@pytest.mark.parametrize("damage, match", [
    ("truncate", "not a valid fastgrad checkpoint"),
    ("garbage", "not a valid fastgrad checkpoint"),
    ("empty", "not a valid fastgrad checkpoint"),
    ("no meta", "missing meta"),
    ("no W2", "missing W2"),
    ("bad json", "meta is not valid JSON"),
    ("no rng", "meta has no 'rng_state'"),
    ("bad rng", "rng_state is not a valid PCG64 state"),
    ("short losses", "losses must be 12"),
    ("nan param", "contains NaN"),
    ("wrong shape", "do not match the config"),
    ("pickled", "not a valid fastgrad checkpoint"),
])
def test_corrupt_checkpoint(saved, damage, match):
    blob = saved.read_bytes()
    if damage == "truncate":
        saved.write_bytes(blob[: len(blob) // 2])
    elif damage == "garbage":
        saved.write_bytes(os.urandom(2000))
    elif damage == "empty":
        saved.write_bytes(b"")
    elif damage == "no meta":
        _rewrite(saved, drop=("meta",))
    elif damage == "no W2":
        _rewrite(saved, drop=("W2",))
    elif damage == "bad json":
        _rewrite(saved, meta=np.array("{not json"))
    elif damage == "no rng":
        with np.load(saved, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
        del meta["rng_state"]
        _rewrite(saved, meta=np.array(json.dumps(meta)))
    elif damage == "bad rng":
        _rewrite(saved, meta=_meta(saved, rng_state={"bit_generator": "PCG64", "state": 1}))
    elif damage == "short losses":
        _rewrite(saved, losses=np.zeros(3))
    elif damage == "nan param":
        _rewrite(saved, b1=np.full(8, np.nan))
    elif damage == "wrong shape":
        _rewrite(saved, W1=np.zeros((20, 9)), b1=np.zeros(9), W2=np.zeros((9, 3)))
    elif damage == "pickled":
        _rewrite(saved, meta=np.array([{"a": 1}], dtype=object))
    before = _bytes_and_listing(saved)
    with pytest.raises(CheckpointError, match=match) as info:
        train(DATA, iters=20, checkpoint=saved, resume=True)
    assert isinstance(info.value, ValueError) and str(info.value).startswith("resume: ")
    assert _bytes_and_listing(saved) == before


@pytest.mark.parametrize("key, value, match", [
    ("method", "bogus", "unknown method 'bogus'"),
    ("method", 3, "method must be a string"),
    ("batch_size", -5, "batch_size must be at least 1"),
    ("batch_size", 2.5, "batch_size must be an integer"),
    ("lr", "abc", "lr must be a real number"),
    ("lr", -1.0, "lr must be positive"),
    ("eval_every", 0, "eval_every must be at least 1"),
    ("h", 0, "h must be positive"),
    ("seed", -1, "seed must be at least 0"),
    ("iters", 0, "iters must be at least 1"),
    ("hidden_size_list", "8", "hidden_size_list must be a non-empty list"),
    ("hidden_size_list", [8, 0], "hidden_size_list must be a non-empty list"),
    ("hidden_size_list", 8, "hidden_size_list must be a non-empty list"),
    ("output_size", 3.0, "output_size must be a positive integer"),
    ("weight_init_std", None, "weight_init_std must be a real number"),
    ("dataset", "cifar", "dataset must be one of"),
    ("input_size", "20", "input_size must be a positive integer"),
    ("data_sha256", 5, "data_sha256 must be a text"),
])
def test_corrupt_checkpoint_config(saved, key, value, match):
    with np.load(saved, allow_pickle=False) as z:
        config = json.loads(str(z["meta"]))["config"]
    original, config[key] = config[key], value
    _rewrite(saved, meta=_meta(saved, config=config))
    before = _bytes_and_listing(saved)
    # giving the setting (its good value) does not excuse the bad one in the checkpoint
    given = {key: original} if key in train_mod.CHECKS and key != "dataset" else {}
    for kwargs in ({}, given):
        with pytest.raises(CheckpointError) as info:
            train(DATA, **{"iters": 20, **kwargs}, checkpoint=saved, resume=True)
        message = str(info.value)
        assert isinstance(info.value, ValueError)
        assert message.startswith(f"resume: {saved} is not a valid fastgrad checkpoint: "
                                  f"config {key}"), message
        assert re.search(match, message), message
        assert _bytes_and_listing(saved) == before


def test_missing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        train(DATA, resume=tmp_path / "nope.npz")


# --- divergence ----------------------------------------------------------------------


def test_huge_learning_rate_diverges():
    with pytest.raises(TrainingDiverged, match="diverged at iteration") as info:
        _run(iters=50, lr=1e308, method="backprop")
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

    _swap_gradient(monkeypatch, blows_up)
    with pytest.raises(TrainingDiverged) as info:
        _run(iters=40, checkpoint=path, checkpoint_every=10)
    assert info.value.iteration == 23 and info.value.history.iterations == 22
    assert checkpoint.load(path).iteration == 20
    assert os.listdir(tmp_path) == ["c.npz"]


# --- outputs and the CLI -------------------------------------------------------------


def test_history_save_and_plot(tmp_path):
    h = _run(iters=25)
    paths = h.save(tmp_path / "out")
    assert sorted(p.name for p in paths) == ["metrics.csv", "metrics.json", "params.npz"]
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["losses"] == h.losses.tolist() and len(metrics["epochs"]) == 3
    assert metrics["summary"]["final_test_acc"] == h.final_test_acc
    rows = (tmp_path / "out" / "metrics.csv").read_text().splitlines()
    assert rows[0] == "iteration,loss,epoch,train_acc,test_acc" and len(rows) == 26
    assert rows[1].startswith("1,") and rows[1].count(",") == 4 and rows[2].endswith(",,,")
    png = plots.plot_history(h, tmp_path / "out" / "training.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _mnist_like(n_train=300, n_test=100, seed=0):
    (x, t), (xt, tt) = _blobs(n_train, n_test, n_in=784, n_classes=10, seed=seed)
    return (x.astype(np.float32), t.astype(np.uint8)), (xt.astype(np.float32),
                                                        tt.astype(np.uint8))


@pytest.fixture
def fake_loader(monkeypatch):
    loaded = []

    def load(normalize=True, flatten=True, one_hot_label=False, *, dataset="mnist",
             data_dir=None, progress=True, **kwargs):
        loaded.append((dataset, data_dir))
        return _mnist_like(seed=0 if dataset == "fashion" else 1)

    monkeypatch.setattr(data, "load_mnist", load)
    return loaded


CLI = ["train", "--dataset", "fashion", "--hidden", "8", "--batch-size", "50", "--lr", "0.5",
       "--no-progress"]


def test_cli_end_to_end(tmp_path, capsys, fake_loader):
    out = tmp_path / "run"
    assert main(CLI + ["--iters", "20", "--out", str(out), "--checkpoint-every", "5",
                       "--data-dir", str(tmp_path / "d")]) == 0
    assert fake_loader == [("fashion", str(tmp_path / "d"))]
    text = capsys.readouterr().out
    assert "784-8-10 sigmoid net on fashion (300 train / 100 test), sgd (lr 0.5)" in text
    assert "epoch   0.00  iter      1" in text and "epoch   3.00  iter     19" in text
    assert "final accuracy: train" in text and "time per gradient:" in text
    assert sorted(os.listdir(out)) == ["checkpoint.npz", "metrics.csv", "metrics.json",
                                       "params.npz", "training.png"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["losses"]) == 20 and len(metrics["epochs"]) == 4
    assert metrics["config"]["method"] == "incremental" and metrics["config"]["iters"] == 20
    with np.load(out / "params.npz", allow_pickle=False) as z:
        ck = checkpoint.load(out / "checkpoint.npz")
        assert all(np.array_equal(z[k], ck.params[k]) for k in ck.params)

    # running it again must not clobber the run
    before = _bytes_and_listing(out / "checkpoint.npz")
    assert main(CLI + ["--iters", "20", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert _bytes_and_listing(out / "checkpoint.npz") == before

    # resuming to 35 equals running 35 at once
    assert main(["train", "--out", str(out), "--resume", "--iters", "35", "--no-progress"]) == 0
    assert "resuming" in capsys.readouterr().out
    assert main(CLI + ["--iters", "35", "--out", str(tmp_path / "once")]) == 0
    for name in ("params.npz", "metrics.csv"):
        assert (out / name).read_bytes() == (tmp_path / "once" / name).read_bytes()


def test_cli_ctrl_c_then_resume(tmp_path, capsys, fake_loader, monkeypatch):
    out = tmp_path / "run"
    real, calls = methods.METHODS[methods.DEFAULT_METHOD].func, []

    def interrupt(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1 + 12:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    _swap_gradient(monkeypatch, interrupt)
    assert main(CLI + ["--iters", "30", "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert "interrupted after iteration 11 of 30" in err and "--resume" in err
    assert os.listdir(out) == ["checkpoint.npz"]
    _swap_gradient(monkeypatch, real)
    assert main(["train", "--resume", str(out / "checkpoint.npz"), "--no-progress"]) == 0
    assert checkpoint.load(out / "checkpoint.npz").iteration == 30
    assert main(CLI + ["--iters", "30", "--out", str(tmp_path / "once")]) == 0
    assert (checkpoint.load(out / "checkpoint.npz").params["W1"].tobytes()
            == checkpoint.load(tmp_path / "once" / "checkpoint.npz").params["W1"].tobytes())


def test_cli_divergence_exits_nonzero(tmp_path, capsys, fake_loader):
    out = tmp_path / "run"
    assert main(CLI + ["--iters", "30", "--lr", "1e308", "--method", "backprop",
                       "--out", str(out), "--checkpoint-every", "1"]) == 1
    err = capsys.readouterr().err
    assert "diverged" in err and "last good checkpoint" in err
    ck = checkpoint.load(out / "checkpoint.npz")
    assert all(np.isfinite(v).all() for v in ck.params.values())


@pytest.mark.parametrize("args, match", [
    (["--lr", "-1"], "lr must be positive"),
    (["--lr", "nan"], "lr must be positive"),
    (["--iters", "0"], "iters must be at least 1"),
    (["--batch-size", "301"], "larger than the training set"),
    (["--method", "sgd"], "unknown method"),
    (["--resume"], "--resume without a path needs --out"),
    (["--checkpoint-every", "5"], "--checkpoint-every needs --out"),
])
def test_cli_bad_arguments(capsys, fake_loader, args, match):
    assert main(CLI + args) == 2
    assert match in capsys.readouterr().err


def test_cli_without_matplotlib(tmp_path, capsys, fake_loader, monkeypatch):
    for name in ("matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)  # makes the import fail
    assert main(CLI + ["--iters", "3", "--out", str(tmp_path / "run")]) == 0
    assert "plot skipped: matplotlib is not available" in capsys.readouterr().out
    assert not (tmp_path / "run" / "training.png").exists()


def test_progress_bar_and_log(capsys):
    lines = []
    _run(iters=12, progress=True, log=lines.append)
    err = capsys.readouterr().err
    assert "train (incremental)" in err and "loss=" in err and "12/12" in err
    assert lines[0].startswith("training from iteration 0: 20-8-3 sigmoid net on custom")
    assert len(lines) == 1 + 2 and "train acc" in lines[-1]


# --- networks and optimizers (chapter 6) ---------------------------------------------

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

    _swap_gradient(monkeypatch, spy, "backprop")
    for name in ("sgd", "adam", "rmsprop"):
        seen.append([])
        _deep(iters=6, optimizer=name, method="backprop")
    assert seen[0] == seen[1] == seen[2] and len(seen[0]) == 6


def test_default_and_named_learning_rates():
    # no optimizer named: the chapter-4 loop, SGD with lr 0.1
    assert _run(iters=1, lr=None).config["lr"] == 0.1
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
    _same(full, rest)


def test_ctrl_c_keeps_the_optimizer_state_of_the_last_whole_step(tmp_path, monkeypatch):
    path = tmp_path / "c.npz"
    real, calls = methods.METHODS[methods.DEFAULT_METHOD].func, []

    def fake(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1 + 8:  # warm-up, 7 steps, then Ctrl-C inside step 8
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    _swap_gradient(monkeypatch, fake)
    with pytest.raises(TrainingInterrupted):
        _deep(iters=20, optimizer="adam", checkpoint=path)
    assert checkpoint.load(path).optimizer_state.iter == 7
    _swap_gradient(monkeypatch, real)
    _same(_deep(iters=20, optimizer="adam"), train(DATA, checkpoint=path, resume=True))


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
    before = _bytes_and_listing(saved_adam)
    with pytest.raises(ValueError, match=match):
        train(DATA, iters=10, checkpoint=saved_adam, resume=True, **kwargs)
    assert _bytes_and_listing(saved_adam) == before


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
        _rewrite(saved_adam, drop=("opt_m_W2",))
    elif damage == "nan state":
        _rewrite(saved_adam, opt_v_b1=np.full(8, np.nan))
    elif damage == "shape":
        _rewrite(saved_adam, opt_m_W1=np.zeros((8, 20)))
    elif damage == "count":
        _rewrite(saved_adam, meta=_meta(saved_adam, optimizer_iter=4))
    else:
        with np.load(saved_adam, allow_pickle=False) as z:
            config = json.loads(str(z["meta"]))["config"]
        config.update({"optimizer": {"optimizer": "adamw"},
                       "options": {"optimizer_options": {"beta1": 2.0}},
                       "lr": {"lr": -1}}[damage])
        _rewrite(saved_adam, meta=_meta(saved_adam, config=config))
    with pytest.raises(CheckpointError, match=match):
        train(DATA, iters=10, checkpoint=saved_adam, resume=True)


def test_format1_checkpoints_still_resume(tmp_path):
    """A chapter-4 checkpoint written before the optimizers (format 1) resumes bitwise."""
    path = tmp_path / "old.npz"
    _run(iters=9, checkpoint=path)
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
    config = meta["config"]
    for key in ("activation", "weight_decay_lambda", "optimizer", "optimizer_options"):
        del config[key]
    config["hidden_size"] = config.pop("hidden_size_list")[0]
    del meta["optimizer_iter"]
    _rewrite(path, format=np.array(1), meta=np.array(json.dumps(meta)))
    assert checkpoint.load(path).config["hidden_size_list"] == [8]
    _same(_run(iters=25), train(DATA, iters=25, checkpoint=path, resume=True))
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

    _swap_gradient(monkeypatch, huge, "backprop")
    with pytest.raises(TrainingDiverged, match="optimizer state") as info:
        _deep(iters=5, optimizer="adam", method="backprop")
    assert info.value.iteration == 1


# --- several optimizers on the command line ---------------------------------------


def test_cli_compares_optimizers(tmp_path, capsys, fake_loader):
    out = tmp_path / "cmp"
    args = ["train", "--dataset", "fashion", "--hidden", "8", "8", "--activation", "relu",
            "--weight-init", "he", "--batch-size", "50", "--iters", "12", "--no-progress",
            "--optimizer", "sgd", "momentum", "adagrad", "adam", "--out", str(out)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "784-8-8-10 relu net on fashion" in text and "== adam ==" in text
    assert sorted(os.listdir(out)) == ["adagrad", "adam", "momentum", "optimizers.png", "sgd"]
    assert (out / "optimizers.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lrs = {}
    for name in ("sgd", "momentum", "adagrad", "adam"):
        assert sorted(os.listdir(out / name)) == ["checkpoint.npz", "metrics.csv",
                                                  "metrics.json", "params.npz", "training.png"]
        metrics = json.loads((out / name / "metrics.json").read_text())
        assert metrics["config"]["optimizer"] == name
        assert metrics["config"]["hidden_size_list"] == [8, 8]
        assert 0 <= metrics["summary"]["final_test_acc"] <= 1
        assert re.search(rf"^{name} +{metrics['summary']['final_test_acc']:.4f}", text, re.M)
        lrs[name] = metrics["config"]["lr"]
    assert lrs == {"sgd": 0.01, "momentum": 0.01, "adagrad": 0.01, "adam": 0.001}

    # resume all of them, further: equal to running that far at once
    assert main(["train", "--out", str(out), "--resume", "--iters", "20", "--no-progress",
                 "--optimizer", "sgd", "adam"]) == 0
    once = tmp_path / "once"
    assert main(args[:-7] + ["--iters", "20", "--optimizer", "sgd", "adam", "--out",
                              str(once)]) == 0
    for name in ("sgd", "adam"):
        assert ((out / name / "params.npz").read_bytes()
                == (once / name / "params.npz").read_bytes())


def test_cli_lr_overrides_every_optimizer(tmp_path, capsys, fake_loader):
    assert main(CLI + ["--iters", "2", "--optimizer", "momentum", "rmsprop", "--lr", "0.02",
                       "--out", str(tmp_path / "o")]) == 0
    for name in ("momentum", "rmsprop"):
        config = json.loads((tmp_path / "o" / name / "metrics.json").read_text())["config"]
        assert config["lr"] == 0.02 and config["optimizer"] == name


def test_cli_one_named_optimizer_writes_into_out(tmp_path, capsys, fake_loader):
    assert main(CLI + ["--iters", "2", "--optimizer", "adam", "--out", str(tmp_path / "o")]) == 0
    assert json.loads((tmp_path / "o" / "metrics.json").read_text())["config"]["optimizer"] \
        == "adam"


def test_cli_divergence_of_one_optimizer_keeps_the_others(tmp_path, capsys, fake_loader):
    out = tmp_path / "o"
    assert main(CLI + ["--iters", "3", "--lr", "1e308", "--method", "backprop", "--optimizer",
                       "sgd", "adam", "--out", str(out)]) == 1
    captured = capsys.readouterr()
    # Adam's first step is lr in size: 1e308 overflows at once; SGD's is lr * grad
    assert "diverged" in captured.err and re.search(r"^adam +diverged", captured.out, re.M)
    assert (out / "sgd" / "metrics.json").exists() and (out / "optimizers.png").exists()
    assert not (out / "adam" / "metrics.json").exists()


@pytest.mark.parametrize("args, match", [
    (["--optimizer", "adamw"], "unknown optimizer 'adamw'"),
    (["--optimizer", "sgd", "SGD"], "names an optimizer twice"),
    (["--optimizer", "sgd", "adam", "--resume", "x.npz"], "give --resume without a path"),
    (["--activation", "tanh"], "activation must be one of"),
    (["--weight-init", "glorot"], "weight_init_std must be a number or one of"),
    (["--weight-decay", "-1"], "weight_decay_lambda must be finite and >= 0"),
    (["--hidden", "8", "0"], r"hidden_size_list[1] must be at least 1"),
    (["--optimizer", "momentum", "--lr", "0"], "lr must be positive"),
])
def test_cli_bad_network_and_optimizer_arguments(capsys, fake_loader, args, match):
    assert main(CLI + args) == 2
    assert match in capsys.readouterr().err


def test_cli_ctrl_c_among_several_optimizers_then_resume(tmp_path, capsys, fake_loader,
                                                        monkeypatch):
    out = tmp_path / "o"
    real, calls = methods.METHODS[methods.DEFAULT_METHOD].func, []

    def interrupt(*args, **kwargs):
        calls.append(1)
        if len(calls) == (1 + 6) + (1 + 3):  # sgd's warm-up and 6 steps, adam's 3rd step
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    _swap_gradient(monkeypatch, interrupt)
    args = CLI + ["--iters", "6", "--optimizer", "sgd", "adam", "rmsprop", "--out", str(out)]
    assert main(args) == 130
    assert "same command and --resume" in capsys.readouterr().err
    assert sorted(os.listdir(out)) == ["adam", "sgd"]
    assert checkpoint.load(out / "adam" / "checkpoint.npz").iteration == 2
    _swap_gradient(monkeypatch, real)
    assert main(args + ["--resume"]) == 0
    assert main(args[:-1] + [str(tmp_path / "once")]) == 0
    for name in ("sgd", "adam", "rmsprop"):
        assert ((out / name / "params.npz").read_bytes()
                == (tmp_path / "once" / name / "params.npz").read_bytes()), name


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8])
def test_minibatch_gather_is_fancy_indexing(dtype):
    from fastgrad.training.minibatch import gather

    x = (np.random.default_rng(3).random((50, 7)) * 200).astype(dtype)
    pick = np.random.default_rng(4).integers(0, 50, size=13)
    for threads in (1, 2):
        got = gather(x, pick, threads)
        assert got.dtype == np.float64 and got.flags.c_contiguous
        np.testing.assert_array_equal(got, x[pick].astype(np.float64))
