"""fastgrad.bench.training: the optimizer comparison's figures, measured by training."""

from __future__ import annotations

import numpy as np
import pytest

from fastgrad.bench import training


def _digits(n, seed):
    rng = np.random.default_rng(seed)
    x = (rng.random((n, 784)) * (rng.random((n, 784)) < 0.2)).astype(np.float32)
    return x, rng.integers(0, 10, n)


@pytest.fixture(scope="module")
def comparison():
    x, t = _digits(30, 1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(training, "NET", {**training.NET, "hidden_size_list": [3]})
        return training.run_comparison(((x[:20], t[:20]), (x[20:], t[20:])),
                                       described="synthetic", iters=4, batch=5, threads=1,
                                       say=lambda _: None)


def test_comparison_figures_are_measured_not_judged(comparison):
    figures, histories, details = comparison
    assert set(histories) == {"incremental", "backprop"}
    assert all(list(h) == list(training.OPTIMIZERS) for h in histories.values())
    assert all(len(h.losses) == 4 for hs in histories.values() for h in hs.values())
    gaps = [100 * abs(histories["incremental"][n].final_test_acc
                      - histories["backprop"][n].final_test_acc)
            for n in training.OPTIMIZERS]
    minutes, gap = figures
    assert (minutes["id"], gap["id"]) == (training.MINUTES, training.ACCURACY_GAP)
    assert gap["figure"] == pytest.approx(max(gaps)) and gap["unit"] == "points"
    assert minutes["figure"] == pytest.approx(details["incremental_total_s"] / 60)
    assert minutes["unit"] == "min" and "synthetic" in minutes["note"]
    for f in figures:  # the thresholds are the targets file's business
        assert not {"met", "thresholds", "must", "stretch"} & set(f)
    assert details["iters"] == 4 and details["batch"] == 5 and details["threads"] == 1
    assert set(details["runs"]["incremental"]) == set(training.OPTIMIZERS)


def test_same_minibatches_for_both_gradients(comparison):
    _, histories, _ = comparison
    for name in training.OPTIMIZERS:
        inc, bp = histories["incremental"][name], histories["backprop"][name]
        assert inc.config["seed"] == bp.config["seed"]
        # one seed, one batch sequence: the two gradients agree to 1e-6, so the losses
        # of the first steps can differ only by that much
        np.testing.assert_allclose(inc.losses[:1], bp.losses[:1], rtol=0, atol=1e-4)


def test_split_test_digits_when_no_training_set(monkeypatch):
    from fastgrad import data as fdata
    from fastgrad import standard

    def no_training_set(**kwargs):
        raise FileNotFoundError("train-images-idx3-ubyte.gz not found")

    x, t = _digits(50, 2)
    monkeypatch.setattr(fdata, "load_mnist", no_training_set)
    monkeypatch.setattr(standard, "find_test_set", lambda name: (x, t, "here"))
    ((xtr, ttr), (xte, tte)), described = training.load_data("mnist", n_train=40)
    assert len(xtr) == 40 and len(xte) == 10 and np.array_equal(xte, x[40:])
    assert "split 40 to train / 10 to measure" in described and "not found" in described
    with pytest.raises(ValueError, match="n_train must be in 1..49"):
        training.load_data("mnist", n_train=50)
    monkeypatch.setattr(standard, "find_test_set", lambda name: None)
    with pytest.raises(FileNotFoundError, match="neither MNIST's training set"):
        training.load_data("mnist")
