"""fastgrad.bench.workload: the validated problem, seeded, labelled, on the data asked for."""

from __future__ import annotations

import gzip
import shutil

import numpy as np
import pytest

from fastgrad.bench.workload import load_workload
from fastgrad.idx import DataIntegrityError
from fastgrad.standard import find_test_set
from tests.bench.helpers import FIRST_TEST_LABELS, MNIST_TEST, SHARED, needs_shared


def test_synthetic_workload_is_seeded_and_labelled():
    w = load_workload(5, 200, synthetic=True)
    again = load_workload(5, 200, synthetic=True)
    assert w.data == "synthetic" and "synthetic" in w.description
    assert w.layers == (784, 5, 10) and w.batch == 200 and w.n_params == 784 * 5 + 5 + 50 + 10
    np.testing.assert_array_equal(w.x, again.x)
    np.testing.assert_array_equal(w.params["W1"], again.params["W1"])
    assert w.x.dtype == np.float64 and w.labels.dtype == np.int64  # ready for the kernels
    assert w.x.min() == 0.0 and w.x.max() <= 1.0 and 0.1 < np.mean(w.x != 0) < 0.3
    assert set(np.unique(w.labels)) <= set(range(10))


@needs_shared
def test_real_workload_is_the_first_test_digits():
    for w in (load_workload(5, 10), load_workload(5, 10, data_dir=SHARED)):
        assert w.data == "mnist" and "0..9" in w.description
        assert w.labels.tolist() == FIRST_TEST_LABELS
        assert w.x.dtype == np.float64 and w.x.max() == 1.0
    with pytest.raises(ValueError, match="at most 10000"):
        load_workload(5, 10001, data_dir=SHARED)


def test_explicit_data_dir_must_hold_the_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_workload(5, 3, data_dir=tmp_path)


@needs_shared
def test_tampered_data_is_refused(tmp_path):
    shutil.copy(SHARED / MNIST_TEST[0], tmp_path)
    raw = bytearray(gzip.decompress((SHARED / MNIST_TEST[1]).read_bytes()))
    raw[8] = (raw[8] + 1) % 10  # relabel the first digit
    (tmp_path / MNIST_TEST[1]).write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(DataIntegrityError):
        load_workload(5, 3, data_dir=tmp_path)
    with pytest.raises(DataIntegrityError):  # not taken for Fashion files either
        load_workload(5, 3, data="dense", data_dir=tmp_path)


@pytest.mark.parametrize(("hidden", "batch"), [(0, 3), (5, 0), (5, 2.5)])
def test_bad_sizes(hidden, batch):
    with pytest.raises(ValueError, match="positive integer"):
        load_workload(hidden, batch, synthetic=True)


def test_deep_relu_workload_carries_its_arch():
    w = load_workload([4, 3], 5, synthetic=True, activation="relu", weight_init="relu",
                      weight_decay=0.1)
    assert w.layers == (784, 4, 3, 10) and tuple(w.arch) == ("relu", 0.1)
    d = w.as_dict()
    assert (d["activation"], d["weight_decay"], d["weight_init"]) == ("relu", 0.1, "relu")
    assert "relu" in w.label() and "784-4-3-10" in w.label()
    assert w.net_label() == "784-4-3-10 relu (init relu), weight decay 0.1"
    assert load_workload(5, 2, synthetic=True, weight_init=0.01).weight_init == 0.01
    assert w.key != load_workload([4, 3], 5, synthetic=True, activation="relu").key


def _constant_pixels(dataset):
    found = find_test_set(dataset)
    if found is None:
        return None
    full = np.asarray(found[0], dtype=np.float64)
    return full.std(axis=0) == 0


@pytest.mark.parametrize("data", ["mnist", "fashion", "dense"])
def test_data_choices(data):
    w = load_workload(3, 4, data=data)
    assert w.data in (data, "synthetic" if data == "mnist" else f"synthetic {data}")
    assert w.as_dict()["density"] == pytest.approx(np.count_nonzero(w.x) / w.x.size)
    if data != "dense":
        assert w.x.min() >= 0 and w.density < 0.7
    elif w.data == "synthetic dense":  # N(0, 1) pixels: every input non-zero
        assert w.x.min() < 0 and w.density == 1.0
    else:
        # standardised over the whole test set: negatives, and an input is zero exactly
        # where its pixel is constant over the set (std 0). That is 116 of 784 pixels of
        # MNIST (blank in every digit) but only a few of Fashion-MNIST's, so only a
        # Fashion batch is above 90% non-zero
        source = "fashion" if w.description.startswith("fashion") else "mnist"
        constant = _constant_pixels(source)
        assert w.x.min() < 0
        np.testing.assert_array_equal(np.all(w.x == 0, axis=0), constant)
        assert w.density == pytest.approx(1 - constant.sum() / w.x.shape[1])
        assert w.density > (0.9 if source == "fashion" else 0.8)
    s = load_workload(3, 4, data=data, synthetic=True)
    assert s.data.startswith("synthetic") and data in s.description or data == "mnist"
    with pytest.raises(ValueError, match="dataset must be one of"):
        load_workload(3, 4, data="cifar")


@needs_shared
def test_dense_from_a_folder_of_mnist_files():
    """A data folder of MNIST's files is not Fashion's (same names, other checksums)."""
    w = load_workload(3, 6, data="dense", data_dir=SHARED)
    assert w.data == "dense" and w.description.startswith("mnist test images 0..5")
    constant = _constant_pixels("mnist")
    assert constant.sum() == 116  # MNIST's test digits leave the border blank
    np.testing.assert_array_equal(np.all(w.x == 0, axis=0), constant)
    assert w.density == pytest.approx(1 - 116 / 784)
