"""``gradcheck(f, x, grad)``: check an analytic gradient (or Jacobian) against finite differences.

Two modes. *Full*: every element of the gradient (every entry of the
Jacobian for an array-valued ``f``) against its central difference.
*Directional* (``directions=N``): ``N`` seeded random unit directions ``v``
(and, for an array-valued ``f``, random unit weights ``u`` of its outputs),
comparing ``u . J v`` with the central difference of ``u . f`` along ``v``:
a handful of evaluations of ``f`` each, whatever the size of ``x``. The
directions are random signs scaled to unit length, ``v_i = +-1/sqrt(n)``: a
gradient wrong in one element by ``d`` moves ``v . grad`` by ``|d|/sqrt(n)``
in every direction, and any set of errors is invisible to one direction with
probability at most 1/2, so to all ``N`` with probability at most ``2**-N``.
When a direction fails, a bisection over blocks of coordinates (the same
direction restricted to each half, rescaled to unit length) names the
elements responsible, as the full mode does. Both modes run compiled and in
parallel for a Numba ``f`` (:mod:`fastgrad.kernels.stencil`), with results
bitwise the same for any thread count and the same as the NumPy path's.

**No tolerance to tune.** Each compared value ``D(h)`` comes with an estimate
of its own error (:func:`assess`), from the same evaluations:

- truncation, by Richardson: ``D(h) - D(h/2)`` is about 3/4 of ``D(h)``'s
  truncation error, since that error is ``c h^2``;
- rounding, about ``eps |f| / h`` for the ``eps`` of the data (float32 inputs
  or outputs: float32's), scaled up where the stencil's own residual shows
  ``f`` to be noisier than that (a sum of millions of terms).

An element then *agrees*, is *within finite-difference noise* (the difference
is explained by the estimate but is large relative to the value: the step
cannot confirm it), or is *wrong*. Where the one-sided differences
``(f(x+h) - f(x))/h`` and ``(f(x) - f(x-h))/h`` disagree beyond what a smooth
``f`` allows (their difference at ``h`` and twice that at ``h/2`` should
agree), ``f`` has a kink within the step (a ReLU unit crossing zero): the
element is reported as not differentiable at this step, listed apart and left
out of the verdict. Explicit ``atol``/``rtol`` restore the classic rule
``|analytic - numerical| <= atol + rtol |numerical|`` (kinks still left out).

``mode="taylor"`` is the step-free test of :mod:`fastgrad.taylor`.
"""

from __future__ import annotations

import math
import numbers
import time
from dataclasses import dataclass, field

import numpy as np

from fastgrad import compare, generic, inputs

#: How many of the worst elements (or directions) a report lists.
N_WORST = 5
#: How many kinks and wrong elements a report names (the counts are complete).
N_LISTED = 100
#: Classic rule's defaults, applied when either ``atol`` or ``rtol`` is given.
CLASSIC_ATOL, CLASSIC_RTOL = 1e-5, 1e-3
#: The error estimate: truncation (Richardson) times this safety factor ...
TRUNCATION_SAFETY = 3.0
#: ... plus this many standard deviations of rounding noise: 6 sigma keeps a
#: check of 1e6 correct elements free of false alarms.
NOISE_SIGMAS = 6.0
#: A kink needs a one-sided residual this many of its noise sigmas out.
KINK_SIGMAS = 4.0
#: "agrees" (rather than "within noise"): difference within this share of the value.
AGREE_RTOL = 1e-3
#: Steps of the stencil, in units of h: D(h) from the first two, D(h/2) from the last two.
OFFSETS = (1.0, -1.0, 0.5, -0.5)
#: Noise sd of the one-sided residual over that of D(h): sqrt(70) / (sqrt(2) / 2).
_RESIDUAL_NOISE = math.sqrt(70.0) / math.sqrt(0.5)
#: Lower quartile of |N(0, 1)|.
_QUARTILE_ABS_NORMAL = 0.3186
#: Most rounding noise believed, over ``eps |f| / h``: beyond it a residual is a kink
#: (a sum of 1e8 terms is noisier than one value by ~1e4).
AMPLIFICATION_MAX = 1e6
#: Element statuses, in the order of their codes.
STATUSES = ("agrees", "noise", "wrong", "kink")
AGREES, NOISE, WRONG, KINK = range(4)
#: Blocks followed per level of the search for wrong elements in directional mode.
MAX_BLOCKS = 64


