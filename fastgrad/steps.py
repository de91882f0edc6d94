"""The step-size study of chapter 4: how the central difference's error depends on h.

For every step ``h`` on a log grid the numerical gradient is compared with the
exact analytic gradient of the same loss (backprop of ``-log(y[t] + 1e-7)``,
:func:`fastgrad.reference.backprop_gradient` with ``exact=True``). Large ``h``:
the truncation error, ``O(h^2)`` (slope 2 on a log-log plot). Small ``h``:
rounding, ``O(eps |f| / h)`` (slope -1), until ``x + h`` rounds back to ``x``
and the difference is zero. Three curves on the network:

- ``reference``: the book's loop in float64 on a seeded sample of parameters;
- ``incremental``: fastgrad's default method on every parameter;
- ``float32``: the book's loop with float32 parameters and inputs, evaluated
  in float32 as the book's code would be, on the same sample: rounding comes
  in ~1e9 times sooner.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from fastgrad import generic, inputs, reference
from fastgrad.methods import METHODS

#: 1e-1 .. 1e-12, three steps per decade.
DEFAULT_STEPS = tuple(float(h) for h in np.logspace(-1, -12, 34))
#: Parameters of the network sampled for the reference loops.
DEFAULT_SAMPLE = 96
#: How far above the smallest error of a curve (its rounding minimum or its floor) a
#: point's error must lie to count as truncation: the floor's share is then a few percent.
FLOOR_MARGIN = 100.0


def fit_slope(steps, errors):
    """Least-squares slope of ``log10(error)`` against ``log10(h)``; None if < 2 usable points."""
    steps, errors = np.asarray(steps, dtype=float), np.asarray(errors, dtype=float)
    keep = (errors > 0) & np.isfinite(errors)
    if keep.sum() < 2:
        return None
    return float(np.polyfit(np.log10(steps[keep]), np.log10(errors[keep]), 1)[0])


@dataclass
class Curve:
    """Max abs error of one way of computing the central difference, per step."""

    name: str
    label: str
    steps: np.ndarray
    errors: np.ndarray
    n_checked: int  # gradient entries compared at each step

    @property
    def best(self):
        """Index of the step with the smallest error."""
        return int(np.argmin(self.errors))

    @property
    def best_h(self):
        return float(self.steps[self.best])

    @property
    def best_error(self):
        return float(self.errors[self.best])

    def truncation_side(self):
        """Steps where the h^2 term dominates: at least 10x the best step, and with an
        error at least :data:`FLOOR_MARGIN` times the best error.

        The second condition keeps out a floor: a curve with no rounding term (the
        incremental method differences without cancellation) falls as h^2 down to
        an eps-level floor and stays there, so its best step lies anywhere on the
        floor, and floor points 10x above it would flatten the fitted slope.
        """
        return (self.steps >= 10 * self.best_h) & (self.errors >= FLOOR_MARGIN * self.best_error)

    def rounding_side(self):
        """Steps 10x to 1000x below the best one, where rounding dominates."""
        return (self.steps <= self.best_h / 10) & (self.steps >= self.best_h / 1000)

    @property
    def truncation_slope(self):
        side = self.truncation_side()
        return fit_slope(self.steps[side], self.errors[side])

    @property
    def rounding_slope(self):
        side = self.rounding_side()
        return fit_slope(self.steps[side], self.errors[side])

    def as_dict(self):
        return {"name": self.name, "label": self.label, "n_checked": self.n_checked,
                "steps": self.steps.tolist(), "errors": self.errors.tolist(),
                "best_h": self.best_h, "best_error": self.best_error,
                "truncation_slope": self.truncation_slope,
                "rounding_slope": self.rounding_slope}


@dataclass
class StepSweep:
    """Curves of one study and what they were measured on.

    Attributes
    ----------
    curves : list of Curve
        One per way of computing the central difference, each with its
        ``steps``, ``errors``, ``best_h`` and fitted slopes.
    description : str
        The net and the batch the curves were measured on.
    seconds : float
        Wall time of the study.
    extra : dict
        Seeds, threads and sizes, saved with :meth:`as_dict`.
    """

    curves: list
    description: str
    seconds: float
    extra: dict = field(default_factory=dict)

    def table(self):
        """The errors as text: one row per step, one column per curve, then a summary."""
        head = f"{'h':>8}  " + "  ".join(f"{c.name:>12}" for c in self.curves)
        rows = [head, "-" * len(head)]
        for i, h in enumerate(self.curves[0].steps):
            cells = []
            for c in self.curves:
                mark = "*" if i == c.best else " "
                cells.append(f"{c.errors[i]:>11.2e}{mark}")
            rows.append(f"{h:>8.1e}  " + "  ".join(cells))
        rows.append("")
        for c in self.curves:
            trunc, rnd = c.truncation_slope, c.rounding_slope
            rows.append(f"{c.name:<12} best h {c.best_h:.1e} (error {c.best_error:.2e}); "
                        f"slope {format_slope(trunc)} above 10x best h and "
                        f"{FLOOR_MARGIN:g}x its error, "
                        f"{format_slope(rnd)} below; "
                        f"{c.label}")
        return "\n".join(rows)

    def as_dict(self):
        return {"description": self.description, "seconds": self.seconds, **self.extra,
                "curves": [c.as_dict() for c in self.curves]}


def format_slope(slope):
    """A fitted slope as text (``n/a`` when there is none)."""
    return "n/a" if slope is None else f"{slope:+.2f}"


def check_steps(steps, valid_range=None):
    """Return the steps as a descending float array (each a valid ``h``)."""
    if steps is None:
        steps = DEFAULT_STEPS
    values = [inputs.check_h(h, valid_range) for h in np.atleast_1d(np.asarray(steps)).tolist()]
    if len(values) < 2:
        raise ValueError(f"steps must hold at least 2 step sizes, got {len(values)}")
    return np.array(sorted(set(values), reverse=True))


def function_curve(f, x, grad, steps=None, *, args=(), threads=None, name="f"):
    """The error curve of :func:`fastgrad.numerical_gradient` on any function.

    Parameters
    ----------
    f : callable
        ``f(x, *args) -> float``; a Numba ``@njit`` function runs compiled.
    x : array_like of real numbers
        Point of evaluation; never modified.
    grad : array_like
        The exact gradient of ``f`` at ``x``, shaped like ``x``.
    steps : sequence of float, optional
        Step sizes; default 1e-1 .. 1e-12, three per decade.
    args : tuple
        Extra arguments of ``f``, passed read-only.
    threads : int, optional
        Threads of the compiled loop.
    name : str
        Name of the curve in tables and plots.

    Returns
    -------
    Curve
        Max abs error against ``grad`` at each step, over every element of ``x``.
    """
    steps = check_steps(steps)
    exact = np.asarray(grad, dtype=np.float64)
    if exact.shape != np.shape(x):
        raise ValueError(f"grad must have the shape of x {np.shape(x)}, got {exact.shape}")
    errors = np.array([np.max(np.abs(generic.numerical_gradient(f, x, h, threads, args)
                                     - exact)) for h in steps])
    return Curve(name, "fastgrad.numerical_gradient", steps, errors, exact.size)


# --- the network ------------------------------------------------------------------


def _arch_kwargs(net):
    """Keywords for the reference functions and the registry from ``net.arch``, if any."""
    arch = getattr(net, "arch", None)
    if arch is None:
        return {}, {}
    return ({"activation": arch.activation, "weight_decay": arch.weight_decay},
            {"arch": arch})


def _param_names(params):
    names = getattr(reference, "param_names", None)
    return tuple(names(params)) if names is not None else reference.PARAM_NAMES


def _sample(params, names, x, sample, seed):
    """``{name: flat indices}``, about ``sample`` in all, spread evenly over the tensors.

    Rows of the first weight matrix whose pixel is zero in every sample have
    an exactly zero gradient at any h, so half its picks come from lit rows.
    """
    rng = np.random.default_rng(seed)
    per = max(1, sample // len(names))
    active = np.flatnonzero(np.any(x != 0.0, axis=0))
    picks = {}
    for i, name in enumerate(names):
        arr = params[name]
        k = min(per, arr.size)
        chosen = rng.choice(arr.size, size=k, replace=False)
        if i == 0 and arr.ndim == 2 and active.size:
            rows = rng.choice(active, size=k - k // 2)
            chosen[k // 2:] = rows * arr.shape[1] + rng.integers(0, arr.shape[1], rows.size)
        picks[name] = np.unique(chosen)
    return picks


def _sampled_errors(params, x, labels, picks, exact, steps, dtype, ref_kw):
    """Max abs error of the book's loop at the picked entries, for each step."""
    work = {name: np.array(params[name], dtype=dtype, copy=True) for name in params}
    xs = x.astype(dtype)

    def loss(_):
        return reference.loss(work, xs, labels, **ref_kw)

    errors = np.zeros(len(steps))
    # one BLAS thread: a 100x784 by 784x50 product is too small to share, and
    # threads fighting over a busy core made it 30x slower here
    with threadpool_limits(1, user_api="blas"):
        for name, idx in picks.items():
            flat = work[name].reshape(-1)  # a view: perturbing it perturbs the loss
            want = exact[name].reshape(-1)
            for p in idx:
                for i, h in enumerate(steps):
                    value = reference.numerical_gradient(loss, flat[p:p + 1], h)[0]
                    errors[i] = max(errors[i], abs(value - want[p]))
    return errors


