"""Bad input to ``train`` (fastgrad.training.settings, datasets, run): arguments, data, and
checkpoints that differ from the run or are damaged; each named in a ValueError/TypeError.
"""

from __future__ import annotations

import json
import math
import os
import re

import numpy as np
import pytest

from fastgrad import training as train_mod
from fastgrad.checkpoint import CheckpointError
from fastgrad.training import train
from tests.training.helpers import DATA, blobs, bytes_and_listing, meta_with, rewrite, run


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
        run(iters=kwargs.pop("iters", 5), **kwargs)


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


@pytest.mark.parametrize("kwargs, match", [
    ({"hidden_size": 9}, r"hidden_size_list=\[9\] differs from the checkpoint's "
                         r"hidden_size_list=\[8\]"),
    ({"lr": 0.5}, "lr=0.5 differs"),
    ({"method": "backprop"}, "method='backprop' differs"),
    ({"seed": 1}, "seed=1 differs"),
    ({"batch_size": 25}, "batch_size=25 differs"),
    ({"iters": 11}, "iters=11 is below the checkpoint's iteration 12"),
    ({"data": blobs(n_in=21)}, "data: its features"),
    ({"data": blobs(seed=1)}, "data: its data"),
])
def test_resume_refuses_a_different_run(saved, kwargs, match):
    before = bytes_and_listing(saved)
    with pytest.raises(ValueError, match=match):
        train(kwargs.pop("data", DATA), checkpoint=saved, resume=True, **kwargs)
    assert bytes_and_listing(saved) == before


def test_resume_a_custom_run_needs_its_data(saved):
    with pytest.raises(ValueError, match="pass them as data"):
        train(resume=saved)


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
        rewrite(saved, drop=("meta",))
    elif damage == "no W2":
        rewrite(saved, drop=("W2",))
    elif damage == "bad json":
        rewrite(saved, meta=np.array("{not json"))
    elif damage == "no rng":
        with np.load(saved, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
        del meta["rng_state"]
        rewrite(saved, meta=np.array(json.dumps(meta)))
    elif damage == "bad rng":
        rewrite(saved, meta=meta_with(saved, rng_state={"bit_generator": "PCG64", "state": 1}))
    elif damage == "short losses":
        rewrite(saved, losses=np.zeros(3))
    elif damage == "nan param":
        rewrite(saved, b1=np.full(8, np.nan))
    elif damage == "wrong shape":
        rewrite(saved, W1=np.zeros((20, 9)), b1=np.zeros(9), W2=np.zeros((9, 3)))
    elif damage == "pickled":
        rewrite(saved, meta=np.array([{"a": 1}], dtype=object))
    before = bytes_and_listing(saved)
    with pytest.raises(CheckpointError, match=match) as info:
        train(DATA, iters=20, checkpoint=saved, resume=True)
    assert isinstance(info.value, ValueError) and str(info.value).startswith("resume: ")
    assert bytes_and_listing(saved) == before


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
    rewrite(saved, meta=meta_with(saved, config=config))
    before = bytes_and_listing(saved)
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
        assert bytes_and_listing(saved) == before


def test_missing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        train(DATA, resume=tmp_path / "nope.npz")