@dataclass(frozen=True)
class Mismatch:
    """One compared element (full mode: an index of ``x``, or ``(output index, x index)``
    for an array-valued ``f``; directional: a direction; found by the search: an
    index of ``x``).

    ``status`` is one of :data:`STATUSES`; ``noise`` is the estimated error of
    ``numerical`` (or the classic rule's allowance when ``atol``/``rtol`` were given).
    """

    index: tuple | int
    analytic: float
    numerical: float
    abs_error: float
    rel_error: float
    ok: bool
    status: str = "agrees"
    noise: float = float("nan")


@dataclass(frozen=True)
class GradcheckReport:
    """Verdict of :func:`gradcheck`; ``bool(report)`` is :attr:`ok`.

    ``ok`` is True when no element is *wrong*: elements *within noise* pass
    (``n_noise`` says how many the step could not confirm) and kinks are left
    out (``n_kinks``, the first :data:`N_LISTED` in ``kinks``). ``wrong`` names
    the wrong elements (in directional mode, those the search found).
    ``max_abs`` and ``max_rel`` (``|a - n| / max(|a|, |n|, rel_floor)``, see
    :func:`fastgrad.compare.relative_error`) are taken over the elements in the
    verdict. ``atol`` and ``rtol`` are None unless the classic rule was asked for.
    A ``mode="taylor"`` report has ``undecided`` set to what could not be
    decided, if anything, and its fits in ``slopes``.

    Attributes
    ----------
    ok : bool
        No element (or direction) is wrong, and the check could be decided.
    mode : {'full', 'directional', 'taylor'}
        Every element, random unit directions, or the step-free slope fit.
    n_checked, n_failed : int
        Elements (directions) compared, and how many are wrong.
    n_agree, n_noise, n_kinks : int
        Elements that agree, lie within the finite difference's error, or sit at a kink.
    max_abs, max_rel : float
        Largest absolute and relative error over the elements in the verdict.
    worst, wrong, kinks : tuple
        The furthest elements outside the rule, the wrong ones, the kinks.
    shape, output_shape : tuple
        Shapes of ``x`` and of ``f(x)`` (``()`` for a scalar f).
    h, eps : float
        The step and the machine epsilon of the data.
    atol, rtol : float or None
        The classic rule's settings, None unless asked for.
    rel_floor : float
        Floor of the relative error's denominator.
    seconds : float
        Wall time, compiling ``f`` included on a first call.
    directions : int or None
        Number of directions in directional mode.
    seed : object
        Seed of the directions (None in full mode).
    undecided : str or None
        What could not be decided, if anything.
    slopes : tuple
        Taylor mode: one fit per direction.
    """

    ok: bool
    mode: str  # "full", "directional" or "taylor"
    n_checked: int
    n_failed: int
    max_abs: float
    max_rel: float
    worst: tuple  # of Mismatch, most out of tolerance first
    shape: tuple
    h: float
    atol: float | None
    rtol: float | None
    rel_floor: float
    seconds: float
    directions: int | None = None
    seed: object = None
    n_agree: int = 0
    n_noise: int = 0
    n_kinks: int = 0
    kinks: tuple = ()
    wrong: tuple = ()  # of Mismatch
    eps: float = float(np.finfo(np.float64).eps)
    output_shape: tuple = ()
    undecided: str | None = None
    slopes: tuple = ()  # taylor mode: one dict per direction
    extra: dict = field(default_factory=dict)

    def __bool__(self):
        return self.ok

    @property
    def classic(self):
        """True when the classic ``atol``/``rtol`` rule decided."""
        return self.atol is not None

    @property
    def rule(self):
        """The pass rule of this report, as text."""
        if self.mode == "taylor":
            return ("slope of |f(x + t v) - f(x) - t v.g| against t on a log-log grid: "
                    "2 = right, 1 = wrong")
        if self.classic:
            return (f"|analytic - numerical| <= atol + rtol * |numerical| "
                    f"(atol {self.atol:g}, rtol {self.rtol:g}); kinks left out")
        return (f"|analytic - numerical| <= estimated error of the finite difference "
                f"(Richardson truncation x{TRUNCATION_SAFETY:g} + {NOISE_SIGMAS:g} sigma of "
                f"rounding, eps {self.eps:.2g}); kinks left out")

    def __str__(self):
        if self.mode == "taylor":
            return _taylor_text(self)
        if self.mode == "full":
            what = f"{self.n_checked} elements of " + (
                f"x {self.shape}" if self.output_shape == () else
                f"the Jacobian (f {self.output_shape} by x {self.shape})")
        else:
            what = (f"{self.n_checked} random unit directions (seed {self.seed}) in x "
                    f"{self.shape}")
        lines = [
            f"gradcheck {'passed' if self.ok else 'FAILED'}: {self.mode} mode, {what}: "
            f"{self.n_agree} agree, {self.n_noise} within finite-difference noise, "
            f"{self.n_failed} wrong, {self.n_kinks} at kinks (left out); h = {self.h:g}, "
            f"{self.seconds:.3g} s",
            f"rule: {self.rule}",
            f"max abs error {self.max_abs:.3e}, max rel error {self.max_rel:.3e} "
            f"(|a - n| / max(|a|, |n|, {self.rel_floor:g}))",
        ]
        if self.undecided:
            lines.append(self.undecided)
        lines += _rows("index" if self.mode == "full" else "direction", self.worst)
        if self.mode == "directional" and self.wrong:
            lines.append(f"wrong elements found by bisection ({len(self.wrong)}):")
            lines += _rows("index", self.wrong)
        elif self.mode == "directional" and self.n_failed:
            lines.append("the search over blocks of coordinates could not isolate an element")
        if self.kinks:
            more = "" if len(self.kinks) == self.n_kinks else f" (first {len(self.kinks)})"
            lines.append(f"not differentiable at this step{more}: "
                         + ", ".join(str(m.index) for m in self.kinks[:20])
                         + (" ..." if len(self.kinks) > 20 else ""))
        return "\n".join(lines)

    def as_dict(self):
        out = {k: getattr(self, k) for k in (
            "ok", "mode", "n_checked", "n_failed", "max_abs", "max_rel", "h", "atol", "rtol",
            "rel_floor", "seconds", "directions", "n_agree", "n_noise", "n_kinks", "eps",
            "undecided")}
        out.update(shape=list(self.shape), output_shape=list(self.output_shape), rule=self.rule,
                   seed=repr(self.seed), worst=[_mismatch_dict(m) for m in self.worst],
                   kinks=[_mismatch_dict(m) for m in self.kinks],
                   wrong=[_mismatch_dict(m) for m in self.wrong], slopes=list(self.slopes),
                   **self.extra)
        return out


