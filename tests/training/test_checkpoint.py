"""Checkpoints and resuming (fastgrad.checkpoint, fastgrad.training.commit): bitwise resumes,
Ctrl-C at any point, atomic writes, the history's result files.
"""

from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest

from fastgrad import checkpoint, files, methods, plots
from fastgrad.training import TrainingInterrupted, schedule, train
from tests.training.helpers import DATA, bytes_and_listing, run, same, swap_gradient


@pytest.mark.parametrize("stop", [1, 10, 11, 17])
def test_stop_and_resume_is_bitwise(tmp_path, stop):
    full = run(iters=40, seed=5)
    path = tmp_path / "c.npz"
    first = run(iters=stop, seed=5, checkpoint=path)
    assert first.iterations == stop
    # the rest of the configuration comes from the checkpoint
    rest = train(DATA, iters=40, checkpoint=path, resume=True)
    assert rest.start_iteration == stop and rest.config["lr"] == 1.0
    same(full, rest)
    assert checkpoint.load(path).iteration == 40


def test_resume_to_the_same_count_does_nothing(tmp_path):
    path = tmp_path / "c.npz"
    a = run(iters=12, checkpoint=path)
    b = train(DATA, checkpoint=path, resume=True)  # iters: the checkpoint's target
    same(a, b)
    assert b.timing["grad_calls"] == 12


def test_ctrl_c_from_callback_saves_and_resumes_bitwise(tmp_path):
    path = tmp_path / "c.npz"

    def stop_at_13(step):
        if step.iteration == 13:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted, match="after iteration 13 of 40") as info:
        run(iters=40, checkpoint=path, callback=stop_at_13)
    assert isinstance(info.value, KeyboardInterrupt)
    assert info.value.checkpoint == path and info.value.history.iterations == 13
    assert checkpoint.load(path).iteration == 13
    same(run(iters=40), train(DATA, checkpoint=path, resume=path))


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
        run(iters=30, checkpoint=path, callback=sigint)
    # the handler only flags the request: the loop stops at the next step boundary
    assert checkpoint.load(path).iteration == info.value.history.iterations == 7
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
    same(run(iters=30), train(DATA, checkpoint=path, resume=True))


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

    swap_gradient(monkeypatch, numba_like)
    lines = []
    with pytest.raises(TrainingInterrupted):
        run(iters=30, checkpoint=path, log=lines.append)
    assert checkpoint.load(path).iteration == 4
    assert any("press again to stop at once" in line for line in lines)


def test_unrelated_system_error_is_not_an_interrupt(monkeypatch):
    def broken(*args, **kwargs):
        raise SystemError("something else")

    swap_gradient(monkeypatch, broken)
    with pytest.raises(SystemError, match="something else"):
        run(iters=3)


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

        swap_gradient(monkeypatch, fake)
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
        run(iters=40, checkpoint=path)
    assert checkpoint.load(path).iteration == info.value.history.iterations == done
    if where == "gradient":
        swap_gradient(monkeypatch, real)
    else:
        monkeypatch.setattr(schedule, "accuracy", real)
    same(run(iters=40), train(DATA, checkpoint=path, resume=True))


def test_ctrl_c_without_checkpoint_returns_the_history():
    def stop(step):
        if step.iteration == 3:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted, match="not saved") as info:
        run(iters=10, callback=stop)
    assert info.value.checkpoint is None and info.value.history.iterations == 3


def test_periodic_checkpoints(tmp_path, monkeypatch):
    path = tmp_path / "c.npz"
    saved = []
    real = checkpoint.save
    monkeypatch.setattr(checkpoint, "save", lambda p, c: (saved.append(c.iteration),
                                                          real(p, c))[1])
    run(iters=25, checkpoint=path, checkpoint_every=10)
    assert saved == [10, 20, 25]
    assert sorted(os.listdir(tmp_path)) == ["c.npz"]


@pytest.mark.parametrize("failure", ["replace", "savez"])
def test_failed_checkpoint_write_keeps_the_old_one(tmp_path, monkeypatch, failure):
    path = tmp_path / "c.npz"
    run(iters=10, checkpoint=path)
    before = bytes_and_listing(path)
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
    assert bytes_and_listing(path) == before  # intact, and no temp file left behind
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
    run(iters=5, checkpoint=path)
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        assert all(z[key].dtype != object for key in z.files)
    assert meta["iteration"] == 5 and meta["rng_state"]["bit_generator"] == "PCG64"
    assert meta["config"]["hidden_size_list"] == [8] and meta["config"]["dataset"] == "custom"


def test_existing_checkpoint_is_not_overwritten_by_a_new_run(tmp_path):
    path = tmp_path / "c.npz"
    run(iters=5, checkpoint=path)
    before = bytes_and_listing(path)
    with pytest.raises(FileExistsError, match="checkpoint"):
        run(iters=5, seed=1, checkpoint=path)
    assert bytes_and_listing(path) == before
    run(iters=5, seed=1, checkpoint=path, overwrite=True)
    assert checkpoint.load(path).config["seed"] == 1


def test_history_save_and_plot(tmp_path):
    h = run(iters=25)
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


def test_the_figure_ends_where_the_run_ends():
    h = run(iters=25)  # epochs of 10 iterations: records at 1, 11, 21, and the end at 25
    assert [r.iteration for r in h.epochs] == [1, 11, 21]
    assert plots._final_epoch(h) == pytest.approx(24 / 10)
    assert plots._final_epoch(run(iters=21)) is None  # the last record is the end