def step_sweep(net=None, x=None, t=None, *, steps=None, sample=DEFAULT_SAMPLE, seed=0,
               threads=None, float32=True, source=None):
    """Error of the network's numerical gradient against the exact one, for each step.

    Parameters
    ----------
    net : object with ``.params`` (and optionally ``.arch``), optional
        Default: the standard seeded 784-50-10 net with its batch (the first
        100 MNIST test digits when present, else labelled synthetic ones).
    x, t : array_like
        The batch, required with ``net``.
    steps : sequence of float
        Step sizes in ``[1e-300, 1]``; default 1e-1 .. 1e-12, three per decade.
    sample : int
        Parameters checked by the (slow) reference loops, seeded by ``seed``.
    threads : int, optional
        Threads of the incremental method.
    float32 : bool
        Also run the book's loop in float32.
    source : str, optional
        Where the batch came from, for the report.

    Returns
    -------
    StepSweep
    """
    start = time.perf_counter()
    if net is None:
        if x is not None or t is not None:
            raise ValueError("x and t are given without net: pass the net as well")
        from fastgrad.standard import standard_workload

        work = standard_workload()
        net, x, t, source = work.net, work.x, work.t, work.source
    elif x is None or t is None:
        raise ValueError("net needs its batch: pass x and t")
    if not hasattr(net, "params"):
        raise TypeError(f"net must have .params (a TwoLayerNet or MultiLayerNet), "
                        f"got {type(net).__name__}")
    if isinstance(sample, bool) or not isinstance(sample, (int, np.integer)) or sample < 1:
        raise ValueError(f"sample must be a positive integer, got {sample!r}")
    steps = check_steps(steps, inputs.NET_H_RANGE)
    threads = inputs.check_threads(threads)
    ref_kw, method_kw = _arch_kwargs(net)
    params, x, labels = inputs.check_batch(net.params, x, t)
    names = _param_names(params)
    exact = reference.backprop_gradient(params, x, labels, exact=True, **ref_kw)
    picks = _sample(params, names, x, sample, seed)
    n_sampled = int(sum(p.size for p in picks.values()))
    curves = [Curve("reference", f"the book's loop, float64, {n_sampled} sampled parameters",
                    steps, _sampled_errors(params, x, labels, picks, exact, steps, np.float64,
                                           ref_kw), n_sampled)]
    incremental = METHODS["incremental"].func
    errors = []
    for h in steps:
        grad = incremental(params, x, labels, h, threads, **method_kw)
        errors.append(max(float(np.max(np.abs(grad[n] - exact[n]))) for n in names))
    n_params = int(sum(params[n].size for n in names))
    curves.append(Curve("incremental", f"fastgrad's incremental method, float64, all "
                        f"{n_params} parameters", steps, np.array(errors), n_params))
    if float32:
        p32 = {n: params[n].astype(np.float32).astype(np.float64) for n in names}
        x32 = x.astype(np.float32).astype(np.float64)
        exact32 = reference.backprop_gradient(p32, x32, labels, exact=True, **ref_kw)
        curves.append(Curve("float32", f"the book's loop with float32 parameters and "
                            f"inputs, {n_sampled} sampled parameters", steps,
                            _sampled_errors(p32, x32, labels, picks, exact32, steps, np.float32,
                                            ref_kw), n_sampled))
    layers = "-".join(str(params[n].shape[0]) for n in names if params[n].ndim == 2)
    layers += f"-{params[names[-1]].shape[0]}"
    description = (f"{layers} net, batch {x.shape[0]}: {source or 'a given batch'}; "
                   f"error = max |numerical - exact analytic gradient|")
    return StepSweep(curves, description, time.perf_counter() - start,
                     {"sample_seed": seed, "threads": threads, "batch": int(x.shape[0]),
                      "layers": layers})


