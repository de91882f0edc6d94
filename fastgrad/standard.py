"""The standard workload: a seeded network (the book's 784-50-10 by default) and a batch.

Shared by ``fastgrad check``, ``fastgrad steps`` and ``fastgrad bench``. Real
test images when they are present locally (a given data folder, the cache or
the shared copy of MNIST), otherwise seeded synthetic data with the same value
range and sparsity, labelled as such wherever it is reported: the source of a
batch is never silent.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fastgrad.idx import DataIntegrityError
from fastgrad.network import MultiLayerNet, TwoLayerNet

#: Fraction of non-zero pixels in MNIST (19.3% over the test set).
MNIST_DENSITY = 0.193
#: Fraction of non-zero pixels in Fashion-MNIST's test set (about half).
FASHION_DENSITY = 0.5
#: Data choices of :func:`standard_workload`: MNIST, Fashion-MNIST, or the dense
#: standardised batch of :func:`dense_batch`.
DATA_CHOICES = ("mnist", "fashion", "dense")
#: Environment variable naming a folder of real MNIST files (tests, benchmarks).
SHARED_DATA_ENV = "FASTGRAD_SHARED_DATA"


@dataclass
class StandardWorkload:
    """A network and a batch to take gradients on, and where the batch came from."""

    net: MultiLayerNet
    x: np.ndarray
    t: np.ndarray
    source: str  # where the batch came from, for reports

    @property
    def real(self) -> bool:
        return not self.source.startswith("synthetic")


def synthetic_batch(batch, n_in=784, n_out=10, seed=0, density=MNIST_DENSITY):
    """Seeded stand-in for MNIST: float32 in [0, 1], ~19% non-zero, uint8 labels."""
    rng = np.random.default_rng(seed)
    mask = rng.random((batch, n_in)) < density
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


def find_test_set(dataset="mnist", data_dir=None):
    """``(x, t, where)``: the whole local test set of ``dataset``, or None when not found.

    ``data_dir`` must hold the files when given; otherwise the cache is tried,
    then (MNIST only) the shared copy of :func:`default_real_data_dir`.
    """
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
        return x, t, directory if directory is not None else "the fastgrad cache"
    return None


def _check_size(batch, x):
    if batch > len(x):
        raise ValueError(f"batch must be at most {len(x)} (the test set), got {batch}")


def real_batch(batch, dataset="mnist", data_dir=None):
    """The first ``batch`` test digits, or None when no local copy is found."""
    found = find_test_set(dataset, data_dir)
    if found is None:
        return None
    x, t, where = found
    _check_size(batch, x)
    return x[:batch], t[:batch], f"{dataset} test digits 0..{batch - 1} from {where}"


def standardise(x, full):
    """``x`` standardised per pixel by the mean and std of ``full`` (float64).

    ``(x - mean) / std`` with both taken over every image of ``full`` (the
    whole test set); a pixel constant over ``full`` has std 0 and becomes 0.
    """
    full = np.asarray(full, dtype=np.float64)
    mean, std = full.mean(axis=0), full.std(axis=0)
    x = np.asarray(x, dtype=np.float64)
    return np.divide(x - mean, std, out=np.zeros_like(x), where=std > 0)


def dense_batch(batch, data_dir=None):
    """The dense standardised batch, or None when no test set is found.

    The first ``batch`` Fashion-MNIST test images (MNIST's when Fashion is not
    found; ``data_dir`` is searched for Fashion first, then MNIST), standardised
    per pixel by :func:`standardise` over the whole 10,000-image test set:
    negatives, about 98% non-zero on Fashion-MNIST. On MNIST about 85%: its
    pixels blank in every test digit (116 of 784, the border) have std 0 and
    stay 0.

    Fashion-MNIST's files have MNIST's names, so MNIST's files in ``data_dir``
    fail Fashion's checksums: there that means "not Fashion", and MNIST's
    checksums decide.
    """
    for dataset in ("fashion", "mnist"):
        try:
            found = find_test_set(dataset, data_dir)
        except FileNotFoundError:
            found = None
        except DataIntegrityError:
            if data_dir is None or dataset != "fashion":
                raise  # the cache keeps each dataset apart: a mismatch there is damage
            found = None
        if found is None:
            continue
        x, t, where = found
        _check_size(batch, x)
        return (standardise(x[:batch], x), t[:batch],
                f"{dataset} test images 0..{batch - 1} from {where}, standardised per pixel "
                f"by the mean and std of its 10,000 test images (constant pixels: 0)")
    if data_dir is not None:
        raise FileNotFoundError(f"neither Fashion-MNIST nor MNIST test files in {data_dir}")
    return None


def synthetic_dense_batch(batch, n_in=784, n_out=10, seed=0):
    """Seeded stand-in for a standardised batch: N(0, 1) pixels (all non-zero), uint8 labels."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch, n_in)), rng.integers(0, n_out, size=batch).astype(np.uint8)


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


def net_phrase(layers, activation="sigmoid", weight_init=None, weight_decay=0.0):
    """``784-100-100-10 relu (init relu), weight decay 0.1``: a network in one phrase.

    ``weight_init`` is named only when given (None: the default of :func:`build_net`).
    """
    text = f"{'-'.join(map(str, layers))} {activation}"
    if weight_init is not None:
        text += f" (init {weight_init})"
    if weight_decay:
        text += f", weight decay {weight_decay:g}"
    return text


