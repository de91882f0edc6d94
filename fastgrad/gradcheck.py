"""``gradcheck(f, x, grad)``: check anyone's analytic gradient against the central difference.

Two modes. *Full*: the numerical gradient of every element
(:func:`fastgrad.numerical_gradient`, compiled and parallel for a jitted ``f``).
*Directional* (``directions=N``): ``N`` seeded random unit directions ``v``,
comparing ``v . grad`` with ``(f(x + h v) - f(x - h v)) / 2h``: two evaluations
of ``f`` each, whatever the size of ``x``. The directions are random signs
scaled to unit length, ``v_i = +-1/sqrt(n)`` (cheaper to draw than Gaussians,
and no element is ever nearly left out): a gradient wrong in one element by
``d`` moves ``v . grad`` by ``|d|/sqrt(n)`` in every direction, and any set of
errors is invisible to one direction with probability at most 1/2, so to all
``N`` with probability at most ``2**-N``.

The central difference along ``v`` carries the rounding noise of ``f`` itself,
about ``eps * |f| / h`` (more for a sum of millions of terms), so on a large
``x`` a larger ``h`` (1e-3 to 1e-2) often checks more tightly.
"""

from __future__ import annotations

import numbers
import time
from dataclasses import dataclass

import numpy as np

from fastgrad import compare, generic, inputs

#: How many of the worst elements (or directions) a report lists.
N_WORST = 5


@dataclass(frozen=True)
class Mismatch:
    """One compared element (full mode: an index of ``x``; directional: a direction)."""

    index: tuple | int
    analytic: float
    numerical: float
    abs_error: float
    rel_error: float
    ok: bool


@dataclass(frozen=True)
class GradcheckReport:
    """Verdict of :func:`gradcheck`; ``bool(report)`` is :attr:`ok`.

    An element passes when ``|analytic - numerical| <= atol + rtol * |numerical|``
    (NumPy's ``allclose`` rule with the numerical value as reference). The
    relative error ``|a - n| / max(|a|, |n|, rel_floor)`` is reported for
    information (:func:`fastgrad.compare.relative_error`, floor
    :data:`fastgrad.compare.REL_FLOOR`: below it an element is rounding noise).
    """

    ok: bool
    mode: str  # "full" or "directional"
    n_checked: int
    n_failed: int
    max_abs: float
    max_rel: float
    worst: tuple  # of Mismatch, most out of tolerance first
    shape: tuple
    h: float
    atol: float
    rtol: float
    rel_floor: float
    seconds: float
    directions: int | None = None
    seed: object = None

    def __bool__(self):
        return self.ok

    @property
    def rule(self):
        return (f"|analytic - numerical| <= atol + rtol * |numerical| "
                f"(atol {self.atol:g}, rtol {self.rtol:g})")

    def __str__(self):
        what = (f"{self.n_checked} elements of x {self.shape}" if self.mode == "full" else
                f"{self.n_checked} random unit directions (seed {self.seed}) in x {self.shape}")
        lines = [
            f"gradcheck {'passed' if self.ok else 'FAILED'}: {self.mode} mode, {what}, "
            f"{self.n_failed} outside the rule; h = {self.h:g}, {self.seconds:.3g} s",
            f"rule: {self.rule}",
            f"max abs error {self.max_abs:.3e}, max rel error {self.max_rel:.3e} "
            f"(|a - n| / max(|a|, |n|, {self.rel_floor:g}))",
        ]
        head = "index" if self.mode == "full" else "direction"
        width = max([len(head)] + [len(str(m.index)) for m in self.worst])
        lines.append(f"{head:<{width}}  {'analytic':>13}  {'numerical':>13}  {'abs err':>9}  "
                     f"{'rel err':>9}")
        for m in self.worst:
            lines.append(f"{m.index!s:<{width}}  {m.analytic:>13.6e}  {m.numerical:>13.6e}  "
                         f"{m.abs_error:>9.2e}  {m.rel_error:>9.2e}  {'ok' if m.ok else 'FAIL'}")
        return "\n".join(lines)

    def as_dict(self):
        out = {k: getattr(self, k) for k in (
            "ok", "mode", "n_checked", "n_failed", "max_abs", "max_rel", "h", "atol", "rtol",
            "rel_floor", "seconds", "directions")}
        out.update(shape=list(self.shape), rule=self.rule, seed=repr(self.seed),
                   worst=[{**m.__dict__, "index": m.index} for m in self.worst])
        return out


