"""What a fully connected network computes besides its parameters: activation and weight decay.

The depth and the widths are read off the parameters (``W1, b1, ..., W{L+1},
b{L+1}``); :class:`Arch` carries the rest, so one registry entry serves every
network of the book's chapters 4-6.
"""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple

#: Hidden-layer activations, in the order of their kernel codes.
ACTIVATIONS = ("sigmoid", "relu")


class Arch(NamedTuple):
    """Hidden activation and L2 weight-decay strength of a network.

    The loss is ``mean(-log(y[t] + 1e-7)) + sum_l 0.5 * weight_decay * sum(W_l ** 2)``
    (weights only, not biases), as in the book's ``MultiLayerNet``.
    """

    activation: str = "sigmoid"
    weight_decay: float = 0.0

    @property
    def code(self) -> int:
        """Integer code of the activation used by the kernels (0 sigmoid, 1 relu)."""
        return ACTIVATIONS.index(self.activation)


#: The chapter-4 TwoLayerNet: sigmoid, no weight decay.
SIGMOID = Arch("sigmoid", 0.0)


def check_activation(activation) -> str:
    """Return ``activation`` if it names a known activation."""
    if not isinstance(activation, str):
        raise TypeError(f"activation must be a string, one of {ACTIVATIONS}, "
                        f"got {type(activation).__name__}")
    name = activation.lower()
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    return name


def check_weight_decay(weight_decay, name="weight_decay_lambda") -> float:
    """Return ``weight_decay`` as a finite float >= 0."""
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(weight_decay).__name__}")
    value = float(weight_decay)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be finite and >= 0, got {weight_decay!r}")
    return value


def make_arch(activation="sigmoid", weight_decay=0.0) -> Arch:
    """Validated :class:`Arch`."""
    return Arch(check_activation(activation), check_weight_decay(weight_decay, "weight_decay"))


def check_arch(arch) -> Arch:
    """Return ``arch`` (an :class:`Arch` or ``(activation, weight_decay)``), validated."""
    if isinstance(arch, Arch):
        return make_arch(*arch)
    if isinstance(arch, tuple) and len(arch) == 2:
        return make_arch(*arch)
    raise TypeError(f"arch must be an Arch(activation, weight_decay), got {type(arch).__name__}")
