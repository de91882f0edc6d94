"""The standard workload: a seeded network (the book's 784-50-10 by default) and a batch.

Real MNIST test digits when they are present locally (a given data folder or
the cache), otherwise seeded synthetic data with MNIST's value range and
sparsity, labelled as such wherever it is reported.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fastgrad.network import MultiLayerNet, TwoLayerNet

#: Fraction of non-zero pixels in MNIST (19.3% over the test set).
MNIST_DENSITY = 0.193
#: Environment variable naming a folder of real MNIST files (tests, benchmarks).
SHARED_DATA_ENV = "FASTGRAD_SHARED_DATA"


@dataclass
class Workload:
    """A network and a batch to take gradients on."""

    net: MultiLayerNet
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


def build_net(hidden=50, seed=0, activation="sigmoid", weight_init=None, weight_decay=0.0,
              n_in=784, n_out=10):
    """The seeded network for ``hidden`` (an int or a list of widths).

    One hidden layer with no ``weight_init`` is the book's ``TwoLayerNet``
    (std 0.01, chapters 4-5); deeper nets default to the initialisation that
    matches the activation (He for ReLU, Xavier for sigmoid).
    """
    sizes = [hidden] if isinstance(hidden, (int, np.integer)) else list(hidden)
    if len(sizes) == 1 and weight_init is None and weight_decay == 0:
        return TwoLayerNet(n_in, sizes[0], n_out, seed=seed, activation=activation)
    if weight_init is None:
        weight_init = 0.01 if len(sizes) == 1 else activation
    return MultiLayerNet(n_in, sizes, n_out, activation=activation, weight_init_std=weight_init,
                         weight_decay_lambda=weight_decay, seed=seed)


def describe(net):
    """``784-100-100-10 relu (lambda 0.1)``: the architecture in one phrase."""
    text = "-".join(str(n) for n in net.sizes) + f" {net.arch.activation}"
    return text + (f", weight decay {net.arch.weight_decay:g}" if net.arch.weight_decay else "")


def standard_workload(batch=100, hidden=50, seed=0, dataset="mnist", data_dir=None,
                      synthetic=False, *, activation="sigmoid", weight_init=None,
                      weight_decay=0.0):
    """Build the seeded net and its batch.

    Parameters
    ----------
    batch : int
        Batch size.
    hidden : int or list of int
        Hidden width(s) (input 784, output 10).
    seed : int
        Seed of the weights (and of synthetic data).
    dataset : {"mnist", "fashion"}
    data_dir : path, optional
        Folder with the test files; required to exist when given.
    synthetic : bool
        Skip real data even if present.
    activation, weight_init, weight_decay
        As for :func:`build_net`.
    """
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
        raise ValueError(f"batch must be a positive integer, got {batch!r}")
    widths = [hidden] if isinstance(hidden, (int, np.integer)) else list(hidden)
    if not widths or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1
                         for v in widths):
        raise ValueError(f"hidden must be positive integers, got {hidden!r}")
    net = build_net(hidden, seed, activation, weight_init, weight_decay)
    found = None if synthetic else real_batch(batch, dataset, data_dir)
    if found is None:
        x, t = synthetic_batch(batch, seed=seed)
        return Workload(net, x, t, f"synthetic (seed {seed}, MNIST-like range and sparsity; "
                                   f"no local {dataset} test files)")
    return Workload(net, *found)