def _tolerance(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
    return value


def _analytic(grad, work, args):
    if callable(grad):
        grad = grad(work.copy(), *args)
    if isinstance(grad, np.ma.MaskedArray):
        raise TypeError("grad must be a plain array, got a masked array")
    arr = np.asarray(grad)
    if arr.dtype == object or arr.dtype == bool or arr.dtype.kind not in "iuf":
        raise TypeError(f"grad must be a real numeric array, got dtype {arr.dtype}")
    if arr.shape != work.shape:
        raise ValueError(f"grad must have the shape of x {work.shape}, got {arr.shape}")
    arr = np.array(arr, dtype=np.float64, copy=True)
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        index = tuple(int(i) for i in np.unravel_index(bad[0], arr.shape))
        raise ValueError(f"grad contains NaN or Inf ({bad.size} elements, first "
                         f"{arr.reshape(-1)[bad[0]]} at index {index})")
    return arr


def _directional(f, work, args, analytic, h, directions, rng):
    """``(v . analytic, central difference along v)`` for ``directions`` unit vectors."""
    flat = work.reshape(-1)
    g = analytic.reshape(-1)
    # two buffers reused for every direction: no fresh pages to fault in per call
    step, point = np.empty_like(flat), np.empty_like(flat)
    shaped = point.reshape(work.shape)
    want, got = np.empty(directions), np.empty(directions)
    scale = 1.0 / np.sqrt(flat.size)
    for k in range(directions):
        # a random sign per element: each sign flips with probability 1/2
        np.multiply(rng.integers(0, 2, flat.size, dtype=np.int8), 2.0 * scale, out=step)
        step -= scale
        want[k] = np.einsum("i,i->", step, g)  # not BLAS: its threads would contend here
        step *= h
        # x +- h v formed afresh from x each time: x never drifts
        np.add(flat, step, out=point)
        f_plus = generic.evaluate(f, shaped, args, generic.point_name(k, +1, direction=True))
        np.subtract(flat, step, out=point)
        f_minus = generic.evaluate(f, shaped, args, generic.point_name(k, -1, direction=True))
        got[k] = (f_plus - f_minus) / (2.0 * h)
    return want, got


def gradcheck(f, x, grad, *, args=(), h=1e-4, atol=1e-5, rtol=1e-3, threads=None,
              directions=None, seed=0, client=None, chunk_size=None):
    """Compare an analytic gradient with the central difference of ``f``.

    Parameters
    ----------
    f : callable
        ``f(x, *args) -> float``; a Numba ``@njit`` function runs compiled.
    x : array_like of real numbers
        Point of evaluation; never modified.
    grad : array_like or callable
        The analytic gradient at ``x`` (shaped like ``x``) or ``grad(x, *args)``.
    args : tuple
        Extra arguments of ``f`` (and of ``grad``), passed read-only.
    h : float
        Central-difference step.
    atol, rtol : float
        An element passes when ``|analytic - numerical| <= atol + rtol * |numerical|``.
    threads : int, optional
        Threads of the full mode's compiled loop.
    directions : int, optional
        Check ``directions`` random unit directions instead of every element.
    seed : int or numpy.random.Generator
        Seed of the directions.
    client : dask.distributed.Client, optional
        Full mode: compute the numerical gradient on this Dask cluster, split
        by chunks of indices (:func:`fastgrad.numerical_gradient`); bitwise
        the same. The directional mode's few evaluations stay here.
    chunk_size : int, optional
        Indices per task with a ``client`` (default about 1 s of calls).

    Returns
    -------
    GradcheckReport
        ``bool(report)`` is ``report.ok``; ``print(report)`` shows the worst elements.
    """
    start = time.perf_counter()
    _, work, args = generic.prepare(f, x, args)
    h = inputs.check_h(h)
    atol, rtol = _tolerance(atol, "atol"), _tolerance(rtol, "rtol")
    if directions is not None:
        if isinstance(directions, bool) or not isinstance(directions, (int, np.integer)):
            raise TypeError(f"directions must be a positive integer or None, "
                            f"got {type(directions).__name__}")
        if directions < 1:
            raise ValueError(f"directions must be at least 1, got {directions}")
        try:
            rng = np.random.default_rng(seed)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"seed must be a non-negative integer or a Generator: "
                             f"{exc}") from None
    analytic = _analytic(grad, work, args)
    if directions is None:
        numerical = generic.numerical_gradient(f, work, h, threads, args, client=client,
                                               chunk_size=chunk_size)
        want, got = analytic.reshape(-1), numerical.reshape(-1)
        mode = "full"
    else:
        generic.evaluate(f, work, args)  # compile errors name x, not a direction
        want, got = _directional(f, work, args, analytic, h, int(directions), rng)
        mode = "directional"
    abs_err = compare.abs_error(want, got)
    rel_err = compare.relative_error(want, got)
    allowed = atol + rtol * np.abs(got)
    passed = abs_err <= allowed
    # worst first: the largest error in units of what the rule allows
    with np.errstate(divide="ignore", invalid="ignore"):
        excess = np.where(abs_err == 0, 0.0, abs_err / allowed)
    order = np.argsort(-excess, kind="stable")[:N_WORST]
    worst = tuple(
        Mismatch(tuple(int(i) for i in np.unravel_index(p, work.shape)) if mode == "full"
                 else int(p), float(want[p]), float(got[p]), float(abs_err[p]),
                 float(rel_err[p]), bool(passed[p]))
        for p in order)
    return GradcheckReport(
        ok=bool(passed.all()), mode=mode, n_checked=int(want.size),
        n_failed=int(want.size - passed.sum()), max_abs=float(abs_err.max()),
        max_rel=float(rel_err.max()), worst=worst, shape=work.shape, h=h, atol=atol, rtol=rtol,
        rel_floor=compare.REL_FLOOR, seconds=time.perf_counter() - start,
        directions=None if directions is None else int(directions),
        seed=seed if directions is not None else None)