def _mismatch_dict(m):
    return {**m.__dict__, "index": m.index}


def _rows(head, mismatches):
    width = max([len(head)] + [len(str(m.index)) for m in mismatches])
    lines = [f"{head:<{width}}  {'analytic':>13}  {'numerical':>13}  {'abs err':>9}  "
             f"{'rel err':>9}  {'est err':>9}"]
    for m in mismatches:
        flag = {"agrees": "ok", "noise": "noise", "wrong": "FAIL", "kink": "kink"}[m.status]
        lines.append(f"{m.index!s:<{width}}  {m.analytic:>13.6e}  {m.numerical:>13.6e}  "
                     f"{m.abs_error:>9.2e}  {m.rel_error:>9.2e}  {m.noise:>9.2e}  {flag}")
    return lines


# --- the error estimate ---------------------------------------------------------


@dataclass(frozen=True)
class Assessment:
    """Per-element outcome of :func:`assess` (arrays of one length)."""

    numerical: np.ndarray  # D(h)
    estimate: np.ndarray  # estimated error of D(h) (or the classic allowance)
    status: np.ndarray  # codes into STATUSES
    amplification: float  # rounding noise over eps |f| / h, as measured


def assess(analytic, values, center, h, eps, *, scale=None, xscale=0.0, atol=None, rtol=None,
           amplification=None):
    """Classify analytic values against a finite-difference stencil, with no tolerance.

    Parameters
    ----------
    analytic : array_like, shape (q,)
        The claimed derivatives.
    values : array_like, shape (q, 4)
        ``phi(x + c h)`` for ``c`` in :data:`OFFSETS` (``+1, -1, +1/2, -1/2``),
        for each of ``q`` one-dimensional slices ``phi`` of ``f``.
    center : array_like, shape (q,) or scalar
        ``phi(x)``.
    h : float
        The step.
    eps : float
        Machine epsilon of the data (float32's for float32 inputs or outputs).
    scale : array_like, shape (q,), optional
        Magnitude of the terms behind ``phi`` for its rounding (default
        ``max |phi|`` over the stencil).
    xscale : float or array_like
        ``|x|`` along the slice over the step's length in units of ``h``: the
        perturbed point rounds to ``eps |x|``, a relative error of the step.
    atol, rtol : float, optional
        The classic rule instead of the estimate (kinks are still flagged).
    amplification : float, optional
        Rounding noise over ``eps * scale / h``; default measured from the lower
        quartile of the elements' one-sided residuals (between 1 and
        :data:`AMPLIFICATION_MAX`).

    Returns
    -------
    Assessment
        ``numerical`` ``D(h)``, ``estimate`` (its estimated error, or the classic
        allowance), ``status`` (codes into :data:`STATUSES`) and the
        ``amplification`` used.

    Notes
    -----
    With ``D(h) = (phi(h) - phi(-h)) / 2h`` and ``D(h/2)`` likewise, the
    truncation error of ``D(h)`` is ``4/3 |D(h) - D(h/2)|`` (Richardson). The
    one-sided residual ``r = |(phi(h) - 2 phi(0) + phi(-h)) - 4 (phi(h/2) - 2
    phi(0) + phi(-h/2))| / h`` is ``O(h^3)`` for a smooth ``phi`` (the curvature
    cancels) but of the order of the jump in slope where ``phi`` has a kink
    within the step: there the element is a kink when ``r`` exceeds
    :data:`KINK_SIGMAS` of its rounding noise and also exceeds the Richardson
    difference (which a kink further out than about ``h/4`` inflates, making
    the element *within noise* instead). Otherwise the element is *wrong* when
    ``|analytic - D(h)|`` exceeds ``TRUNCATION_SAFETY * truncation +
    NOISE_SIGMAS * rounding`` (plus the analytic value's own rounding).

    Examples
    --------
    >>> import numpy as np
    >>> from fastgrad.gradcheck import OFFSETS, STATUSES, assess
    >>> h = 1e-4
    >>> values = np.array([[np.sin(1.0 + c * h) for c in OFFSETS]])
    >>> out = assess([np.cos(1.0)], values, np.sin(1.0), h, 2.2e-16)
    >>> STATUSES[out.status[0]]
    'agrees'
    >>> STATUSES[assess([np.cos(1.0) * 1.001], values, np.sin(1.0), h, 2.2e-16).status[0]]
    'wrong'
    """
    a = np.asarray(analytic, dtype=np.float64).reshape(-1)
    v = np.asarray(values, dtype=np.float64).reshape(a.size, 4)
    c = np.broadcast_to(np.asarray(center, dtype=np.float64), a.shape)
    with np.errstate(over="ignore", invalid="ignore"):
        d1 = (v[:, 0] - v[:, 1]) / (2.0 * h)
        d2 = (v[:, 2] - v[:, 3]) / h
        rich = np.abs(d1 - d2)
        resid = np.abs((v[:, 0] - 2.0 * c + v[:, 1]) - 4.0 * (v[:, 2] - 2.0 * c + v[:, 3])) / h
    if scale is None:
        scale = np.maximum(np.max(np.abs(v), axis=1), np.abs(c))
    unit = eps * np.maximum(np.asarray(scale, dtype=np.float64), np.finfo(np.float64).tiny) / h
    if amplification is None:
        # the residual of a smooth f is rounding alone, so its lower quartile says how
        # noisy f is, even where most elements sit at kinks
        live = resid > 0
        ratio = resid[live] / unit[live] if live.any() else np.zeros(1)
        measured = float(np.quantile(ratio, 0.25)) / (_RESIDUAL_NOISE * _QUARTILE_ABS_NORMAL)
        amplification = min(max(1.0, measured), AMPLIFICATION_MAX)
    noise = amplification * unit
    step = eps * np.asarray(xscale, dtype=np.float64) * np.abs(d1) / h
    kink = (resid > KINK_SIGMAS * _RESIDUAL_NOISE * (noise + step)) & (resid > rich)
    diff = np.abs(a - d1)
    if atol is not None:
        estimate = atol + rtol * np.abs(d1)
        status = np.where(diff <= estimate, AGREES, WRONG)
    else:
        estimate = (TRUNCATION_SAFETY * (4.0 / 3.0) * rich + NOISE_SIGMAS * (noise + step)
                    + 8.0 * eps * np.maximum(np.abs(a), np.abs(d1)))
        close = (diff == 0) | (diff <= AGREE_RTOL * np.maximum(np.abs(a), np.abs(d1)))
        status = np.where(diff > estimate, WRONG, np.where(close, AGREES, NOISE))
    status = np.where(kink, KINK, status)
    status = np.where(np.isfinite(d1), status, WRONG)
    return Assessment(d1, estimate, status.astype(np.int8), amplification)