# --- the step-free Taylor test ------------------------------------------------------

#: Default grid of the Taylor test: t from 1e-1 down to 1e-8, 4 per decade.
TAYLOR_STEPS = tuple(float(t) for t in np.logspace(-1, -8, 29))
#: Fewest consecutive usable steps that make a power law.
TAYLOR_MIN_POINTS = 4
#: Largest distance (decades) of a point from its window's fitted line.
TAYLOR_CLEAN = 0.1
#: A residual below this many eps |f| is at the rounding floor.
TAYLOR_FLOOR = 100.0


def taylor_slope(steps, residuals, floor):
    """``(slope, window, reason)`` of the small-step power law of ``residuals(steps)``.

    Usable points lie above ``floor``. Starting from the smallest usable step,
    the window grows towards larger steps while every point stays within
    :data:`TAYLOR_CLEAN` decades of the fitted line; it needs
    :data:`TAYLOR_MIN_POINTS` points. ``slope`` is None (and ``reason`` says
    why) when no such window exists.
    """
    steps, residuals = np.asarray(steps, float), np.asarray(residuals, float)
    order = np.argsort(steps)
    ts, rs = steps[order], residuals[order]
    usable = np.flatnonzero(rs > floor)
    if usable.size < TAYLOR_MIN_POINTS:
        return None, None, (f"only {usable.size} of {ts.size} steps lie above the rounding "
                            f"floor (all at rounding, or f is linear along the direction)")
    start = usable[0]
    best = None
    for stop in range(start + TAYLOR_MIN_POINTS, ts.size + 1):
        if not np.all(rs[start:stop] > floor):
            break
        lt, lr = np.log10(ts[start:stop]), np.log10(rs[start:stop])
        slope, icpt = np.polyfit(lt, lr, 1)
        if np.max(np.abs(lr - (slope * lt + icpt))) > TAYLOR_CLEAN:
            break
        best = (float(slope), (float(ts[start]), float(ts[stop - 1])))
    if best is None:
        return None, None, (f"no clean power law over {TAYLOR_MIN_POINTS} consecutive steps "
                            f"above the rounding floor (from t = {ts[start]:.1e}: a kink, or "
                            f"noise)")
    return best[0], best[1], ""


