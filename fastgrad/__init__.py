"""fastgrad: fast, validated numerical gradients for the book's networks."""

from fastgrad import config as _config  # noqa: F401  (sets the threading layer first)
from fastgrad.convnet import SimpleConvNet
from fastgrad.generic import jacobian, numerical_gradient
from fastgrad.gradcheck import GradcheckReport, gradcheck
from fastgrad.methods import METHODS, NUMERICAL_METHODS, compute_conv_gradient, compute_gradient
from fastgrad.network import MultiLayerNet, TwoLayerNet

__version__ = "0.1.0"

__all__ = [
    "GradcheckReport",
    "METHODS",
    "NUMERICAL_METHODS",
    "SimpleConvNet",
    "MultiLayerNet",
    "TwoLayerNet",
    "compute_conv_gradient",
    "compute_gradient",
    "gradcheck",
    "jacobian",
    "numerical_gradient",
    "step_sweep",
    "train",
]


def __getattr__(name):
    # Training pulls in the data module; import it on first use only.
    if name == "train":
        from fastgrad.training import train

        return train
    if name == "step_sweep":  # pulls in the network methods and the data module
        from fastgrad.steps import step_sweep

        return step_sweep
    raise AttributeError(f"module 'fastgrad' has no attribute {name!r}")