# --- inputs ---------------------------------------------------------------------


def _tolerance(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
    return value


def _real_array(value, name):
    if isinstance(value, np.ma.MaskedArray):
        raise TypeError(f"{name} must be a plain array, got a masked array")
    arr = np.asarray(value)
    if arr.dtype == object or arr.dtype == bool or arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    arr = np.array(arr, dtype=np.float64, copy=True)
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        index = tuple(int(i) for i in np.unravel_index(bad[0], arr.shape))
        raise ValueError(f"{name} contains NaN or Inf ({bad.size} elements, first "
                         f"{arr.reshape(-1)[bad[0]]} at index {index})")
    return arr


def _analytic(grad, work, args, out_shape):
    """The claimed gradient (scalar ``f``, shaped like ``x``) or Jacobian ``(m, n)``."""
    if callable(grad):
        grad = grad(work.copy(), *args)
    arr = _real_array(grad, "grad")
    if out_shape == ():
        if arr.shape != work.shape:
            raise ValueError(f"grad must have the shape of x {work.shape}, got {arr.shape}")
        return arr
    m, n = int(np.prod(out_shape, dtype=np.int64)), work.size
    if arr.shape not in ((m, n), tuple(out_shape) + work.shape):
        raise ValueError(f"grad must be the Jacobian of f, of shape ({m}, {n}) or "
                         f"{tuple(out_shape) + work.shape} (f {tuple(out_shape)}, x "
                         f"{work.shape}), got {arr.shape}")
    return arr.reshape(m, n)


def _vjp_of(vjp, out_shape, n):
    """``u -> J^T u`` as a flat float64 array, checked."""
    if not callable(vjp):
        raise TypeError(f"vjp must be callable as vjp(v) -> v @ J, got {type(vjp).__name__}")

    def call(u):
        arr = _real_array(vjp(u.reshape(out_shape).copy()), "vjp(v)")
        if arr.size != n:
            raise ValueError(f"vjp(v) must return one value per element of x ({n}), got "
                             f"shape {arr.shape}")
        return arr.reshape(-1)
    return call


def _data_eps(x, out_eps):
    dtype = np.asarray(x).dtype
    eps = float(np.finfo(dtype).eps) if dtype.kind == "f" else 0.0
    return max(eps, out_eps)


# --- the check --------------------------------------------------------------------


def gradcheck(f, x, grad=None, *, vjp=None, args=(), h=1e-4, atol=None, rtol=None, threads=None,
              directions=None, seed=0, mode=None, steps=None, client=None, chunk_size=None):
    """Compare an analytic gradient (or Jacobian) with finite differences of ``f``.

    Parameters
    ----------
    f : callable
        ``f(x, *args)`` returning a real scalar, or a real array of a fixed
        shape (then ``grad`` is its Jacobian); a Numba ``@njit`` function runs
        compiled and in parallel.
    x : array_like of real numbers
        Point of evaluation; never modified. Its dtype sets the rounding
        estimate's ``eps`` (float32 inputs: float32's).
    grad : array_like or callable, optional
        The analytic gradient at ``x`` (shaped like ``x``), or for an
        array-valued ``f`` the Jacobian, shaped ``(f.size, x.size)`` or
        ``f.shape + x.shape``; or ``grad(x, *args)`` returning it.
    vjp : callable, optional
        Instead of ``grad``: ``vjp(v) -> v @ J`` for ``v`` shaped like ``f``'s
        output (a backward pass), returning one value per element of ``x``.
    args : tuple
        Extra arguments of ``f`` (and of ``grad``), passed read-only.
    h : float
        Central-difference step (default 1e-4).
    atol, rtol : float, optional
        Ask for the classic rule ``|analytic - numerical| <= atol + rtol
        |numerical|`` (the other one defaults to 1e-5 or 1e-3). By default no
        tolerance: each element's estimated finite-difference error decides.
    threads : int, optional
        Threads of the compiled loops.
    directions : int, optional
        Check ``directions`` random unit directions instead of every element
        (and, in ``mode="taylor"``, the number of directions, default 3).
    seed : int or numpy.random.Generator
        Seed of the directions.
    mode : {None, "full", "directional", "taylor"}
        Default: "directional" when ``directions`` is given, else "full".
        "taylor": the step-free slope test (:func:`fastgrad.steps.taylor_check`).
    steps : array_like, optional
        ``mode="taylor"`` only: the grid of steps ``t`` (default ``10**-1 ..
        10**-8``, 4 per decade).
    client : dask.distributed.Client, optional
        Full mode: evaluate the stencil of every element on this Dask cluster,
        split by chunks of indices (:mod:`fastgrad.distributed`, the
        ``distributed`` extra); the same points and the same report as without.
        The directional and taylor modes' few evaluations stay here.
    chunk_size : int, optional
        Elements per task with a ``client`` (default about 1 s of calls).

    Returns
    -------
    GradcheckReport
        ``bool(report)`` is ``report.ok``; ``print(report)`` shows the counts of
        agreeing, noisy, wrong and kink elements and the worst ones.

    Raises
    ------
    TypeError, ValueError
        Bad arguments, named: ``f`` not callable or returning complex, non-real,
        non-finite or changing shape (the point is named), ``grad`` of the
        wrong shape or not finite, ``vjp`` returning the wrong size, ...

    Examples
    --------
    >>> import numpy as np
    >>> import fastgrad
    >>> x = np.array([0.5, -1.0, 2.0])
    >>> f = lambda a: float(np.sum(np.sin(a) * a))
    >>> good = np.cos(x) * x + np.sin(x)
    >>> fastgrad.gradcheck(f, x, good).ok
    True
    >>> bad = good.copy(); bad[1] *= 1.01
    >>> report = fastgrad.gradcheck(f, x, bad)
    >>> report.ok, report.worst[0].index, report.worst[0].status
    (False, (1,), 'wrong')
    """
    start = time.perf_counter()
    jitted, work, args = generic.prepare(f, x, args)
    h = inputs.check_h(h)
    threads = inputs.check_threads(threads)
    if atol is not None or rtol is not None:
        atol = CLASSIC_ATOL if atol is None else _tolerance(atol, "atol")
        rtol = CLASSIC_RTOL if rtol is None else _tolerance(rtol, "rtol")
    mode = _check_mode(mode, directions)
    if directions is not None:
        if isinstance(directions, bool) or not isinstance(directions, (int, np.integer)):
            raise TypeError(f"directions must be a positive integer or None, "
                            f"got {type(directions).__name__}")
        if directions < 1:
            raise ValueError(f"directions must be at least 1, got {directions}")
    if mode != "full":
        try:
            rng = np.random.default_rng(seed)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"seed must be a non-negative integer or a Generator: "
                             f"{exc}") from None
    if (grad is None) == (vjp is None):
        raise TypeError("give exactly one of grad (the gradient or Jacobian) and vjp")
    out_shape, center, out_eps = generic.output_of(f, work, args)
    eps = _data_eps(x, out_eps)
    if vjp is not None:
        vjp = _vjp_of(vjp, out_shape, work.size)
        analytic = None
    else:
        analytic = _analytic(grad, work, args, out_shape)
    ctx = _Context(f, work, args, h, threads, jitted, out_shape, center, eps, atol, rtol,
                   client, chunk_size)
    if mode == "taylor":
        from fastgrad import steps as taylor

        return taylor.taylor_check(ctx, analytic, vjp, rng, directions, steps, seed, start)
    if steps is not None:
        raise ValueError("steps is for mode='taylor' only")
    if mode == "full":
        items = _full(ctx, analytic, vjp)
        return _report(ctx, "full", items, start)
    items, wrong = _directional(ctx, analytic, vjp, int(directions), rng)
    return _report(ctx, "directional", items, start, wrong=wrong, directions=int(directions),
                   seed=seed)


