"""A deep net's default initial weights, and a run still at chance after an epoch saying so."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fastgrad import data
from fastgrad.checkpoint import EpochRecord
from fastgrad.cli import main
from fastgrad.network import MATCHED_INIT, MultiLayerNet, TwoLayerNet
from fastgrad.training import diagnosis, train


def _blobs(n_train=500, n_test=100, n_in=20, n_classes=3, seed=0):
    """Sparse inputs around one centre per class: a deep net with suited weights learns
    them within an epoch (10 steps of 50)."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 1, (n_classes, n_in)) * (rng.uniform(size=(n_classes, n_in)) < 0.6)
    t = rng.integers(0, n_classes, n_train + n_test)
    x = np.clip(centres[t] + 0.15 * rng.standard_normal((len(t), n_in)), 0, 1)
    x[x < 0.1] = 0.0
    return (x[:n_train], t[:n_train]), (x[n_train:], t[n_train:])


DATA = _blobs()
#: The book's deep ReLU net in small: 4 hidden layers, SGD; backprop keeps it fast.
DEEP = {"hidden_size_list": [10] * 4, "activation": "relu", "output_size": 3,
        "batch_size": 50, "optimizer": "sgd", "lr": 0.3, "method": "backprop", "threads": 1}


def _deep(**kwargs):
    return train(DATA, **{**DEEP, **kwargs})


# --- the default initial weights -----------------------------------------------------


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_deep_net_takes_the_init_suited_to_its_activation(activation):
    h = _deep(iters=1, activation=activation)
    want = MATCHED_INIT[activation]
    assert h.config["weight_init_std"] == want == {"relu": "he", "sigmoid": "xavier"}[activation]
    given = _deep(iters=1, activation=activation, weight_init_std=want)
    assert all(h.params[k].tobytes() == given.params[k].tobytes() for k in h.params)
    # told otherwise, it keeps what it is told
    assert _deep(iters=1, activation=activation, weight_init_std=0.01).config[
        "weight_init_std"] == 0.01


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_one_hidden_layer_keeps_the_chapter_4_std(activation):
    h = _deep(iters=1, activation=activation, hidden_size_list=[10])
    assert h.config["weight_init_std"] == 0.01
    given = _deep(iters=1, activation=activation, hidden_size_list=[10], weight_init_std=0.01)
    assert all(h.params[k].tobytes() == given.params[k].tobytes() for k in h.params)


def test_resumed_deep_run_keeps_its_saved_init(tmp_path):
    saved = tmp_path / "ck.npz"
    _deep(iters=3, weight_init_std=0.01, checkpoint=saved)
    assert _deep(iters=5, checkpoint=saved, resume=True).config["weight_init_std"] == 0.01
    with pytest.raises(ValueError, match="weight_init_std='he' differs"):
        _deep(iters=6, checkpoint=saved, resume=True, weight_init_std="he")


@pytest.mark.parametrize(("activation", "gain"), [("relu", 2.0), ("sigmoid", 1.0)])
def test_multilayer_net_defaults_to_he_or_xavier(activation, gain):
    net = MultiLayerNet(400, [300, 200], 10, activation=activation, seed=0)
    named = MultiLayerNet(400, [300, 200], 10, activation=activation,
                          weight_init_std=MATCHED_INIT[activation], seed=0)
    assert all(net.params[k].tobytes() == named.params[k].tobytes() for k in net.params)
    for i, fan_in in enumerate((400, 300, 200), start=1):
        assert np.std(net.params[f"W{i}"]) == pytest.approx(np.sqrt(gain / fan_in), rel=0.05)
    two = TwoLayerNet(400, 300, 10, seed=0, activation=activation)  # the book's 0.01
    assert np.std(two.params["W1"]) == pytest.approx(0.01, rel=0.05)


# --- at chance after an epoch ----------------------------------------------------------