def taylor_check(ctx, analytic, vjp, rng, directions, steps, seed, start):
    """``gradcheck(..., mode="taylor")``: the slope of the first-order Taylor residual.

    Along random unit directions ``v`` (weights ``u`` of an array-valued f),
    ``r(t) = |phi(x + t v) - phi(x) - t v.g|`` with ``phi = u . f``: ``O(t^2)``
    when ``g`` is the gradient, ``O(t)`` when it is wrong. A slope near 2 passes,
    near 1 fails; anything else, or too few usable steps, is reported as
    undecided, never guessed.
    """
    from fastgrad.gradcheck import GradcheckReport, Mismatch, phi_gradient, project

    directions = 3 if directions is None else int(directions)
    grid = check_steps(TAYLOR_STEPS if steps is None else steps)
    n, m = ctx.work.size, ctx.m
    signs = (rng.integers(0, 2, (directions, n), dtype=np.int8) * 2 - 1).astype(np.int8)
    weights = None
    if ctx.out_shape != ():
        weights = (rng.integers(0, 2, (directions, m)) * 2.0 - 1.0) / np.sqrt(m)
    scale = 1.0 / np.sqrt(n)
    tasks = (np.arange(directions), np.zeros(directions, np.int64),
             np.full(directions, n, np.int64), np.full(directions, scale))
    values = ctx.along(signs, tasks, offsets=grid / ctx.h)  # (directions, steps, m)
    phi, center, _ = project(values, ctx.center, weights)
    rows, worst, failed, undecided = [], [], 0, []
    for k in range(directions):
        u = None if weights is None else weights[k]
        g = phi_gradient(analytic, vjp, u, ctx)
        slope0 = float(np.einsum("i,i->", signs[k].astype(np.float64) * scale, g))
        resid = np.abs(phi[k] - center[k] - grid * slope0)
        mag = float(np.max(np.abs(values[k]) if u is None else np.abs(values[k]) @ np.abs(u)))
        floor = TAYLOR_FLOOR * ctx.eps * max(float(np.max(np.abs(phi[k]))), mag, 1e-300)
        slope, window, reason = taylor_slope(grid, resid, floor)
        if slope is None:
            status = "undecided"
        elif abs(slope - 2.0) <= 0.3:
            status = "agrees"
        elif abs(slope - 1.0) <= 0.3:
            status, failed = "wrong", failed + 1
        else:
            status, reason = "undecided", f"slope {slope:.2f} is neither about 1 nor about 2"
        if status == "undecided":
            undecided.append(f"direction {k}: {reason}")
        rows.append({"direction": k, "slope": slope, "status": status, "window": window,
                     "reason": reason, "steps": grid.tolist(), "residuals": resid.tolist(),
                     "floor": floor, "analytic": slope0})
        worst.append(Mismatch(k, slope0, float("nan") if slope is None else slope,
                                 float("nan"), float("nan"), status != "wrong",
                                 "noise" if status == "undecided" else status))
    text = "; ".join(undecided) if undecided else None
    if text and not failed:
        text = "could not be decided: " + text
    return GradcheckReport(
        ok=failed == 0 and not undecided, mode="taylor", n_checked=directions, n_failed=failed,
        max_abs=float("nan"), max_rel=float("nan"), worst=tuple(worst), shape=ctx.work.shape,
        h=ctx.h, atol=None, rtol=None, rel_floor=0.0, seconds=time.perf_counter() - start,
        directions=directions, seed=seed, n_agree=sum(r["status"] == "agrees" for r in rows),
        n_noise=len(undecided), eps=ctx.eps, output_shape=tuple(ctx.out_shape),
        undecided=text, slopes=tuple(rows))