def _check_mode(mode, directions):
    if mode is None:
        return "full" if directions is None else "directional"
    if mode not in ("full", "directional", "taylor"):
        raise ValueError(f"mode must be 'full', 'directional' or 'taylor', got {mode!r}")
    if mode == "directional" and directions is None:
        raise ValueError("mode='directional' needs directions=N")
    if mode == "full" and directions is not None:
        raise ValueError("mode='full' checks every element: leave directions out")
    return mode


@dataclass
class _Context:
    """What every stage of one check needs."""

    f: object
    work: np.ndarray
    args: tuple
    h: float
    threads: int
    jitted: bool
    out_shape: tuple
    center: np.ndarray  # f(x), raveled
    eps: float
    atol: float | None
    rtol: float | None
    client: object = None  # a dask.distributed.Client: the full mode's stencil there
    chunk_size: int | None = None

    @property
    def m(self):
        return self.center.size

    def columns(self, offsets=OFFSETS):
        if self.client is not None:
            from fastgrad import distributed

            return distributed.function_columns(self.client, self.f, self.work, self.args,
                                                self.h, offsets, self.out_shape, self.jitted,
                                                chunk_size=self.chunk_size)
        return generic.column_values(self.f, self.work, self.args, self.h, offsets,
                                     self.threads, self.out_shape, self.jitted)

    def along(self, signs, tasks, offsets=OFFSETS):
        return generic.direction_values(self.f, self.work, self.args, self.h, offsets,
                                        self.threads, self.out_shape, self.jitted, signs, tasks)

    def assess(self, analytic, values, center, scale=None, xscale=0.0, amplification=None):
        return assess(analytic, values, center, self.h, self.eps, scale=scale, xscale=xscale,
                      atol=self.atol, rtol=self.rtol, amplification=amplification)


