"""Compare gradient methods against the NumPy reference: per-tensor reports and a verdict.

The one comparison path of ``fastgrad check``, the benchmarks and the tests.
On networks where the book's loop takes minutes, the reference runs on a seeded
sample of parameter indices per tensor (the same loop, restricted to those
entries, so the same values) and every method is compared there.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from fastgrad import inputs
from fastgrad.arch import make_arch
from fastgrad.compare import abs_error, relative_error
from fastgrad.methods import METHODS, check_method
from fastgrad.reference import backprop_gradient, net_numerical_gradient, param_names

#: float64 JIT vs reference, max abs.
DEFAULT_TOL = 1e-9
#: Reference vs the analytic gradient of the same loss, max abs: the central
#: difference's O(h^2) truncation error plus rounding. The book's backprop
#: (which drops the 1e-7 inside the log) is shown beside it for information:
#: it drifts by a relative 1e-7 / y[t], about 1e-7 abs at the book's
#: initialisation on batch 100, more on small batches or after training.
BACKPROP_TOL = 1e-7
#: Above this many parameters the default reference is sampled (the full loop
#: takes minutes there); 784-50-10 (39,760) stays exact.
FULL_REFERENCE_MAX = 50_000
#: Indices per tensor of the default sample.
DEFAULT_SAMPLE = 32
#: Rounding noise of the book's NumPy loss over ``eps |f| / h``, generous: the
#: kink test of :func:`excused_at_kinks` only sees entries already beyond tol.
RELU_NOISE_AMPLIFICATION = 100.0


@dataclass
class TensorError:
    """Difference of one gradient tensor from its expected value."""

    name: str
    max_abs: float
    max_rel: float
    worst_index: tuple
    compared: int  # entries compared (all, or the sampled ones)
    within: int  # of those, how many lie within the tolerance (or are excused)
    excused: int = 0  # beyond the tolerance at a ReLU kink or within finite-difference noise


@dataclass
class Comparison:
    """One method's gradient against an expected gradient."""

    method: str
    against: str
    tol: float
    seconds: float
    tensors: list = field(default_factory=list)
    #: entries beyond ``tol`` may be excused (ReLU: steps that cross a kink)
    excusable: bool = False

    @property
    def excused(self) -> int:
        return sum(t.excused for t in self.tensors)

    @property
    def max_abs(self) -> float:
        return max(t.max_abs for t in self.tensors)

    @property
    def compared(self) -> int:
        return sum(t.compared for t in self.tensors)

    @property
    def share_within(self) -> float:
        return sum(t.within for t in self.tensors) / max(self.compared, 1)

    @property
    def ok(self) -> bool:
        if self.excusable:
            return all(t.within == t.compared for t in self.tensors)
        return self.max_abs <= self.tol


def given_or_timed(reference, seconds, compute):
    """``(reference, seconds)``: the given reference and its given time (NaN when not
    given), or ``compute()`` timed here."""
    if reference is None:
        start = time.perf_counter()
        return compute(), time.perf_counter() - start
    return reference, float("nan") if seconds is None else float(seconds)


