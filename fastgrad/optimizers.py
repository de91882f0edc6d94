"""The book's optimizers (``common/optimizer.py``) as pure update rules with saved state.

Each optimizer holds only its hyper-parameters. Its state (the book's ``v``,
``h``, ``m`` arrays per parameter, and the update count ``iter``) lives in an
:class:`OptimizerState` that :meth:`Optimizer.update` never modifies: it
returns new parameters and a new state, so a training loop can commit both at
once and a checkpoint can save and restore them. The arithmetic follows the
book's operations in the book's order, so every update is bitwise the book's:
each rule is written twice, as NumPy expressions (``_step``, the witness) and
as a compiled kernel (:mod:`fastgrad.kernels.update`, what ``update`` runs by
default), and the tests hold both to the book bitwise.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from fastgrad.kernels import update as update_kernels

__all__ = ["OPTIMIZERS", "Adam", "AdaGrad", "Momentum", "Nesterov", "Optimizer",
           "OptimizerState", "RMSprop", "SGD", "make_optimizer"]

EPS = update_kernels.EPS  # the book's guard in every adaptive denominator


@dataclass(frozen=True)
class OptimizerState:
    """What an optimizer carries between steps.

    ``slots[slot][name]`` is the float64 array of ``slot`` (e.g. ``'v'``) for
    parameter ``name``; ``iter`` counts the updates made so far.
    """

    iter: int = 0
    slots: dict = field(default_factory=dict)


def _hyper(name, value, *, low=0.0, high=None, open_low=True):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    too_low = value <= low if open_low else value < low
    if not math.isfinite(value) or too_low or (high is not None and value >= high):
        what = (f"in [{low:g}, {high:g})" if high is not None
                else "positive and finite")
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return value


def check_lr(value):
    """Return the learning rate ``value`` as a positive finite float."""
    return _hyper("lr", value)


def _unit(name):
    return lambda value: _hyper(name, value, high=1.0, open_low=False)


class Optimizer:
    """Base class: hyper-parameters, state initialisation and the update contract."""

    name: str = ""
    #: the book's defaults, also the order of :attr:`hyper`
    defaults: dict = MappingProxyType({})
    #: per-parameter state arrays, by slot name
    slot_names: tuple = ()
    _checks: dict = MappingProxyType({})

    def __init__(self, **hyper):
        unknown = sorted(set(hyper) - set(self.defaults))
        if unknown:
            raise ValueError(f"{self.name} takes {', '.join(self.defaults)}, "
                             f"not {', '.join(unknown)}")
        values = {**self.defaults, **{k: v for k, v in hyper.items() if v is not None}}
        self._hyper = {k: self._checks[k](values[k]) for k in self.defaults}
        for key, value in self._hyper.items():
            setattr(self, key, value)

    @property
    def hyper(self) -> dict:
        """The hyper-parameters, e.g. ``{'lr': 0.01, 'momentum': 0.9}``."""
        return dict(self._hyper)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._hyper.items())
        return f"{type(self).__name__}({args})"

    def init_state(self, params) -> OptimizerState:
        """Zero state for ``params`` (the book creates the same zeros on the first update)."""
        return OptimizerState(0, {slot: {k: np.zeros_like(v, dtype=np.float64)
                                         for k, v in params.items()}
                                  for slot in self.slot_names})

    def update(self, params, grads, state: OptimizerState, *, compiled=True):
        """One step: ``(new_params, new_state)``; ``params``, ``grads``, ``state`` untouched.

        ``compiled`` runs the rule's Numba kernel (:mod:`fastgrad.kernels.update`,
        one pass per array), else the NumPy expressions: bitwise the same.
        """
        return self.update_checked(params, grads, state, compiled=compiled)[:2]

    def update_checked(self, params, grads, state: OptimizerState, *, compiled=True):
        """:meth:`update` and whether every new parameter and state value is finite."""
        new_params, new_slots = {}, {slot: {} for slot in self.slot_names}
        count = state.iter + 1
        scalars = self._scalars(count)
        finite = True
        for key in params:
            slots = {slot: state.slots[slot][key] for slot in self.slot_names}
            if compiled:
                new_params[key], moved, bad = self._compiled_step(params[key], grads[key],
                                                                  slots, *scalars)
                finite = finite and not bad
            else:
                new_params[key], moved = self._step(params[key], grads[key], slots, *scalars)
            for slot, value in moved.items():
                new_slots[slot][key] = value
        if not compiled:
            finite = all(np.isfinite(v).all() for d in (new_params, *new_slots.values())
                         for v in d.values())
        return new_params, OptimizerState(count, new_slots), finite

    def _compiled_step(self, p, g, slots, *scalars):
        """``_step`` by the kernel: ``(new p, new slots, count of NaN/Inf written)``."""
        flat = [np.ascontiguousarray(a, dtype=np.float64).reshape(-1)
                for a in (p, g, *(slots[name] for name in self.slot_names))]
        out = [np.empty(p.shape) for _ in range(1 + len(self.slot_names))]
        bad = self._kernel(*flat, *self._kernel_scalars(*scalars), *(a.reshape(-1) for a in out))
        return out[0], dict(zip(self.slot_names, out[1:], strict=True)), bad

    def _scalars(self, count):
        return ()

    def _step(self, p, g, slots, *scalars):  # pragma: no cover - abstract
        raise NotImplementedError

    def _kernel_scalars(self, *scalars):
        """The Python floats the kernel takes, computed as the NumPy rule computes them."""
        return (self.lr,)


class SGD(Optimizer):
    """``p -= lr * g``."""

    name, defaults = "sgd", MappingProxyType({"lr": 0.01})
    _checks = MappingProxyType({"lr": check_lr})

    _kernel = staticmethod(update_kernels.sgd)

    def _step(self, p, g, slots):
        return p - self.lr * g, {}


class Momentum(Optimizer):
    """``v = momentum * v - lr * g; p += v``."""

    name, defaults = "momentum", MappingProxyType({"lr": 0.01, "momentum": 0.9})
    slot_names = ("v",)
    _checks = MappingProxyType({"lr": check_lr, "momentum": _unit("momentum")})

    _kernel = staticmethod(update_kernels.momentum)

    def _step(self, p, g, slots):
        v = self.momentum * slots["v"] - self.lr * g
        return p + v, {"v": v}

    def _kernel_scalars(self):
        return self.momentum, self.lr


class Nesterov(Optimizer):
    """``v *= m; v -= lr * g; p += m * m * v; p -= (1 + m) * lr * g``."""

    name, defaults = "nesterov", MappingProxyType({"lr": 0.01, "momentum": 0.9})
    slot_names = ("v",)
    _checks = MappingProxyType({"lr": check_lr, "momentum": _unit("momentum")})

    def _step(self, p, g, slots):
        m = self.momentum
        v = slots["v"] * m
        v = v - self.lr * g
        p = p + m * m * v
        return p - (1 + m) * self.lr * g, {"v": v}

    _kernel = staticmethod(update_kernels.nesterov)

    def _kernel_scalars(self):
        m = self.momentum
        return m, self.lr, m * m, (1 + m) * self.lr


class AdaGrad(Optimizer):
    """``h += g * g; p -= lr * g / (sqrt(h) + 1e-7)``."""

    name, defaults = "adagrad", MappingProxyType({"lr": 0.01})
    slot_names = ("h",)
    _checks = MappingProxyType({"lr": check_lr})

    _kernel = staticmethod(update_kernels.adagrad)

    def _step(self, p, g, slots):
        h = slots["h"] + g * g
        return p - self.lr * g / (np.sqrt(h) + EPS), {"h": h}


class RMSprop(Optimizer):
    """``h *= d; h += (1 - d) * g * g; p -= lr * g / (sqrt(h) + 1e-7)``."""

    name, defaults = "rmsprop", MappingProxyType({"lr": 0.01, "decay_rate": 0.99})
    slot_names = ("h",)
    _checks = MappingProxyType({"lr": check_lr, "decay_rate": _unit("decay_rate")})

    def _step(self, p, g, slots):
        h = slots["h"] * self.decay_rate
        h = h + (1 - self.decay_rate) * g * g
        return p - self.lr * g / (np.sqrt(h) + EPS), {"h": h}

    _kernel = staticmethod(update_kernels.rmsprop)

    def _kernel_scalars(self):
        return self.decay_rate, 1 - self.decay_rate, self.lr


class Adam(Optimizer):
    """The book's Adam: bias correction folded into ``lr_t``, ``m``/``v`` moved toward g, g²."""

    name = "adam"
    defaults = MappingProxyType({"lr": 0.001, "beta1": 0.9, "beta2": 0.999})
    slot_names = ("m", "v")
    _checks = MappingProxyType({"lr": check_lr, "beta1": _unit("beta1"), "beta2": _unit("beta2")})

    def _scalars(self, count):
        # as the book: Python floats, np.sqrt of the bias terms
        return (self.lr * np.sqrt(1.0 - self.beta2 ** count) / (1.0 - self.beta1 ** count),)

    def _step(self, p, g, slots, lr_t):
        m = slots["m"] + (1 - self.beta1) * (g - slots["m"])
        v = slots["v"] + (1 - self.beta2) * (g ** 2 - slots["v"])
        return p - lr_t * m / (np.sqrt(v) + EPS), {"m": m, "v": v}

    _kernel = staticmethod(update_kernels.adam)

    def _kernel_scalars(self, lr_t):
        return 1 - self.beta1, 1 - self.beta2, lr_t


#: Optimizers by name, as ``fastgrad train --optimizer`` spells them.
OPTIMIZERS = MappingProxyType({cls.name: cls for cls in (SGD, Momentum, Nesterov, AdaGrad,
                                                          RMSprop, Adam)})


def check_name(name) -> str:
    """Return ``name`` (lower case) if it names an optimizer."""
    if not isinstance(name, str):
        raise TypeError(f"optimizer must be a string, one of {tuple(OPTIMIZERS)}, "
                        f"got {type(name).__name__}")
    if name.lower() not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}: expected one of {tuple(OPTIMIZERS)}")
    return name.lower()


def make_optimizer(name, **hyper) -> Optimizer:
    """The optimizer ``name`` with the book's defaults for every hyper-parameter not given."""
    return OPTIMIZERS[check_name(name)](**hyper)