@dataclass
class _Items:
    """The compared values of a check, in one order, with their indices."""

    index: list
    analytic: np.ndarray
    outcome: Assessment


def _full(ctx, analytic, vjp):
    """Every element of the gradient (or entry of the Jacobian) against its stencil."""
    n, m = ctx.work.size, ctx.m
    values = ctx.columns()  # (n, 4, m)
    if analytic is None:  # one backward pass per output: the Jacobian row by row
        eye = np.eye(m)
        analytic = np.stack([vjp(eye[i]) for i in range(m)]) if m > 1 else vjp(eye[0])
    xscale = np.abs(ctx.work.reshape(-1))
    if ctx.out_shape == ():
        outcome = ctx.assess(np.asarray(analytic).reshape(-1), values[:, :, 0], ctx.center[0],
                             xscale=xscale)
        index = [tuple(int(i) for i in np.unravel_index(p, ctx.work.shape)) for p in range(n)]
        return _Items(index, np.asarray(analytic, dtype=np.float64).reshape(-1), outcome)
    # rows of the Jacobian first: entry (i, p) at i * n + p
    stacked = values.transpose(2, 0, 1).reshape(m * n, 4)
    center = np.repeat(ctx.center, n)
    jac = np.asarray(analytic, dtype=np.float64).reshape(m * n)
    outcome = ctx.assess(jac, stacked, center, xscale=np.tile(xscale, m))
    out_idx = [tuple(int(i) for i in np.unravel_index(i, ctx.out_shape)) for i in range(m)]
    x_idx = [tuple(int(i) for i in np.unravel_index(p, ctx.work.shape)) for p in range(n)]
    index = [(o, p) for o in out_idx for p in x_idx]
    return _Items(index, jac, outcome)


