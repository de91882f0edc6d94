"""The standard workload: a seeded 784-50-10 net and a batch of digits.

Real MNIST test digits when they are present locally (a given data folder or
the cache), otherwise seeded synthetic data with MNIST's value range and
sparsity, labelled as such wherever it is reported.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fastgrad.network import TwoLayerNet

#: Fraction of non-zero pixels in MNIST (19.3% over the test set).
MNIST_DENSITY = 0.193
#: Environment variable naming a folder of real MNIST files (tests, benchmarks).
SHARED_DATA_ENV = "FASTGRAD_SHARED_DATA"


@dataclass
class Workload:
    """A network and a batch to take gradients on."""

    net: TwoLayerNet
    x: np.ndarray
    t: np.ndarray
    source: str  # where the batch came from, for reports

    @property
    def real(self) -> bool:
        return not self.source.startswith("synthetic")


def synthetic_batch(batch, n_in=784, n_out=10, seed=0):
    """Seeded stand-in for MNIST: float32 in [0, 1], ~19% non-zero, uint8 labels."""
    rng = np.random.default_rng(seed)
    mask = rng.random((batch, n_in)) < MNIST_DENSITY
    x = (rng.integers(1, 256, size=(batch, n_in)) * mask).astype(np.float32) / np.float32(255)
    return x, rng.integers(0, n_out, size=batch).astype(np.uint8)


def default_real_data_dir():
    """A folder of real MNIST files known to this checkout, or None.

    ``$FASTGRAD_SHARED_DATA``, else ``../shared/data/mnist`` beside the repository.
    """
    env = os.environ.get(SHARED_DATA_ENV)
    if env:
        return Path(env)
    candidate = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
    return candidate if candidate.is_dir() else None


def real_batch(batch, dataset="mnist", data_dir=None):
    """The first ``batch`` test digits, or None when no local copy is found."""
    from fastgrad.data import load_test_set

    if data_dir is not None:
        dirs = [data_dir]
    else:  # the cache first, then a shared copy of MNIST's test files
        shared = default_real_data_dir() if dataset == "mnist" else None
        dirs = [None] + ([shared] if shared is not None else [])
    for directory in dirs:
        try:
            x, t = load_test_set(dataset, directory)
        except FileNotFoundError:
            if data_dir is not None:
                raise
            continue
        if batch > len(x):
            raise ValueError(f"batch must be at most {len(x)} (the test set), got {batch}")
        where = directory if directory is not None else "the fastgrad cache"
        return x[:batch], t[:batch], f"{dataset} test digits 0..{batch - 1} from {where}"
    return None


def standard_workload(batch=100, hidden=50, seed=0, dataset="mnist", data_dir=None,
                      synthetic=False):
    """Build the seeded net and its batch.

    Parameters
    ----------
    batch, hidden : int
        Batch size and hidden width (input 784, output 10).
    seed : int
        Seed of the weights (and of synthetic data).
    dataset : {"mnist", "fashion"}
    data_dir : path, optional
        Folder with the test files; required to exist when given.
    synthetic : bool
        Skip real data even if present.
    """
    for name, value in (("batch", batch), ("hidden", hidden)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    net = TwoLayerNet(784, hidden, 10, seed=seed)
    found = None if synthetic else real_batch(batch, dataset, data_dir)
    if found is None:
        x, t = synthetic_batch(batch, seed=seed)
        return Workload(net, x, t, f"synthetic (seed {seed}, MNIST-like range and sparsity; "
                                   f"no local {dataset} test files)")
    return Workload(net, *found)
