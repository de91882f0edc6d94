"""Compare the convolutional net's gradient methods against its NumPy reference.

The convnet sibling of :mod:`fastgrad.validate`, with the same per-tensor
reports (:class:`fastgrad.validate.Comparison`). The book's loop costs two
full forward passes per parameter (hours on the book's 433,890), so by
default it runs on every convolution parameter (``W1``, ``b1``: 780 on the
book's net, where the compiled methods do their own work) and a seeded sample
of the others; every method is compared on those entries.

``jit`` computes every parameter with a full forward pass and cannot be
restricted to a sample: it runs only on nets of at most
:data:`JIT_MAX_PARAMS` parameters (:func:`jit_fits`).
"""

from __future__ import annotations

import time

import numpy as np

from fastgrad import inputs, reference_conv
from fastgrad.arch import Arch
from fastgrad.convarch import check_conv_batch, make_conv_arch
from fastgrad.methods import METHODS, check_method
from fastgrad.validate import (
    BACKPROP_TOL,
    DEFAULT_SAMPLE,
    DEFAULT_TOL,
    compare,
    excused_at_kinks,
    given_or_timed,
)

#: The convolution's own parameters, always compared in full by default.
CONV_TENSORS = ("W1", "b1")
#: Largest net ``jit`` runs on: its full forward pass per parameter takes
#: hours on the book's net.
JIT_MAX_PARAMS = 20_000
#: The kink test of :func:`fastgrad.validate.excused_at_kinks` takes an activation.
_RELU = Arch("relu", 0.0)


def jit_fits(params):
    """Whether ``jit`` may run on a net with ``params`` (at most :data:`JIT_MAX_PARAMS`)."""
    return sum(np.size(v) for v in params.values()) <= JIT_MAX_PARAMS


def conv_sample_indices(params, per_tensor, seed=0):
    """Flat indices per tensor: every ``W1`` and ``b1`` entry, ``per_tensor`` seeded of the rest.

    ``per_tensor=None`` samples nothing (every entry of every tensor).
    """
    if per_tensor is None:
        return None
    rng = np.random.default_rng(seed)
    out = {}
    for name in reference_conv.CONV_PARAM_NAMES:
        size = np.size(params[name])
        if name in CONV_TENSORS:
            out[name] = np.arange(size)
        else:
            out[name] = np.unique(rng.choice(size, size=min(per_tensor, size), replace=False))
    return out


def resolve_conv_sample(sample):
    """``sample`` as None (every entry) or the entries per non-convolution tensor.

    'all' is None; 'auto' (or None) is :data:`fastgrad.validate.DEFAULT_SAMPLE`.
    """
    if sample == "all":
        return None
    if sample is None or sample == "auto":
        return DEFAULT_SAMPLE
    if isinstance(sample, bool) or not isinstance(sample, (int, np.integer)) or sample < 1:
        raise ValueError(f"sample must be 'all', 'auto' or a positive integer, got {sample!r}")
    return int(sample)


def conv_reference_gradient(params, x, labels, h, conv, sample=None, seed=0):
    """The book's loop on every entry (``sample=None``) or on :func:`conv_sample_indices`.

    Returns the gradient with NaN at entries not sampled.
    """
    indices = conv_sample_indices(params, sample, seed)
    return reference_conv.numerical_gradient(params, x, labels, h, conv, indices=indices)


def describe_sample(compared, n_params, sample):
    """``the book's loop on 908 of 433,890 parameters: ...``: what a check compared."""
    if sample is None or compared == n_params:
        return f"the book's loop on all {n_params:,} parameters"
    return (f"the book's loop on {compared:,} of {n_params:,} parameters: every conv "
            f"parameter and {sample} per other tensor (seeded; --sample all for every one, "
            f"hours on the book's net)")


def _masked(grads, like):
    return {k: np.where(np.isnan(like[k]), np.nan, grads[k]) for k in like}