def _directional(ctx, analytic, vjp, count, rng):
    """``count`` random directions (and output weights); then the search for wrong elements."""
    n, m = ctx.work.size, ctx.m
    signs = rng.integers(0, 2, (count, n), dtype=np.int8)
    signs *= 2
    signs -= 1
    weights = None
    if ctx.out_shape != ():
        weights = rng.integers(0, 2, (count, m)).astype(np.float64) * 2.0 - 1.0
        weights /= np.sqrt(m)
    scale = 1.0 / np.sqrt(n)
    tasks = (np.arange(count), np.zeros(count, np.int64), np.full(count, n, np.int64),
             np.full(count, scale))
    values = ctx.along(signs, tasks)  # (count, 4, m)
    if weights is None:  # one gradient for every direction
        g, grads = phi_gradient(analytic, vjp, None, ctx), None
    else:  # phi_k = u_k . f has the gradient J^T u_k
        g, grads = None, [phi_gradient(analytic, vjp, weights[k], ctx) for k in range(count)]
    want = np.empty(count)
    step = np.empty(n)  # one buffer for every direction: at 1e6 elements, allocation shows
    for k in range(count):
        np.multiply(signs[k], scale, out=step)
        want[k] = np.einsum("i,i->", step, g if grads is None else grads[k])
    phi, center, fscale = project(values, ctx.center, weights)
    xscale = np.max(np.abs(ctx.work)) / scale
    outcome = ctx.assess(want, phi, center, scale=fscale, xscale=xscale)
    items = _Items(list(range(count)), want, outcome)
    failed = np.flatnonzero(outcome.status == WRONG)
    wrong = []
    if failed.size:
        excess = np.abs(want - outcome.numerical)[failed] / outcome.estimate[failed]
        for k in failed[np.argsort(-excess, kind="stable")][:2]:
            gk = g if grads is None else grads[k]
            wk = None if weights is None else weights[k]
            found = _bisect(ctx, signs, int(k), gk, wk, outcome.amplification,
                            {m.index for m in wrong})
            wrong.extend(found)
            if len(wrong) >= N_LISTED:
                break
    wrong.sort(key=lambda m: -m.abs_error)
    return items, tuple(wrong[:N_LISTED])


def phi_gradient(analytic, vjp, u, ctx):
    """The gradient of ``phi = u . f``: ``J^T u`` (or the gradient for a scalar f)."""
    if u is None:
        u = np.ones(1)
    if analytic is None:
        return vjp(u)
    if ctx.out_shape == ():
        return analytic.reshape(-1)
    return u @ analytic


def project(values, center, weights):
    """``phi = u . f`` at each stencil point, ``phi(x)`` and the magnitude of its terms."""
    if weights is None:
        phi = values[:, :, 0]
        return phi, np.full(phi.shape[0], center[0]), None
    phi = np.einsum("kjm,km->kj", values, weights)
    mag = np.einsum("kjm,km->kj", np.abs(values), np.abs(weights)).max(axis=1)
    return phi, weights @ center, np.maximum(mag, np.abs(weights) @ np.abs(center))


