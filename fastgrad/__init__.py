"""fastgrad: fast, validated numerical gradients for the book's TwoLayerNet."""

from fastgrad import config as _config  # noqa: F401  (sets the threading layer first)
from fastgrad.generic import numerical_gradient
from fastgrad.methods import METHODS, NUMERICAL_METHODS, compute_gradient
from fastgrad.network import MultiLayerNet, TwoLayerNet

__version__ = "0.1.0"

__all__ = [
    "METHODS",
    "NUMERICAL_METHODS",
    "MultiLayerNet",
    "TwoLayerNet",
    "compute_gradient",
    "numerical_gradient",
    "train",
]


def __getattr__(name):
    # Training pulls in the data module; import it on first use only.
    if name == "train":
        from fastgrad.training import train

        return train
    raise AttributeError(f"module 'fastgrad' has no attribute {name!r}")