def validate_conv(params, x, t, methods=None, tol=DEFAULT_TOL, h=1e-4, threads=None,
                  backprop_tol=BACKPROP_TOL, *, stride=1, pad=0, sample="auto", seed=0,
                  reference=None, reference_seconds=None):
    """Check the convnet's numerical methods against the reference, and against backprop.

    Parameters
    ----------
    params, x, t
        ``W1, b1, W2, b2, W3, b3``, a batch ``(N, C, H, W)`` and its labels
        (validated and converted here).
    methods : sequence of str, optional
        Compiled methods to check; default every compiled numerical method,
        ``jit`` only when :func:`jit_fits`. Naming ``jit`` on a bigger net is
        a ValueError.
    tol : float
        Allowed max abs error vs the reference.
    h : float
        Step of the central difference.
    threads : int, optional
        Numba threads.
    backprop_tol : float
        Allowed max abs error of the reference vs the analytic gradient of the
        same loss; entries beyond it are excused where the step crosses a ReLU
        or max-pool kink (:func:`fastgrad.validate.excused_at_kinks`).
    stride, pad : int
        The convolution's stride and zero padding.
    sample : 'auto', 'all' or int
        Reference on every entry ('all'), or on every convolution entry and
        this many seeded entries of each other tensor ('auto':
        :data:`fastgrad.validate.DEFAULT_SAMPLE`).
    seed : int
        Seed of the sample.
    reference : dict, optional
        A reference gradient already computed on the same inputs (NaN where
        not sampled), e.g. on a Dask cluster
        (:func:`fastgrad.distributed.conv_reference_gradient`).
    reference_seconds : float, optional
        How long ``reference`` took (reported with it; NaN when not given).

    Returns
    -------
    reports : list of Comparison
        One per method vs the reference, the reference vs the analytic
        gradient, then (informational, infinite tolerance) the reference vs
        the book's backprop.
    skipped : dict
        ``{method: why}`` for the default methods not run.
    """
    h = inputs.check_h(h, inputs.NET_H_RANGE)
    threads = inputs.check_threads(threads)
    for name, value in (("tol", tol), ("backprop_tol", backprop_tol)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    conv = make_conv_arch(stride, pad)
    params, x, labels, _ = check_conv_batch(params, x, t, conv)
    sample = resolve_conv_sample(sample)
    n_params = sum(v.size for v in params.values())
    skipped = {}
    if methods is None:
        methods = [m for m, e in METHODS.items() if e.numerical and e.compiled]
        if not jit_fits(params):
            methods.remove("jit")
            skipped["jit"] = (f"a full forward pass per parameter on {n_params:,} parameters "
                              f"takes hours; it runs on nets of at most {JIT_MAX_PARAMS:,}")
    methods = [check_method(m).name for m in methods]
    if "jit" in methods and not jit_fits(params):
        raise ValueError(f"methods: jit runs a full forward pass for each of the {n_params:,} "
                         f"parameters (hours) and cannot be sampled; it runs on nets of at "
                         f"most {JIT_MAX_PARAMS:,} parameters (e.g. --filters 4 --hidden 10)")
    reference, ref_seconds = given_or_timed(
        reference, reference_seconds,
        lambda: conv_reference_gradient(params, x, labels, h, conv, sample, seed))
    reports = []
    for method in methods:
        if method in ("backprop", "reference"):
            continue
        start = time.perf_counter()
        grads = METHODS[method].conv_func(params, x, labels, h, threads, conv)
        reports.append(compare(grads, reference, method, "reference", tol,
                               time.perf_counter() - start))
    exact = _masked(reference_conv.backprop_gradient(params, x, labels, conv, exact=True),
                    reference)
    excused = excused_at_kinks(params, x, labels, h, _RELU, reference, exact, backprop_tol,
                               loss_fn=lambda p: reference_conv.loss(p, x, labels, conv))
    reports.append(compare(reference, exact, "reference", "analytic", backprop_tol,
                           ref_seconds, excused=excused))
    start = time.perf_counter()
    book = METHODS["backprop"].conv_func(params, x, labels, h, threads, conv)
    reports.append(compare(reference, _masked(book, reference), "reference", "backprop",
                           float("inf"), time.perf_counter() - start))
    return reports, skipped