def describe(report):
    """The text of a ``mode="taylor"`` report."""
    verdict = "passed" if report.ok else ("FAILED" if report.n_failed else "UNDECIDED")
    lines = [f"gradcheck {verdict}: taylor mode, {report.n_checked} random unit directions "
             f"(seed {report.seed}) in x {report.shape}: {report.n_agree} slope ~2 (right), "
             f"{report.n_failed} slope ~1 (wrong), {report.n_noise} undecided; "
             f"{report.seconds:.3g} s", f"rule: {report.rule}"]
    for row in report.slopes:
        where = ("" if row["window"] is None else
                 f" over t in [{row['window'][0]:.1e}, {row['window'][1]:.1e}]")
        slope = "n/a" if row["slope"] is None else f"{row['slope']:.2f}"
        lines.append(f"direction {row['direction']}: slope {slope}{where}: {row['status']}"
                     + (f" ({row['reason']})" if row["reason"] else ""))
    return "\n".join(lines)


def plot_taylor(report, path, *, dpi=120):
    """Draw a ``mode="taylor"`` report's residuals against t into ``path`` (PNG)."""
    from fastgrad import plots

    return plots.plot_taylor(report.slopes, path, dpi=dpi)


def taylor_net(net, x, t, *, directions=3, seed=0, steps=None):
    """The Taylor test of the network's exact backprop gradient (all parameters at once).

    The book's loss as a function of the parameters raveled into one vector,
    checked along ``directions`` random unit directions: slope 2 confirms the
    gradient with no step to choose.
    """
    ref_kw, _ = _arch_kwargs(net)
    params = net.params
    names = _param_names(params)
    shapes = [params[name].shape for name in names]
    sizes = [params[name].size for name in names]
    theta = np.concatenate([np.asarray(params[name], dtype=np.float64).ravel()
                            for name in names])
    labels = np.asarray(t)

    def unflatten(vector):
        out, start = {}, 0
        for name, shape, size in zip(names, shapes, sizes, strict=True):
            out[name] = vector[start:start + size].reshape(shape)
            start += size
        return out

    def loss(vector):
        return float(reference.loss(unflatten(vector), x, labels, **ref_kw))

    exact = reference.backprop_gradient(params, x, labels, True, **ref_kw)
    grad = np.concatenate([exact[name].ravel() for name in names])
    from fastgrad.gradcheck import gradcheck

    return gradcheck(loss, theta, grad, mode="taylor", directions=directions, seed=seed,
                     steps=steps)