def sample_indices(params, x, per_tensor, seed=0):
    """Seeded flat indices per tensor for a sampled reference.

    Half of the ``W1`` picks come from rows of pixels that are non-zero
    somewhere in the batch, since the other rows have an exactly zero gradient.
    """
    rng = np.random.default_rng(seed)
    active = np.flatnonzero(np.any(np.asarray(x) != 0.0, axis=0))
    out = {}
    for name in param_names(params):
        size = params[name].size
        k = max(1, min(per_tensor, size))
        picks = rng.choice(size, size=k, replace=False)
        if name == "W1" and active.size and k > 1:
            rows = rng.choice(active, size=k - k // 2)
            cols = rng.integers(0, params[name].shape[1], rows.size)
            picks[k // 2:] = rows * params[name].shape[1] + cols
        out[name] = np.unique(picks)
    return out


def compare(grads, expected, method, against, tol, seconds=float("nan"), excused=None):
    """Per-tensor max absolute and relative error of ``grads`` vs ``expected``.

    Entries where ``expected`` is NaN were not sampled and are skipped;
    entries where ``excused[name]`` is True count as within the tolerance.
    """
    out = Comparison(method, against, tol, seconds, excusable=excused is not None)
    for name in expected:
        got = np.asarray(grads[name], dtype=np.float64)
        want = np.asarray(expected[name], dtype=np.float64)
        if got.shape != want.shape:
            raise ValueError(f"{method} returned {name} of shape {got.shape}, "
                             f"expected {want.shape}")
        sampled = ~np.isnan(want)
        diff = np.where(sampled, abs_error(got, np.where(sampled, want, 0.0)), 0.0)
        rel = np.where(sampled, relative_error(got, np.where(sampled, want, 0.0)), 0.0)
        worst = np.unravel_index(int(np.argmax(diff)), diff.shape)
        beyond = sampled & (diff > tol)
        spared = beyond & excused[name] if excused is not None else np.zeros_like(beyond)
        out.tensors.append(TensorError(name, float(diff.max()), float(rel.max()),
                                       tuple(int(i) for i in worst), int(sampled.sum()),
                                       int(np.sum(sampled & ~beyond) + spared.sum()),
                                       int(spared.sum())))
    return out


def reference_gradient(params, x, labels, h, arch, sample=None, seed=0):
    """The book's loop on every entry (``sample=None``) or on a seeded sample per tensor.

    Returns the gradient with NaN at entries not sampled.
    """
    indices = None if sample is None else sample_indices(params, x, sample, seed)
    return net_numerical_gradient(params, x, labels, h, *arch, indices=indices)


def resolve_sample(sample, params):
    """``sample`` as None (full reference) or indices per tensor; 'auto' picks by size."""
    if sample == "all":
        return None
    if sample is None or sample == "auto":
        n_params = sum(v.size for v in params.values())
        return None if n_params <= FULL_REFERENCE_MAX else DEFAULT_SAMPLE
    if isinstance(sample, bool) or not isinstance(sample, (int, np.integer)) or sample < 1:
        raise ValueError(f"sample must be 'all', 'auto' or a positive integer, got {sample!r}")
    return int(sample)


def _timed(method, params, x, labels, h, threads, arch):
    start = time.perf_counter()
    grads = METHODS[method].func(params, x, labels, h, threads, arch)
    return grads, time.perf_counter() - start


def validate(params, x, t, methods=None, tol=DEFAULT_TOL, h=1e-4, threads=None,
             backprop_tol=BACKPROP_TOL, reference=None, *, activation="sigmoid",
             weight_decay=0.0, sample="auto", seed=0, reference_seconds=None):
    """Check every numerical method against the reference, and against backprop.

    Parameters
    ----------
    params, x, t
        Network parameters and batch (validated and converted here).
    methods : sequence of str, optional
        Methods to check; default every numerical method but the reference.
    tol : float
        Allowed max abs error vs the reference.
    h : float
        Step of the central difference.
    threads : int, optional
        Numba threads.
    backprop_tol : float
        Allowed max abs error of the reference vs the analytic gradient of
        the same loss.
    reference : dict, optional
        A reference gradient already computed on the same inputs (NaN where
        not sampled).
    reference_seconds : float, optional
        How long ``reference`` took (reported with it; NaN when not given).
    activation, weight_decay
        The network's hidden activation and L2 strength.
    sample : 'auto', 'all' or int
        Reference on every entry ('all'), on this many seeded indices per
        tensor, or 'auto' (every entry up to :data:`FULL_REFERENCE_MAX`
        parameters, else :data:`DEFAULT_SAMPLE` per tensor).
    seed : int
        Seed of the sample.

    Returns
    -------
    list of Comparison
        One per method vs the reference, then the reference vs the analytic
        gradient, then (informational, infinite tolerance) the reference vs
        the book's backprop.
    """
    h = inputs.check_h(h, inputs.NET_H_RANGE)
    threads = inputs.check_threads(threads)
    arch = make_arch(activation, weight_decay)
    for name, value in (("tol", tol), ("backprop_tol", backprop_tol)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    params, x, labels = inputs.check_batch(params, x, t)
    sample = resolve_sample(sample, params)
    if methods is None:
        methods = [m for m, e in METHODS.items() if e.numerical and m != "reference"]
    methods = [check_method(m).name for m in methods]
    reference, ref_seconds = given_or_timed(
        reference, reference_seconds,
        lambda: reference_gradient(params, x, labels, h, arch, sample, seed))
    reports = []
    for method in methods:
        if method in ("backprop", "reference"):  # the witness and the analytic check
            continue
        grads, seconds = _timed(method, params, x, labels, h, threads, arch)
        reports.append(compare(grads, reference, method, "reference", tol, seconds))
    exact = _masked(backprop_gradient(params, x, labels, True, *arch), reference)
    excused = (excused_at_kinks(params, x, labels, h, arch, reference, exact, backprop_tol)
               if arch.activation == "relu" else None)
    reports.append(compare(reference, exact, "reference", "analytic", backprop_tol,
                           ref_seconds, excused=excused))
    book, bp_seconds = _timed("backprop", params, x, labels, h, threads, arch)
    reports.append(compare(reference, _masked(book, reference), "reference", "backprop",
                           float("inf"), bp_seconds))
    return reports


def _masked(grads, like):
    """``grads`` with NaN wherever ``like`` is NaN (so both sides compare the same entries)."""
    return {k: np.where(np.isnan(like[k]), np.nan, grads[k]) for k in like}


def excused_at_kinks(params, x, labels, h, arch, reference, exact, tol, loss_fn=None):
    """Per tensor, the entries whose central difference may differ from the derivative.

    A step of +-h that moves a ReLU unit across zero (a kink) makes the central
    difference differ from the derivative by up to O(1). Each entry beyond
    ``tol`` is re-evaluated on the stencil of :func:`fastgrad.gradcheck.assess`
    (the book's loss at ``+-h`` and ``+-h/2``): it is excused when its one-sided
    differences show a kink, or when the difference is within the finite
    difference's estimated error; an entry that is simply wrong is not.
    ``loss_fn(params)`` is the loss evaluated (default: the fully connected
    net's book loss on ``x``, ``labels`` and ``arch``).
    """
    from fastgrad.gradcheck import KINK, NOISE, OFFSETS, assess
    from fastgrad.reference import loss

    if loss_fn is None:
        def loss_fn(p):
            return loss(p, x, labels, *arch)
    work = {k: np.array(v, dtype=np.float64, copy=True) for k, v in params.items()}
    center = loss_fn(work)
    out = {}
    for name in reference:
        diff = np.abs(np.nan_to_num(reference[name] - exact[name], nan=0.0))
        suspects = np.flatnonzero(diff > tol)
        flat = work[name].reshape(-1)
        values = np.empty((suspects.size, len(OFFSETS)))
        for q, p in enumerate(suspects):
            original = flat[p]
            try:
                for j, c in enumerate(OFFSETS):
                    flat[p] = original + c * h
                    values[q, j] = loss_fn(work)
            finally:
                flat[p] = original
        mask = np.zeros(reference[name].shape, dtype=bool)
        if suspects.size:
            status = assess(exact[name].reshape(-1)[suspects], values, center, h,
                            float(np.finfo(np.float64).eps),
                            amplification=RELU_NOISE_AMPLIFICATION).status
            mask.reshape(-1)[suspects] = (status == KINK) | (status == NOISE)
        out[name] = mask
    return out