def _bisect(ctx, signs, k, g, u, amplification, known):
    """Elements of ``x`` responsible for the failure of direction ``k``.

    Each level splits every failing block of coordinates in two and checks the
    direction restricted to each half (rescaled to unit length, so a wrong
    element stands out more as its block shrinks), at most :data:`MAX_BLOCKS`
    blocks per level, until single elements remain.
    """
    n = ctx.work.size
    blocks = [(0, n)]
    found = []
    step_x = np.max(np.abs(ctx.work))
    while blocks and len(found) < N_LISTED:
        halves = [half for lo, hi in blocks for half in
                  (((lo, (lo + hi) // 2), ((lo + hi) // 2, hi)) if hi - lo > 1 else ((lo, hi),))
                  if half[1] > half[0]]
        lo = np.array([b[0] for b in halves], np.int64)
        hi = np.array([b[1] for b in halves], np.int64)
        scales = 1.0 / np.sqrt((hi - lo).astype(np.float64))
        rows = np.full(lo.size, k, np.int64)
        values = ctx.along(signs, (rows, lo, hi, scales))
        weights = None if u is None else np.broadcast_to(u, (lo.size, u.size))
        phi, centers, fscale = project(values, ctx.center, weights)
        want = np.array([np.einsum("i,i->", signs[k, a:b].astype(np.float64) * s, g[a:b])
                         for a, b, s in zip(lo, hi, scales, strict=True)])
        outcome = ctx.assess(want, phi, centers, scale=fscale, xscale=step_x / scales,
                             amplification=amplification)
        failing = np.flatnonzero(outcome.status == WRONG)
        excess = np.abs(want - outcome.numerical)[failing] / outcome.estimate[failing]
        failing = failing[np.argsort(-excess, kind="stable")]
        blocks = []
        for q in failing:
            a, b = int(lo[q]), int(hi[q])
            if b - a > 1:
                if len(blocks) < MAX_BLOCKS:
                    blocks.append((a, b))
                continue
            index = tuple(int(i) for i in np.unravel_index(a, ctx.work.shape))
            if index in known:
                continue
            sign = float(signs[k, a])  # the direction is sign * e_a: undo it
            an, nu = sign * want[q], sign * outcome.numerical[q]
            found.append(Mismatch(index, float(an), float(nu), abs(an - nu),
                                  float(compare.relative_error(an, nu)), False, "wrong",
                                  float(outcome.estimate[q])))
    return found


def _report(ctx, mode, items, start, *, wrong=(), directions=None, seed=None):
    out = items.outcome
    status = out.status
    want, got = items.analytic, out.numerical
    abs_err = compare.abs_error(want, got)
    rel_err = compare.relative_error(want, got)
    judged = status != KINK
    with np.errstate(divide="ignore", invalid="ignore"):
        excess = np.where(abs_err == 0, 0.0, abs_err / out.estimate)
    excess = np.where(judged, excess, -np.inf)  # kinks last
    order = [p for p in np.argsort(-excess, kind="stable")[:N_WORST] if judged[p]]

    def mismatch(p):
        return Mismatch(items.index[p], float(want[p]), float(got[p]), float(abs_err[p]),
                        float(rel_err[p]), bool(status[p] != WRONG), STATUSES[status[p]],
                        float(out.estimate[p]))

    kinks = tuple(mismatch(p) for p in np.flatnonzero(~judged)[:N_LISTED])
    if mode == "full":
        wrong = tuple(mismatch(p) for p in
                      sorted(np.flatnonzero(status == WRONG), key=lambda p: -excess[p])[:N_LISTED])
    counts = np.bincount(status, minlength=4)
    undecided = None
    if not judged.any():  # a check of nothing must not pass
        undecided = (f"could not be decided: every {'element' if mode == 'full' else 'direction'}"
                     f" crosses a kink at h = {ctx.h:g} (f is not differentiable there along "
                     f"it); try another point, or a smaller h")
    return GradcheckReport(
        ok=bool(counts[WRONG] == 0 and judged.any()), mode=mode, undecided=undecided,
        n_checked=int(status.size),
        n_failed=int(counts[WRONG]),
        max_abs=float(abs_err[judged].max()) if judged.any() else 0.0,
        max_rel=float(rel_err[judged].max()) if judged.any() else 0.0,
        worst=tuple(mismatch(p) for p in order), shape=ctx.work.shape, h=ctx.h,
        atol=ctx.atol, rtol=ctx.rtol, rel_floor=compare.REL_FLOOR,
        seconds=time.perf_counter() - start, directions=directions, seed=seed,
        n_agree=int(counts[AGREES]), n_noise=int(counts[NOISE]), n_kinks=int(counts[KINK]),
        kinks=kinks, wrong=tuple(wrong), eps=ctx.eps, output_shape=tuple(ctx.out_shape))


def _taylor_text(report):
    from fastgrad import steps as taylor

    return taylor.describe(report)