def describe(net):
    """``784-100-100-10 relu, weight decay 0.1``: the architecture of ``net`` in one phrase."""
    return net_phrase(net.sizes, net.arch.activation, None, net.arch.weight_decay)


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
    dataset : {"mnist", "fashion", "dense"}
        Test images of MNIST or Fashion-MNIST, or the dense standardised batch
        of :func:`dense_batch`.
    data_dir : path, optional
        Folder with the test files; required to exist when given.
    synthetic : bool
        Skip real data even if present.
    activation, weight_init, weight_decay
        As for :func:`build_net`.

    Returns
    -------
    StandardWorkload
        ``source`` says where the batch came from (starting with "synthetic"
        for the seeded stand-ins).
    """
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
        raise ValueError(f"batch must be a positive integer, got {batch!r}")
    widths = [hidden] if isinstance(hidden, (int, np.integer)) else list(hidden)
    if not widths or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1
                         for v in widths):
        raise ValueError(f"hidden must be positive integers, got {hidden!r}")
    if dataset not in DATA_CHOICES:
        raise ValueError(f"dataset must be one of {DATA_CHOICES}, got {dataset!r}")
    net = build_net(hidden, seed, activation, weight_init, weight_decay)
    if dataset == "dense":
        found = None if synthetic else dense_batch(batch, data_dir)
    else:
        found = None if synthetic else real_batch(batch, dataset, data_dir)
    if found is not None:
        return StandardWorkload(net, *found)
    if dataset == "dense":
        x, t = synthetic_dense_batch(batch, seed=seed)
        return StandardWorkload(net, x, t, f"synthetic dense (seed {seed}, N(0, 1) pixels in "
                                           "place of a standardised batch; no local "
                                           "Fashion-MNIST or MNIST test files)")
    density = FASHION_DENSITY if dataset == "fashion" else MNIST_DENSITY
    x, t = synthetic_batch(batch, seed=seed, density=density)
    return StandardWorkload(net, x, t, f"synthetic (seed {seed}, {dataset}-like range and "
                                       f"sparsity; no local {dataset} test files)")


@dataclass
class ConvWorkload:
    """A seeded convolutional net, a batch of images ``(N, 1, 28, 28)`` and their source."""

    net: object  # fastgrad.convnet.SimpleConvNet
    x: np.ndarray
    t: np.ndarray
    source: str  # where the batch came from, for reports

    @property
    def real(self) -> bool:
        return not self.source.startswith("synthetic")


def describe_conv(net):
    """``conv 30x5x5 (pad 0, stride 1) -> pool -> 100 -> 10``: a convnet in one phrase."""
    filters, channels, size, _ = net.params["W1"].shape
    hidden, classes = net.params["W3"].shape
    return (f"conv {filters}x{size}x{size} (pad {net.conv.pad}, stride {net.conv.stride}) "
            f"-> relu -> pool -> {hidden} relu -> {classes}, input "
            f"{'x'.join(map(str, net.input_dim))}")


def architecture(config):
    """The network of a training run's configuration, in words: the layer sizes of a
    fully connected net, or the convolutional net's layers."""
    if config.get("net") == "convnet":
        cp, dims = config["conv_param"], "x".join(map(str, config["input_dim"]))
        return (f"convnet {dims} -> {cp['filter_num']} filters {cp['filter_size']}x"
                f"{cp['filter_size']} (pad {cp['pad']}, stride {cp['stride']}) -> relu -> "
                f"pool -> {config['hidden_size_list'][0]} relu -> {config['output_size']}")
    sizes = [config["input_size"], *config["hidden_size_list"], config["output_size"]]
    return f"{'-'.join(map(str, sizes))} {config['activation']} net"


def standard_conv_workload(batch=100, hidden=100, conv_param=None, seed=0, dataset="mnist",
                           data_dir=None, synthetic=False):
    """Build chapter 7's seeded ``SimpleConvNet`` and its batch of images.

    Parameters
    ----------
    batch : int
        Batch size.
    hidden : int
        Width of the hidden affine layer (the book's 100 by default).
    conv_param : dict, optional
        The book's ``filter_num``, ``filter_size``, ``pad``, ``stride``
        (default 30 filters of 5x5, pad 0, stride 1).
    seed : int
        Seed of the weights (and of synthetic data).
    dataset : {"mnist", "fashion"}
        Test images of MNIST or Fashion-MNIST.
    data_dir : path, optional
        Folder with the test files; required to exist when given.
    synthetic : bool
        Skip real data even if present.

    Returns
    -------
    ConvWorkload
        ``x`` is ``(batch, 1, 28, 28)``: the first test images, or the seeded
        synthetic stand-in of :func:`synthetic_batch` reshaped; ``source`` says
        which (starting with "synthetic" for the stand-in).
    """
    from fastgrad.convnet import SimpleConvNet

    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
        raise ValueError(f"batch must be a positive integer, got {batch!r}")
    if dataset not in ("mnist", "fashion"):
        raise ValueError(f"dataset must be 'mnist' or 'fashion' for the convnet, got {dataset!r}")
    net = SimpleConvNet((1, 28, 28), conv_param, hidden, 10, seed=seed)
    found = None if synthetic else real_batch(batch, dataset, data_dir)
    if found is not None:
        x, t, source = found
    else:
        density = FASHION_DENSITY if dataset == "fashion" else MNIST_DENSITY
        x, t = synthetic_batch(batch, seed=seed, density=density)
        source = (f"synthetic (seed {seed}, {dataset}-like range and sparsity; no local "
                  f"{dataset} test files)")
    x = np.asarray(x, dtype=np.float64).reshape(len(x), 1, 28, 28)
    return ConvWorkload(net, x, np.asarray(t), source)
