"""The problem every method is timed on: a seeded network, a batch and a step, validated.

:func:`load_workload` builds the standard workload (:mod:`fastgrad.standard`:
the book's 784-50-10 sigmoid net, seed 0, on the first test images, or seeded
synthetic ones when no local copy is found) at any depth, activation,
initialisation, weight decay and data choice, and converts its inputs once
with :func:`fastgrad.inputs.check_batch`, so no timing includes that
conversion. A :class:`Workload` always says which data it ran on (real or
synthetic), and its :attr:`~Workload.key` tells workloads apart for caching.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fastgrad import inputs, reference
from fastgrad.arch import SIGMOID, Arch
from fastgrad.standard import net_phrase, standard_workload


@dataclass(frozen=True, eq=False)
class Workload:
    """A validated ``(params, x, labels, h, arch)`` problem and where its data came from."""

    params: dict = field(repr=False)
    x: np.ndarray = field(repr=False)
    labels: np.ndarray = field(repr=False)
    h: float
    #: the data choice when real ("mnist", "fashion", "dense"), else "synthetic" (MNIST-like)
    #: or "synthetic fashion" / "synthetic dense": reports compare it
    data: str
    description: str
    seed: int
    arch: Arch = SIGMOID
    weight_init: float | str | None = None  # as given; None: the default of build_net

    @property
    def layers(self):
        names = reference.param_names(self.params)
        return (self.params["W1"].shape[0],
                *(self.params[n].shape[1] for n in names if n.startswith("W")))

    @property
    def batch(self):
        return self.x.shape[0]

    @property
    def n_params(self):
        return sum(a.size for a in self.params.values())

    @property
    def density(self):
        """Share of non-zero inputs (what picks the sparse or dense first layer)."""
        return float(np.count_nonzero(self.x)) / self.x.size

    @property
    def key(self):
        """Hashable identity, for caching reference gradients."""
        return (self.layers, self.batch, self.data, self.seed, self.h, tuple(self.arch),
                self.weight_init)

    def net_label(self):
        """``784-100-100-10 relu (init relu)``: the architecture in one phrase."""
        return net_phrase(self.layers, self.arch.activation, self.weight_init,
                          self.arch.weight_decay)

    def label(self):
        """Short text such as ``784-50-10 sigmoid, batch 100``."""
        return f"{self.net_label()}, batch {self.batch}"

    #: "mlp" (chapters 4-6) or "convnet" (chapter 7's SimpleConvNet)
    net = "mlp"

    def gradient_func(self, entry):
        """The registry ``entry``'s function for this net, called ``(params, x, labels, h,
        threads, arch, timer=...)``."""
        return entry.func

    def as_dict(self):
        return {"net": self.net, "layers": list(self.layers), "batch": self.batch,
                "n_params": self.n_params,
                "h": self.h, "seed": self.seed, "data": self.data,
                "activation": self.arch.activation, "weight_decay": self.arch.weight_decay,
                "weight_init": self.weight_init, "density": self.density,
                "description": self.description}


def load_workload(hidden=50, batch=100, *, data="mnist", data_dir=None, synthetic=False,
                  seed=0, h=1e-4, activation="sigmoid", weight_init=None, weight_decay=0.0):
    """The benchmark problem: :func:`fastgrad.standard.standard_workload`, validated.

    Parameters
    ----------
    hidden : int or list of int
        Hidden width(s).
    batch : int
        Number of samples (the first test images when real).
    data : {"mnist", "fashion", "dense"}
        MNIST or Fashion-MNIST test images, or the dense standardised batch
        (:func:`fastgrad.standard.dense_batch`).
    data_dir : path, optional
        Folder with the test files; if given they must be there.
    synthetic : bool
        Use seeded synthetic data even if the files are available.
    seed : int
        Seed of the weights (and of synthetic data).
    h : float
        Central-difference step.
    activation, weight_init, weight_decay
        As for :func:`fastgrad.standard.build_net`.

    Returns
    -------
    Workload
        Inputs already converted by :func:`fastgrad.inputs.check_batch`, so
        timings never include that conversion.
    """
    if weight_init is not None and not isinstance(weight_init, str):
        weight_init = float(weight_init)
    work = standard_workload(batch, hidden, seed, data, data_dir=data_dir, synthetic=synthetic,
                             activation=activation, weight_init=weight_init,
                             weight_decay=weight_decay)
    params, x, labels = inputs.check_batch(work.net.params, work.x, work.t)
    kind = data if work.real else "synthetic" if data == "mnist" else f"synthetic {data}"
    return Workload(params, x, labels, inputs.check_h(h), kind, work.source, seed,
                    work.net.arch, weight_init)


@dataclass(frozen=True, eq=False)
class ConvWorkload(Workload):
    """Chapter 7's SimpleConvNet problem: ``arch`` is the ReLU of its upper layers and
    ``conv`` its :class:`fastgrad.convarch.ConvArch`."""

    conv: object = None
    net = "convnet"

    @property
    def layers(self):
        filters, channels, size, _ = self.params["W1"].shape
        return (f"{channels}x{self.x.shape[2]}x{self.x.shape[3]}",
                f"conv{filters}x{size}x{size}p{self.conv.pad}s{self.conv.stride}",
                self.params["W3"].shape[0], self.params["W3"].shape[1])

    def gradient_func(self, entry):
        conv = self.conv

        def call(params, x, labels, h, threads, _arch, timer=None):
            kw = {} if timer is None else {"timer": timer}
            return entry.conv_func(params, x, labels, h, threads, conv, **kw)

        return call

    def net_label(self):
        return "-".join(map(str, self.layers)) + " relu (SimpleConvNet)"

    @property
    def key(self):
        return ("convnet", *super().key)


def load_conv_workload(hidden=100, batch=100, conv_param=None, *, data="mnist", data_dir=None,
                       synthetic=False, seed=0, h=1e-4):
    """Chapter 7's benchmark problem: :func:`fastgrad.standard.standard_conv_workload`,
    validated by :func:`fastgrad.convarch.check_conv_batch` once, outside every timing."""
    from fastgrad.convarch import check_conv_batch
    from fastgrad.standard import standard_conv_workload

    work = standard_conv_workload(batch, hidden, conv_param, seed, data, data_dir,
                                  synthetic=synthetic)
    params, x, labels, _ = check_conv_batch(work.net.params, work.x, work.t, work.net.conv)
    kind = data if work.real else "synthetic" if data == "mnist" else f"synthetic {data}"
    return ConvWorkload(params, x, labels, inputs.check_h(h), kind, work.source, seed,
                        Arch("relu", 0.0), 0.01, conv=work.net.conv)
