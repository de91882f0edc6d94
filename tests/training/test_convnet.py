"""Training chapter 7's convolutional net: ``train(net='convnet')``, its checkpoints, the CLI.

A tiny net (8x8 one-channel inputs, 3 filters of 3x3, hidden 6, 3 classes) on
synthetic stripes, so each run takes well under a second once the kernels are
compiled; the CLI's loader is replaced by 28x28 synthetic images.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from fastgrad import checkpoint, data, reference_conv
from fastgrad.checkpoint import CheckpointError
from fastgrad.cli import main
from fastgrad.convarch import ConvArch
from fastgrad.convnet import SimpleConvNet
from fastgrad.training import minibatch, train

CONV = {"filter_num": 3, "filter_size": 3, "pad": 0, "stride": 1}
TINY = {"net": "convnet", "conv_param": CONV, "hidden_size": 6, "output_size": 3,
        "batch_size": 20, "lr": 0.01}


def _stripes(n, side=8, n_classes=3, seed=0):
    """One bright horizontal band per class on noise: learnable in a few epochs."""
    rng = np.random.default_rng(seed)
    t = rng.integers(0, n_classes, n)
    x = 0.3 * rng.random((n, 1, side, side))
    band = side // n_classes
    for k in range(n_classes):
        x[t == k, 0, k * band:(k + 1) * band, :] += 1.0
    return x, t


DATA = (_stripes(200, seed=1), _stripes(60, seed=2))


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    monkeypatch.setenv(data.ENV_DATA_DIR, str(tmp_path / "data-cache"))
    monkeypatch.setattr(data, "SYSTEM_DIRS", {"mnist": (), "fashion": ()})

    def no_loading(*args, **kwargs):
        raise AssertionError("a test tried to load a real data set")

    monkeypatch.setattr(data, "load_mnist", no_loading)


def _run(**kwargs):
    return train(DATA, **{**TINY, **kwargs})


def _same(a, b):
    """Bitwise equality of two runs (timings aside)."""
    assert a.losses.tobytes() == b.losses.tobytes()
    assert a.epochs == b.epochs
    assert list(a.params) == list(b.params)
    for name in a.params:
        assert a.params[name].tobytes() == b.params[name].tobytes(), name


@pytest.mark.parametrize("method", ["backprop", "incremental", "jit"])
def test_convnet_trains_and_its_loss_falls(method):
    h = _run(iters=40, method=method)
    assert h.iterations == 40
    assert h.params["W1"].shape == (3, 1, 3, 3) and h.params["W2"].shape == (27, 6)
    assert h.config["net"] == "convnet" and h.config["input_dim"] == [1, 8, 8]
    assert h.config["conv_param"] == CONV and h.config["hidden_size_list"] == [6]
    assert np.mean(h.losses[-5:]) < 0.6 * np.mean(h.losses[:5])
    assert h.final_test_acc > 0.9


@pytest.mark.parametrize("conv_param, channels", [
    ({"filter_num": 4, "filter_size": 5, "pad": 0, "stride": 1}, 1),
    ({"filter_num": 3, "filter_size": 4, "pad": 1, "stride": 2}, 3),
])
def test_compiled_scores_and_loss_agree_with_the_reference(conv_param, channels):
    # the training loop's loss and accuracy for the compiled methods
    rng = np.random.default_rng(3)
    net = SimpleConvNet(input_dim=(channels, 12, 12), conv_param=conv_param, hidden_size=7,
                        weight_init_std=0.3, seed=4)
    x, t = rng.random((13, channels, 12, 12)), rng.integers(0, 10, 13)
    conv = ConvArch(conv_param["stride"], conv_param["pad"])
    scores = minibatch.conv_scores(net.params, x, conv, 2)
    want = reference_conv.predict(net.params, x, conv)
    assert np.max(np.abs(scores - want)) <= 1e-12 * np.max(np.abs(want))
    assert np.array_equal(minibatch.conv_scores(net.params, x, conv, 1), scores)
    assert minibatch.conv_loss(net.params, x, t, conv, 2) == pytest.approx(
        reference_conv.loss(net.params, x, t, conv), rel=1e-12)


def test_book_defaults_for_the_convnet():
    h = train(DATA, net="convnet", conv_param=CONV, output_size=3, iters=1, batch_size=20,
              method="backprop")
    c = h.config
    # ch07/train_convnet.py: Adam lr 0.001, std 0.01, hidden 100, SimpleConvNet's ReLU
    assert (c["optimizer"], c["lr"], c["weight_init_std"]) == ("adam", 0.001, 0.01)
    assert (c["hidden_size_list"], c["activation"], c["weight_decay_lambda"]) == \
        ([100], "relu", 0.0)
    assert train(DATA, net="convnet", output_size=3, iters=1, batch_size=20,
                 method="backprop").config["conv_param"] == \
        {"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1}
    # the initial weights are the net's, from the seed's weight stream
    assert h.params["W1"].shape == (3, 1, 3, 3)
    assert train(DATA, net="convnet", conv_param=CONV, output_size=3, iters=1,
                 batch_size=20, method="backprop", optimizer="sgd").config["lr"] == 0.01


def test_any_optimizer_trains_the_convnet():
    for name in ("sgd", "momentum", "adagrad", "rmsprop"):
        h = _run(iters=5, method="backprop", optimizer=name)
        assert h.config["optimizer"] == name and np.all(np.isfinite(h.losses))


def test_incremental_follows_backprop():
    # SGD moves the parameters by lr times the gradient, so the runs part only by the
    # gradients' difference: O(h^2), the 1e-7 inside the log, and the central difference
    # across a ReLU's kink (std 0.01 weights leave pre-activations near zero)
    kwargs = {"iters": 6, "seed": 3, "optimizer": "sgd", "lr": 0.5}
    numerical = _run(method="incremental", **kwargs)
    analytic = _run(method="backprop", **kwargs)
    np.testing.assert_allclose(numerical.losses, analytic.losses, rtol=0, atol=1e-6)
    for name in numerical.params:
        np.testing.assert_allclose(numerical.params[name], analytic.params[name], rtol=0,
                                   atol=1e-3, err_msg=name)
    assert not np.array_equal(numerical.params["W1"], analytic.params["W1"])


@pytest.mark.parametrize("method", ["incremental", "jit"])
def test_threads_change_nothing(method):
    _same(_run(iters=6, method=method, threads=1), _run(iters=6, method=method, threads=2))


def test_flat_rows_and_images_train_alike():
    (x, t), (xt, tt) = DATA
    flat = ((x.reshape(len(x), -1), t), (xt.reshape(len(xt), -1), tt))
    a = _run(iters=4, method="backprop")
    b = train(flat, **TINY, iters=4, method="backprop")
    _same(a, b)
    c = train(flat, **TINY, iters=4, method="backprop", input_dim=(1, 8, 8))
    _same(a, c)


def test_input_dim_is_checked():
    (x, t), (xt, tt) = DATA
    odd = ((x.reshape(len(x), -1)[:, :63], t), (xt.reshape(len(xt), -1)[:, :63], tt))
    with pytest.raises(ValueError, match="input_dim"):
        train(odd, **TINY, iters=1)
    with pytest.raises(ValueError, match="input_dim"):
        _run(iters=1, input_dim=(1, 4, 4))
    with pytest.raises(ValueError, match="input_dim is for net='convnet'"):
        train(DATA, hidden_size=6, output_size=3, iters=1, input_dim=(1, 8, 8))


@pytest.mark.parametrize("kwargs, match", [
    ({"hidden_size": None, "hidden_size_list": [6, 6]}, "one hidden layer"),
    ({"activation": "sigmoid"}, "activation"),
    ({"weight_decay_lambda": 0.1}, "weight_decay_lambda"),
    ({"weight_init_std": "he"}, "weight_init_std"),
    ({"conv_param": {"filter_num": 3, "filter_size": 4, "pad": 0, "stride": 1}}, "pooling"),
    ({"conv_param": {"filter_num": 3}}, "conv_param"),
    ({"net": "cnn"}, "net"),
])
def test_bad_convnet_settings_are_refused(kwargs, match):
    with pytest.raises((TypeError, ValueError), match=match):
        _run(iters=1, **kwargs)


def test_a_convnet_at_chance_is_told_to_change_lr_or_its_std():
    h = _run(iters=25, method="backprop", optimizer="sgd", lr=1e-9)
    assert len(h.notes) == 1 and "still at chance" in h.notes[0]
    assert "--lr" in h.notes[0] and "std 0.01" in h.notes[0] and "'he'" not in h.notes[0]


def test_conv_param_is_refused_for_the_fully_connected_net():
    with pytest.raises(ValueError, match="conv_param is for net='convnet'"):
        train(DATA, hidden_size=6, output_size=3, iters=1, conv_param=CONV)


# --- checkpoints ---------------------------------------------------------------------


@pytest.mark.parametrize("method, stop", [("incremental", 3), ("incremental", 10),
                                          ("backprop", 7)])
def test_stop_and_resume_is_bitwise(tmp_path, method, stop):
    full = _run(iters=14, seed=4, method=method)
    path = tmp_path / "c.npz"
    first = _run(iters=stop, seed=4, method=method, checkpoint=path)
    assert first.iterations == stop
    saved = checkpoint.load(path)
    assert saved.config["net"] == "convnet" and saved.config["conv_param"] == CONV
    assert saved.config["input_dim"] == [1, 8, 8] and saved.config["hidden_size_list"] == [6]
    assert saved.optimizer_state.slots["m"]["W1"].shape == (3, 1, 3, 3)
    # everything but the target comes from the checkpoint
    rest = train(DATA, iters=14, checkpoint=path, resume=True)
    assert rest.start_iteration == stop and rest.config["net"] == "convnet"
    _same(full, rest)


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "c.npz"
    _run(iters=3, method="backprop", checkpoint=path)
    return path


@pytest.mark.parametrize("kwargs, match", [
    ({"net": "mlp"}, "net='mlp' differs from the checkpoint's net='convnet'"),
    ({"conv_param": {**CONV, "filter_num": 4}}, "conv_param=.*differs"),
    ({"hidden_size": 7}, "hidden_size_list=.*differs"),
    ({"input_dim": (4, 4, 4)}, "input_dim"),
])
def test_resume_refuses_another_architecture(saved, kwargs, match):
    before = saved.read_bytes()
    with pytest.raises(ValueError, match=match):
        train(DATA, iters=6, checkpoint=saved, resume=True, **kwargs)
    assert saved.read_bytes() == before


def test_resuming_an_mlp_checkpoint_as_a_convnet_is_refused(tmp_path):
    path = tmp_path / "mlp.npz"
    train(DATA, hidden_size=6, output_size=3, iters=2, batch_size=20, checkpoint=path)
    with pytest.raises(ValueError, match="net='convnet' differs from the checkpoint's "
                                         "net='mlp'"):
        train(DATA, iters=4, checkpoint=path, resume=True, net="convnet")
    # a checkpoint from before the net kinds is a fully connected one
    assert checkpoint.load(path).config["net"] == "mlp"


def test_a_convnet_checkpoint_whose_parameters_do_not_match_is_refused(saved, tmp_path):
    with np.load(saved, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["meta"]))
    meta["config"]["conv_param"]["filter_num"] = 5
    arrays["meta"] = np.array(json.dumps(meta))
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays)
    with pytest.raises(CheckpointError, match="W1 must be float64 of shape"):
        checkpoint.load(bad)


# --- SimpleConvNet.save_params / load_params ---------------------------------------------


def test_save_and_load_params_roundtrip(tmp_path):
    net = SimpleConvNet((1, 8, 8), CONV, hidden_size=6, output_size=3, seed=0)
    path = net.save_params(tmp_path / "params.npz")
    other = SimpleConvNet((1, 8, 8), CONV, hidden_size=6, output_size=3, seed=1)
    other.load_params(path)
    for name, value in net.params.items():
        assert other.params[name].tobytes() == value.tobytes()
    assert os.listdir(tmp_path) == ["params.npz"]  # written atomically: no temp file left


def test_load_params_refuses_another_net(tmp_path):
    path = SimpleConvNet((1, 8, 8), CONV, hidden_size=6, output_size=3,
                         seed=0).save_params(tmp_path / "p.npz")
    net = SimpleConvNet((1, 8, 8), CONV, hidden_size=7, output_size=3, seed=1)
    before = {k: v.copy() for k, v in net.params.items()}
    with pytest.raises(ValueError, match="'W2' has shape \\(27, 6\\) but this net's is "
                                         "\\(27, 7\\)"):
        net.load_params(path)
    assert all(np.array_equal(net.params[k], before[k]) for k in before)
    np.savez(tmp_path / "short.npz", W1=np.zeros((3, 1, 3, 3)))
    with pytest.raises(ValueError, match="no parameter 'b1'"):
        net.load_params(tmp_path / "short.npz")


# --- the CLI ---------------------------------------------------------------------------


def _images(n, seed):
    (x, t), _ = (_stripes(n, side=28, n_classes=10, seed=seed), None)
    return x.reshape(n, -1).astype(np.float32), t.astype(np.uint8)


@pytest.fixture
def fake_loader(monkeypatch):
    loaded = []

    def load(normalize=True, flatten=True, one_hot_label=False, *, dataset="mnist",
             data_dir=None, progress=True, **kwargs):
        loaded.append(dataset)
        return _images(120, 1), _images(40, 2)

    monkeypatch.setattr(data, "load_mnist", load)
    return loaded


CLI = ["train", "--net", "convnet", "--dataset", "fashion", "--filters", "2", "--hidden", "6",
       "--batch-size", "20", "--no-progress"]


def test_cli_end_to_end(tmp_path, capsys, fake_loader):
    out = tmp_path / "run"
    assert main(CLI + ["--optimizer", "adam", "--iters", "8", "--out", str(out),
                       "--checkpoint-every", "4"]) == 0
    assert fake_loader == ["fashion"]
    text = capsys.readouterr().out
    assert ("convnet 1x28x28 -> 2 filters 5x5 (pad 0, stride 1) -> relu -> pool -> 6 relu "
            "-> 10 on fashion (120 train / 40 test), adam (lr 0.001") in text
    assert "epoch   0.00  iter      1" in text and "epoch   1.00  iter      7" in text
    assert "final accuracy: train" in text and "time per gradient:" in text
    assert {"checkpoint.npz", "metrics.json", "params.npz"} <= set(os.listdir(out))
    ck = checkpoint.load(out / "checkpoint.npz")
    assert ck.config["net"] == "convnet" and ck.params["W2"].shape == (2 * 12 * 12, 6)

    # resuming needs no flags but the target, and equals running at once
    assert main(["train", "--out", str(out), "--resume", "--iters", "12",
                 "--no-progress"]) == 0
    assert "resuming" in capsys.readouterr().out
    assert main(CLI + ["--optimizer", "adam", "--iters", "12",
                       "--out", str(tmp_path / "once")]) == 0
    for name in ("params.npz", "metrics.csv"):
        assert (out / name).read_bytes() == (tmp_path / "once" / name).read_bytes()

    # another architecture is refused, naming what differs
    assert main(["train", "--out", str(out), "--resume", "--iters", "14", "--filters", "3",
                 "--no-progress"]) == 2
    assert "conv_param" in capsys.readouterr().err
    assert main(["train", "--out", str(out), "--resume", "--iters", "14", "--net", "mlp",
                 "--no-progress"]) == 2
    assert "net='mlp' differs" in capsys.readouterr().err


def test_cli_convnet_refuses_two_hidden_widths(tmp_path, capsys, fake_loader):
    assert main(CLI + ["--hidden", "6", "6", "--iters", "1"]) == 2
    assert "one hidden layer" in capsys.readouterr().err


def test_cli_help_names_the_convnet_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--net {mlp,convnet}" in text and "train_convnet.py" in text
    assert "Adam lr 0.001" in text and "--hidden 100" in text