def test_starved_deep_relu_run_says_why():
    steps = []
    h = _deep(iters=15, weight_init_std=0.01, callback=steps.append)
    assert h.epochs[1].epoch == 1.0 and h.epochs[1].train_acc <= 0.35  # one class for all
    assert len(h.notes) == 1
    note = h.notes[0]
    assert "still at chance" in note and "initial weights too small" in note
    assert "--weight-init he" in note
    # told once, at the step that measured epoch 1
    assert [(s.iteration, s.note) for s in steps if s.note] == [(11, note)]
    # the same net from its default (He) weights learns: nothing to say
    healthy = _deep(iters=15)
    assert healthy.notes == [] and healthy.epochs[1].train_acc > 0.9


def test_at_chance_with_suited_weights_blames_the_learning_rate():
    h = _deep(iters=12, lr=100.0)
    assert h.config["weight_init_std"] == "he" and len(h.notes) == 1
    assert "learning rate too high or too low (lr 100)" in h.notes[0]
    assert "weight_init_std" not in h.notes[0]  # the weights are He already


def test_note_kept_by_a_resumed_run(tmp_path):
    saved = tmp_path / "ck.npz"
    first = _deep(iters=12, weight_init_std=0.01, checkpoint=saved)
    steps = []
    resumed = _deep(iters=15, checkpoint=saved, resume=True, callback=steps.append)
    assert resumed.notes == first.notes and len(first.notes) == 1
    assert not any(s.note for s in steps)  # judged before: not told again
    assert resumed.to_dict()["notes"] == first.notes


def test_short_run_is_not_judged():
    assert _deep(iters=10, weight_init_std=0.01).notes == []  # no measurement at epoch 1 yet


def test_chance_level_and_note():
    assert diagnosis.chance_level(np.array([0, 1, 2, 0, 1, 2]), 3) == pytest.approx(1 / 3)
    assert diagnosis.chance_level(np.array([0, 0, 0, 1]), 3) == 0.75  # the majority's share
    config = {"hidden_size_list": [10, 10], "activation": "sigmoid", "weight_init_std": 0.01,
              "input_size": 20, "output_size": 4, "lr": 0.1}
    record = EpochRecord
    at_one = [record(0.0, 1, 0.25, 0.25), record(1.0, 11, 0.26, 0.25)]
    note = diagnosis.chance_note(at_one, 0.25, config)
    assert note.startswith("training accuracy 0.2600 at epoch 1 is still at chance (0.2500 "
                           "for 4 classes): initial weights too small for 2 hidden sigmoid")
    assert "--weight-init xavier" in note
    above = at_one[:1] + [record(1.0, 11, 0.25 + 1.5 * diagnosis.CHANCE_MARGIN, 0.3)]
    assert diagnosis.chance_note(above, 0.25, config) is None
    assert diagnosis.chance_note(at_one[:1], 0.25, config) is None  # before epoch 1


# --- the command line ------------------------------------------------------------------


@pytest.fixture
def synthetic_loader(monkeypatch):
    monkeypatch.setattr(data, "load_mnist", lambda *args, **kwargs: DATA)


CLI = ["train", "--dataset", "fashion", "--hidden", "10", "10", "10", "10", "--activation",
       "relu", "--batch-size", "50", "--lr", "0.3", "--iters", "15", "--method", "backprop",
       "--threads", "1", "--no-progress"]


def test_cli_warns_on_stderr_in_one_line(tmp_path, capsys, synthetic_loader):
    out = tmp_path / "run"
    assert main(CLI + ["--weight-init", "0.01", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if "warning" in line]
    assert len(lines) == 1 and lines[0].startswith("fastgrad train: warning: training accuracy")
    assert "--weight-init he" in lines[0] and "warning" not in captured.out
    assert json.loads((out / "metrics.json").read_text())["notes"] == [
        lines[0].removeprefix("fastgrad train: warning: ")]


def test_cli_deep_relu_net_defaults_to_he(tmp_path, capsys, synthetic_loader):
    out = tmp_path / "run"
    assert main(CLI + ["--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "warning" not in captured.err and "initial weights he" in captured.out
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["weight_init_std"] == "he" and metrics["notes"] == []


def test_cli_help_says_which_init_applies(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "0.01 with one hidden layer" in text
    assert "with several, he for relu and xavier for sigmoid" in text
    assert "at chance after one epoch" in text
