"""``fastgrad train``: end to end on a replaced loader, Ctrl-C and resume, bad arguments,
and several optimizers compared in one command.
"""

from __future__ import annotations

import json
import os
import re
import sys

import numpy as np
import pytest

from fastgrad import checkpoint, data, methods
from fastgrad.cli import main
from tests.training.helpers import blobs, bytes_and_listing, swap_gradient


def _mnist_like(n_train=300, n_test=100, seed=0):
    (x, t), (xt, tt) = blobs(n_train, n_test, n_in=784, n_classes=10, seed=seed)
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
    before = bytes_and_listing(out / "checkpoint.npz")
    assert main(CLI + ["--iters", "20", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert bytes_and_listing(out / "checkpoint.npz") == before

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

    swap_gradient(monkeypatch, interrupt)
    assert main(CLI + ["--iters", "30", "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert "interrupted after iteration 11 of 30" in err and "--resume" in err
    assert os.listdir(out) == ["checkpoint.npz"]
    swap_gradient(monkeypatch, real)
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


# --- several optimizers on the command line -------------------------------------------


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

    swap_gradient(monkeypatch, interrupt)
    args = CLI + ["--iters", "6", "--optimizer", "sgd", "adam", "rmsprop", "--out", str(out)]
    assert main(args) == 130
    assert "same command and --resume" in capsys.readouterr().err
    assert sorted(os.listdir(out)) == ["adam", "sgd"]
    assert checkpoint.load(out / "adam" / "checkpoint.npz").iteration == 2
    swap_gradient(monkeypatch, real)
    assert main(args + ["--resume"]) == 0
    assert main(args[:-1] + [str(tmp_path / "once")]) == 0
    for name in ("sgd", "adam", "rmsprop"):
        assert ((out / name / "params.npz").read_bytes()
                == (tmp_path / "once" / name / "params.npz").read_bytes()), name
