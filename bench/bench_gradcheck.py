"""Gradient checkers on planted bugs: fastgrad's ``gradcheck`` beside the peers users have.

Every tool checks the same functions, each at its documented defaults:

- four planted bugs in the analytic gradient of a smooth loss (a two-hidden-layer
  sigmoid MLP with softmax cross entropy, written once with Numba and called by
  every tool): one element among ~1e5 off by 3 %, the whole gradient scaled by
  1.01, the square hidden weight's gradient transposed, and the gradient cast to
  float32 and back;
- three correct ReLU nets (:class:`fastgrad.MultiLayerNet`, its backprop
  ``net.gradient`` against the loss it differentiates exactly) at points where
  some hidden units sit within a finite-difference step of zero, so that a
  checker which does not set kinks apart raises false alarms.

A second table times the compiled directional mode against the NumPy path on
1e6 elements, and ``fastgrad.jacobian`` against SciPy's ``approx_derivative``.
Both engines call the same functions, and nearly all of their time is in those
calls: 4 evaluations of ``f`` per direction at 1e6 elements (forming the points,
drawing the directions and the assessment take a few per cent), and 2 per
column of the Jacobian. So the ratios measure how fast each engine evaluates the
same ``f`` and how many cores it uses, and the functions are written as a user
who cares would write them for either engine: ``tanh_layer`` sums each row in
four interleaved partial sums (one running sum would wait on the latency of every
addition, since neither engine may reorder it), which speeds up SciPy's calls as
much as fastgrad's; ``smooth_loss`` keeps one running sum, which costs little
beside its ``sin`` and ``exp``.

Run ``python bench/bench_gradcheck.py --out FILE [--quick] [--speed-only]``; the
``test_*`` functions are a smoke test at tiny sizes collected by pytest.
"""

from __future__ import annotations

import argparse
import datetime
import inspect
import json
import math
import os
import platform
import sys
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pytest
from numba import njit

import fastgrad
from fastgrad import reference

#: gradcheck's default step (the speed table's correct case runs at the defaults).
DEFAULT_H = inspect.signature(fastgrad.gradcheck).parameters["h"].default
#: Directions of fastgrad's directional mode (it has no default; the guide's example count).
DIRECTIONS = 16
#: SciPy's ``check_grad`` returns a norm and documents no threshold: its own test suite
#: asserts ``assert_almost_equal(r, 0)``, i.e. ``r < 1.5e-7``.
CHECK_GRAD_LIMIT = 1.5e-7
#: The element rule for the peers that return a numerical gradient (approx_derivative,
#: numdifftools): ``numpy.isclose`` at its defaults (rtol 1e-5, atol 1e-8).
ISCLOSE = {"rtol": 1e-5, "atol": 1e-8}
#: numdifftools evaluates f about 2 x (its number of steps) times per element: past this
#: size one check takes minutes, so it is not run.
NUMDIFFTOOLS_MAX_N = 20_000

#: Sizes: (hidden width of the 1e5 MLP, hidden width of the other bugs' MLP, batch,
#: ReLU net widths, 1e6 directional size, Jacobian (n, m)).
SIZES = {
    "full": {"big": 220, "small": 64, "batch": 2, "relu": (12, [10, 10], 4), "dir_n": 10**6,
             "jac": (2000, 100)},
    "quick": {"big": 64, "small": 24, "batch": 2, "relu": (12, [10, 10], 4), "dir_n": 10**5,
              "jac": (400, 40)},
    "smoke": {"big": 6, "small": 5, "batch": 2, "relu": (6, [5, 5], 3), "dir_n": 2000,
              "jac": (30, 5)},
}


# --- the smooth loss: a sigmoid MLP d -> H -> H -> k, softmax cross entropy ----------


def mlp_size(d, hidden, classes):
    return d * hidden + hidden + hidden * hidden + hidden + hidden * classes + classes


@njit(cache=True)
def mlp_loss(theta, xb, labels, hidden, classes):
    """Mean cross entropy ``logsumexp(a) - a[t]`` of the MLP whose weights are ``theta``."""
    batch, d = xb.shape
    o_b1 = d * hidden
    o_w2 = o_b1 + hidden
    o_b2 = o_w2 + hidden * hidden
    o_w3 = o_b2 + hidden
    o_b3 = o_w3 + hidden * classes
    z1, z2, a3 = np.empty(hidden), np.empty(hidden), np.empty(classes)
    total = 0.0
    for s in range(batch):
        for j in range(hidden):
            z1[j] = theta[o_b1 + j]
        for i in range(d):
            xi = xb[s, i]
            for j in range(hidden):
                z1[j] += xi * theta[i * hidden + j]
        for j in range(hidden):
            z1[j] = 1.0 / (1.0 + math.exp(-z1[j]))
            z2[j] = theta[o_b2 + j]
        for i in range(hidden):
            for j in range(hidden):
                z2[j] += z1[i] * theta[o_w2 + i * hidden + j]
        for j in range(hidden):
            z2[j] = 1.0 / (1.0 + math.exp(-z2[j]))
        for c in range(classes):
            a3[c] = theta[o_b3 + c]
        for i in range(hidden):
            for c in range(classes):
                a3[c] += z2[i] * theta[o_w3 + i * classes + c]
        top = a3.max()
        acc = 0.0
        for c in range(classes):
            acc += math.exp(a3[c] - top)
        total += top + math.log(acc) - a3[labels[s]]
    return total / batch


def mlp_gradient(theta, xb, labels, hidden, classes):
    """Backpropagation of :func:`mlp_loss` in NumPy (flat, in ``theta``'s order)."""
    batch, d = xb.shape
    sizes = [(d, hidden), (hidden,), (hidden, hidden), (hidden,), (hidden, classes), (classes,)]
    parts, start = [], 0
    for shape in sizes:
        size = int(np.prod(shape))
        parts.append(theta[start:start + size].reshape(shape))
        start += size
    w1, b1, w2, b2, w3, b3 = parts
    z1 = 1.0 / (1.0 + np.exp(-(xb @ w1 + b1)))
    z2 = 1.0 / (1.0 + np.exp(-(z1 @ w2 + b2)))
    a3 = z2 @ w3 + b3
    y = np.exp(a3 - a3.max(axis=1, keepdims=True))
    y /= y.sum(axis=1, keepdims=True)
    y[np.arange(batch), labels] -= 1.0
    d3 = y / batch
    d2 = (d3 @ w3.T) * z2 * (1.0 - z2)
    d1 = (d2 @ w2.T) * z1 * (1.0 - z1)
    grads = [xb.T @ d1, d1.sum(0), z1.T @ d2, d2.sum(0), z2.T @ d3, d3.sum(0)]
    return np.concatenate([g.ravel() for g in grads])


@dataclass
class Case:
    """One function, one claimed gradient, and the elements where the claim is wrong."""

    name: str
    f: object  # f(theta) -> float (a Numba dispatcher for fastgrad where ``args`` is set)
    x: np.ndarray
    grad: np.ndarray
    planted: np.ndarray  # bool mask of the wrong elements (all False for a correct case)
    kind: str  # "bug", "control" (the bugs' f, correct gradient), "relu" or "note"
    jit_f: object = None  # the Numba f and its args, for fastgrad's compiled path
    args: tuple = ()
    info: dict = field(default_factory=dict)

    def call(self, theta):
        return float(self.f(theta))


def _mlp_problem(hidden, batch, seed, d=None, classes=10):
    d = hidden if d is None else d
    rng = np.random.default_rng(seed)
    n = mlp_size(d, hidden, classes)
    # weights of unit scale so the sigmoids work in their curved range
    theta = rng.standard_normal(n) / np.sqrt(hidden)
    xb = rng.standard_normal((batch, d))
    labels = rng.integers(0, classes, batch)
    args = (xb, labels, hidden, classes)
    return theta, args, mlp_gradient(theta, *args)


def _mlp_case(name, theta, args, grad, planted, info):
    def f(t, _a=args):
        return mlp_loss(t, *_a)

    return Case(name, f, theta, grad, planted, "bug", mlp_loss, args, info)


def planted_cases(sizes, seed=0):
    """The four planted bugs (the first at ~1e5 parameters), then their f with the right gradient.
    """
    cases = []
    theta, args, good = _mlp_problem(sizes["big"], sizes["batch"], seed)
    controls = [_mlp_case(f"MLP n = {theta.size}, correct", theta, args, good,
                          np.zeros(theta.size, bool), {"n": theta.size})]
    hidden, d = args[2], args[0].shape[1]
    # one element of W2 of median magnitude: off by 3 %, big enough for any rule's rtol
    w2 = np.arange(d * hidden + hidden, d * hidden + hidden + hidden * hidden)
    p = int(w2[np.argsort(np.abs(good[w2]))[w2.size // 2]])
    bad = good.copy()
    bad[p] *= 1.03
    cases.append(_mlp_case(f"one element of {theta.size} off 3%", theta, args, bad, bad != good,
                           {"n": theta.size, "element": p, "value": float(good[p])}))
    theta, args, good = _mlp_problem(sizes["small"], sizes["batch"], seed + 1)
    hidden, d = args[2], args[0].shape[1]
    n = theta.size
    controls.append(_mlp_case(f"MLP n = {n}, correct", theta, args, good, np.zeros(n, bool),
                              {"n": n}))
    scaled = good * 1.01
    cases.append(_mlp_case("gradient x 1.01", theta, args, scaled, scaled != good, {"n": n}))
    lo = d * hidden + hidden
    transposed = good.copy()
    block = good[lo:lo + hidden * hidden].reshape(hidden, hidden)
    transposed[lo:lo + hidden * hidden] = block.T.ravel()
    cases.append(_mlp_case("W2 gradient transposed", theta, args, transposed,
                           transposed != good, {"n": n, "weight": f"W2 ({hidden}, {hidden})"}))
    single = good.astype(np.float32).astype(np.float64)
    cases.append(_mlp_case("gradient in float32", theta, args, single, single != good,
                           {"n": n, "max_rel_change": float(np.max(
                               np.abs(single - good) / np.maximum(np.abs(good), 1e-300)))}))
    for case in controls:
        case.kind = "control"
    return cases + controls


def _relu_case(name, net, xb, labels, units_at, note=False):
    names = reference.param_names(net.params)
    shapes = [net.params[k].shape for k in names]

    def unflat(theta):
        out, start = {}, 0
        for key, shape in zip(names, shapes, strict=True):
            size = int(np.prod(shape))
            out[key] = theta[start:start + size].reshape(shape)
            start += size
        return out

    if units_at is not None:
        # move a few first-layer units of sample 0 to within ``units_at`` of zero
        a1 = reference.forward(net.params, xb, "relu")[0]
        for j in range(0, a1.shape[1], 3):
            net.params["b1"][j] -= a1[0, j] - units_at * (1 if j % 2 else -1)
    theta = np.concatenate([net.params[k].ravel() for k in names])
    grad = np.concatenate([g.ravel() for g in net.gradient(xb, labels).values()])
    rows = np.arange(labels.size)

    if note:
        # the book's loss: -log(y[t] + 1e-7), which net.gradient differentiates without the 1e-7
        def f(t):
            return reference.loss(unflat(t), xb, labels, "relu")
        kind = "note"
    else:
        # the loss net.gradient is exact for: -log y[t], by log-sum-exp
        def f(t):
            a = reference.forward(unflat(t), xb, "relu")[-1]
            top = a.max(axis=1)
            lse = top + np.log(np.exp(a - top[:, None]).sum(axis=1))
            return float(np.mean(lse - a[rows, labels]))
        kind = "relu"
    near = np.abs(reference.forward(net.params, xb, "relu")[0]).min()
    return Case(name, f, theta, grad, np.zeros(theta.size, bool), kind,
                info={"n": theta.size, "sizes": net.sizes, "closest_unit_to_zero": float(near)})


def relu_cases(sizes, seed=0):
    """Three correct ReLU nets with units near zero, and the book's loss as a note."""
    d, hidden, classes = sizes["relu"]
    rng = np.random.default_rng(seed + 10)
    xb, labels = rng.standard_normal((4, d)), rng.integers(0, classes, 4)
    out = []
    for i, at in enumerate((3e-7, 3e-5, None)):
        net = fastgrad.MultiLayerNet(d, hidden, classes, activation="relu", seed=seed + i)
        where = "as initialised" if at is None else f"units {at:g} from zero"
        out.append(_relu_case(f"ReLU net {i + 1} ({where})", net, xb, labels, at))
    net = fastgrad.MultiLayerNet(d, hidden, classes, activation="relu", seed=seed)
    out.append(_relu_case("book's loss (1e-7 in the log) vs net.gradient", net, xb, labels,
                          None, note=True))
    return out


# --- the tools ---------------------------------------------------------------------


@dataclass
class Outcome:
    flagged: bool | None  # None: not run
    named: np.ndarray | None = None  # indices the tool names as wrong (None: it names none)
    n_named: int | None = None
    seconds: float = float("nan")
    undecided: bool = False  # fastgrad: every element or direction sat at a kink
    detail: str = ""
    warnings: list = field(default_factory=list)


def _fastgrad(case, **kw):
    f, args = (case.jit_f, case.args) if case.jit_f is not None else (case.f, ())
    report = fastgrad.gradcheck(f, case.x, case.grad, args=args, **kw)
    named = np.array([m.index[0] for m in report.wrong], dtype=np.int64)
    count = report.n_failed if report.mode == "full" else len(report.wrong)
    return Outcome(not report.ok, named, count, undecided=report.undecided is not None,
                   detail=f"{report.n_failed} wrong, {report.n_noise} noise, "
                          f"{report.n_kinks} kinks of {report.n_checked}")


def fastgrad_full(case):
    return _fastgrad(case)


def fastgrad_directional(case):
    return _fastgrad(case, directions=DIRECTIONS)


def _torch_function(case):
    torch = pytest.importorskip("torch")

    class Wrapped(torch.autograd.Function):
        """f in the forward; the claimed gradient, times the incoming one, in the backward."""

        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return torch.tensor(case.call(x.detach().numpy()), dtype=torch.float64)

        @staticmethod
        def backward(ctx, grad_out):
            return grad_out * torch.from_numpy(case.grad.copy())

    x = torch.tensor(case.x, dtype=torch.float64, requires_grad=True)
    return torch, Wrapped.apply, x


def _torch(case, fast):
    torch, fn, x = _torch_function(case)
    torch.manual_seed(0)  # fast mode's random vectors: the same on every run
    ok = torch.autograd.gradcheck(fn, (x,), raise_exception=False, fast_mode=fast)
    return Outcome(not ok)


def torch_slow(case):
    return _torch(case, False)


def torch_fast(case):
    return _torch(case, True)


def scipy_check_grad(case):
    optimize = pytest.importorskip("scipy.optimize")
    err = optimize.check_grad(case.call, lambda t: case.grad, case.x.copy())
    return Outcome(bool(err >= CHECK_GRAD_LIMIT), detail=f"norm {err:.3g}")


def _elementwise(numerical, case):
    bad = ~np.isclose(case.grad, numerical, **ISCLOSE)
    named = np.flatnonzero(bad)
    return Outcome(bool(bad.any()), named, int(named.size),
                   detail=f"max abs diff {np.max(np.abs(case.grad - numerical)):.3g}")


def _approx_derivative():
    # SciPy keeps approx_derivative in a private module (it is not exported by scipy.optimize)
    return pytest.importorskip("scipy.optimize._numdiff").approx_derivative


def scipy_approx_derivative(case):
    return _elementwise(_approx_derivative()(case.call, case.x.copy()), case)


def numdifftools_gradient(case):
    nd = pytest.importorskip("numdifftools")
    if case.x.size > NUMDIFFTOOLS_MAX_N:
        return Outcome(None, detail=f"not run: n = {case.x.size} > {NUMDIFFTOOLS_MAX_N}")
    return _elementwise(nd.Gradient(case.call)(case.x.copy()), case)


def jax_check_grads(case):
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    from jax.test_util import check_grads

    def value(x):
        return np.asarray(case.call(np.asarray(x, dtype=np.float64)), dtype=np.float64)

    scalar = jax.ShapeDtypeStruct((), jnp.float64)
    claimed = jax.ShapeDtypeStruct(case.x.shape, jnp.float64)

    @jax.custom_jvp
    def fn(x):
        return jax.pure_callback(value, scalar, x)

    @fn.defjvp
    def fn_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        g = jax.pure_callback(lambda _: case.grad.copy(), claimed, x)
        return fn(x), jnp.dot(g, t)

    try:
        check_grads(fn, (jnp.asarray(case.x),), order=1)
    except AssertionError as exc:
        return Outcome(True, detail=str(exc).splitlines()[0][:120])
    return Outcome(False)


#: name -> (runner, defaults as used, how f reaches it)
TOOLS = {
    "fastgrad gradcheck (full)": (
        fastgrad_full, "gradcheck(f, x, grad): h=1e-4, no tolerance (per-element estimate)",
        "the Numba f directly (compiled, parallel); ReLU nets: NumPy f"),
    f"fastgrad gradcheck (directional, {DIRECTIONS})": (
        fastgrad_directional, f"gradcheck(f, x, grad, directions={DIRECTIONS}), seed=0, h=1e-4",
        "the Numba f directly (compiled, parallel); ReLU nets: NumPy f"),
    "torch gradcheck (slow)": (
        torch_slow, "torch.autograd.gradcheck(fn, (x,)): eps=1e-6, atol=1e-5, rtol=1e-3",
        "torch.autograd.Function: forward calls f on x.numpy(), backward returns "
        "grad_out * claimed gradient"),
    "torch gradcheck (fast_mode)": (
        torch_fast, "torch.autograd.gradcheck(fn, (x,), fast_mode=True): eps=1e-6, atol=1e-5, "
        "rtol=1e-3; torch.manual_seed(0)", "as torch slow"),
    "scipy check_grad": (
        scipy_check_grad, f"check_grad(f, grad, x0): forward difference, epsilon=1.49e-8, "
        f"direction='all'; fails when the returned norm >= {CHECK_GRAD_LIMIT:g} (SciPy's own "
        f"test rule)", "f and lambda x: claimed gradient, NumPy arrays"),
    "scipy approx_derivative": (
        scipy_approx_derivative, "approx_derivative(f, x0): method='3-point', relative step; "
        "compared by numpy.isclose (rtol 1e-5, atol 1e-8)", "f, NumPy arrays"),
    "numdifftools Gradient": (
        numdifftools_gradient, "numdifftools.Gradient(f)(x): central, order 2, Richardson; "
        "compared by numpy.isclose (rtol 1e-5, atol 1e-8)", "f, NumPy arrays"),
    "jax check_grads": (
        jax_check_grads, "jax.test_util.check_grads(fn, (x,), order=1): modes fwd+rev, "
        "eps=1e-4, float64 tolerances", "jax.custom_jvp around jax.pure_callback(f); its jvp "
        "is claimed gradient . tangent (x64 enabled)"),
}


def run_tool(runner, case):
    """One tool on one case: timed, warnings recorded, a missing package as not run."""
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            out = runner(case)
        except pytest.skip.Exception as exc:
            out = Outcome(None, detail=f"not installed: {exc}")
    out.seconds = time.perf_counter() - start
    out.warnings = sorted({f"{w.category.__name__}: {str(w.message)[:160]}" for w in caught})
    return out


def verdict(out, case):
    """'caught' / 'missed' / 'alarm' / 'ok' / 'undecided', and whether the wrong elements were
    named (None where the tool names none)."""
    if out.flagged is None:
        return "n/a", None
    if out.undecided:
        return "undecided", None
    if case.kind == "bug":
        if not out.flagged:
            return "missed", None
        if out.named is None:
            return "caught", None
        named = bool(out.named.size) and bool(np.all(case.planted[out.named]))
        return "caught", named
    return ("alarm" if out.flagged else "ok"), None


def warm(sizes):
    """Compile f and fastgrad's kernels for it, and load every peer, on a tiny problem."""
    tiny = planted_cases(SIZES["smoke"]) + relu_cases(SIZES["smoke"])[:1]
    for runner, _, _ in TOOLS.values():
        for case in tiny[:1] + tiny[-1:]:
            run_tool(runner, case)


def run_table(cases):
    rows = []
    for tool, (runner, defaults, wrapping) in TOOLS.items():
        row = {"tool": tool, "defaults": defaults, "wrapping": wrapping, "cases": []}
        for case in cases:
            out = run_tool(runner, case)
            what, named = verdict(out, case)
            row["cases"].append({
                "case": case.name, "kind": case.kind, "verdict": what, "named": named,
                "n_named": out.n_named, "n_planted": int(case.planted.sum()),
                "seconds": out.seconds, "detail": out.detail, "warnings": out.warnings})
        rows.append(row)
        print(f"  {tool}: {sum(c['seconds'] for c in row['cases']):.1f} s", flush=True)
    return rows


def format_table(rows, cases):
    bugs = [c for c in cases if c.kind == "bug"]
    relus = [c for c in cases if c.kind == "relu"]
    controls = [c for c in cases if c.kind == "control"]
    notes = [c for c in cases if c.kind == "note"]
    heads = ["tool"] + [f"bug {i + 1}" for i in range(len(bugs))] + [
        "false alarms: smooth", "false alarms: ReLU", "note", "time (s)"]
    lines = [" | ".join(heads), " | ".join("---" for _ in heads)]
    for row in rows:
        by = {c["case"]: c for c in row["cases"]}
        cells = [row["tool"]]
        for case in bugs:
            c = by[case.name]
            if c["verdict"] == "caught" and c["named"] is not None:
                mark = (f"caught, named {c['n_named']}" if c["named"] else
                        f"caught, {c['n_named']} named (some right)")
            else:
                mark = c["verdict"]
            cells.append(mark)
        for group in (controls, relus):
            ran = [by[c.name] for c in group if by[c.name]["verdict"] != "n/a"]
            alarms = sum(c["verdict"] == "alarm" for c in ran)
            undecided = sum(c["verdict"] == "undecided" for c in ran)
            cells.append((f"{alarms}/{len(ran)}" + (f" ({undecided} undecided)" if undecided
                                                   else "")) if ran else "n/a")
        cells.append(" ".join(by[c.name]["verdict"] for c in notes) or "-")
        cells.append(f"{sum(c['seconds'] for c in row['cases']):.2f}")
        lines.append(" | ".join(cells))
    legend = [f"bug {i + 1}: {c.name} (n = {c.info['n']}, {int(c.planted.sum())} elements wrong)"
              for i, c in enumerate(bugs)]
    legend += ["false alarms, smooth: " + ", ".join(c.name for c in controls),
               "false alarms, ReLU: " + ", ".join(c.name for c in relus)
               + " ('undecided': every direction crossed a kink, reported as not decided)"]
    legend += [f"note: {c.name} (the book's backprop leaves out the 1e-7: a relative "
               f"drift of 1e-7 / y[t]; 'alarm' there is a true finding)" for c in notes]
    return "\n".join(lines + [""] + legend)


# --- speed: compiled directional mode, and the Jacobian ----------------------------


@njit(cache=True)
def smooth_loss(x, w, c):
    """``sum(w * exp(sin(x))) + c * sum(x^2)``."""
    total = 0.0
    for i in range(x.size):
        total += w[i] * math.exp(math.sin(x[i])) + c * x[i] * x[i]
    return total


def smooth_loss_numpy(x, w, c):
    """The same function in NumPy: a plain f, so gradcheck takes its NumPy path.

    Summed in order by ``cumsum``, as the compiled loop sums: the rounding noise of a
    sum of 1e6 terms depends on the order (NumPy's pairwise ``sum`` is ~1000 times less
    noisy), and with it what the check can resolve, so both engines must sum alike.
    """
    return float(np.cumsum(w * np.exp(np.sin(x)) + c * x * x)[-1])


@njit(cache=True)
def tanh_layer(x, a):
    """``tanh(a @ x)`` by loops (no BLAS inside the compiled stencil).

    Each row's dot product runs in four partial sums, ``j`` modulo 4, added
    pairwise at the end: four independent chains of multiply-adds instead of
    one, which the CPU overlaps (2.7 times faster at 2000 columns on a 2-core EPYC).
    """
    m, n = a.shape
    out = np.empty(m)
    whole = n - n % 4
    for i in range(m):
        s0 = s1 = s2 = s3 = 0.0
        for j in range(0, whole, 4):
            s0 += a[i, j] * x[j]
            s1 += a[i, j + 1] * x[j + 1]
            s2 += a[i, j + 2] * x[j + 2]
            s3 += a[i, j + 3] * x[j + 3]
        acc = (s0 + s1) + (s2 + s3)
        for j in range(whole, n):
            acc += a[i, j] * x[j]
        out[i] = math.tanh(acc)
    return out


def _best(func, repeat):
    """``(wall seconds, CPU seconds, value)`` of the fastest of ``repeat`` calls.

    The CPU time (this process, all threads) over the wall time says how many
    cores the call had: on a shared machine, fewer than its threads.
    """
    best, cpu, value = float("inf"), float("nan"), None
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        value = func()
        seconds = time.perf_counter() - start
        if seconds < best:
            best, cpu = seconds, time.process_time() - start_cpu
    return best, cpu, value


def speed_table(sizes, repeat=2):
    rows = []
    n = sizes["dir_n"]
    rng = np.random.default_rng(5)
    x, w = rng.uniform(-1, 1, n), rng.uniform(0.5, 2.0, n)
    good = w * np.exp(np.sin(x)) * np.cos(x) + 0.6 * x
    wrong = good.copy()
    wrong[n * 7 // 9] += 0.5
    engines = [("compiled, 2 threads", smooth_loss, 2), ("compiled, threads=1", smooth_loss, 1),
               ("NumPy path (plain f), serial", smooth_loss_numpy, 2)]
    fastgrad.gradcheck(smooth_loss, x[:50], good[:50], args=(w[:50], 0.3), directions=2)
    # The correct gradient at the default h = 1e-4: the sum's rounding (~1e-2 over 2h)
    # makes some directions "within noise", none wrong. The wrong element at h = 1e-2, as
    # the guide advises for a sum of millions of terms: at 1e-4 that rounding hides the
    # 0.5 / sqrt(n) the wrong element adds (last row).
    runs = [(label, grad, engine, f, threads, h)
            for label, grad, h in (("correct", good, DEFAULT_H),
                                   ("one wrong element (bisection)", wrong, 1e-2))
            for engine, f, threads in engines]
    runs.append(("one wrong element", wrong, "compiled, 2 threads", smooth_loss, 2, DEFAULT_H))
    for label, grad, engine, f, threads, h in runs:
        seconds, cpu, report = _best(lambda f=f, grad=grad, threads=threads, h=h:
                                     fastgrad.gradcheck(f, x, grad, args=(w, 0.3),
                                                        directions=DIRECTIONS, threads=threads,
                                                        h=h), repeat)
        rows.append({"what": f"gradcheck directional ({DIRECTIONS}), n = {n}, h = {h:g}, {label}",
                     "engine": engine, "seconds": seconds, "cpu_seconds": cpu, "ok": report.ok,
                     "n_noise": report.n_noise, "n_failed": report.n_failed,
                     "named": [m.index[0] for m in report.wrong], "repeat": repeat})
    approx_derivative = _approx_derivative()
    jn, jm = sizes["jac"]
    a = rng.standard_normal((jm, jn)) / np.sqrt(jn)
    xj = rng.standard_normal(jn)
    fastgrad.jacobian(tanh_layer, xj[:5], args=(a[:, :5].copy(),), threads=2)
    t_fg, cpu_fg, jac = _best(lambda: fastgrad.jacobian(tanh_layer, xj, args=(a,), threads=2),
                              repeat)
    t_sp, cpu_sp, jac_sp = _best(lambda: approx_derivative(
        lambda v: tanh_layer(v, a), xj, method="3-point"), repeat)
    exact = (1.0 - tanh_layer(xj, a) ** 2)[:, None] * a
    what = f"Jacobian of tanh(A x), A {jm} x {jn}"
    rows.append({"what": what, "engine": "fastgrad.jacobian, Numba f, 2 threads (h=1e-4)",
                 "seconds": t_fg, "cpu_seconds": cpu_fg, "repeat": repeat,
                 "max_abs_vs_exact": float(np.max(np.abs(jac - exact)))})
    rows.append({"what": what, "engine": "scipy approx_derivative(method='3-point'), same f",
                 "seconds": t_sp, "cpu_seconds": cpu_sp, "repeat": repeat,
                 "max_abs_vs_exact": float(np.max(np.abs(jac_sp - exact)))})
    return rows


def format_speed(rows):
    lines = [f"what | engine | best of {rows[0]['repeat']} (s) | CPU (s) | result",
             "--- | --- | --- | --- | ---"]
    for r in rows:
        result = (f"max abs vs exact {r['max_abs_vs_exact']:.2g}" if "max_abs_vs_exact" in r
                  else f"ok={r['ok']}, {r['n_failed']} wrong, {r['n_noise']} within noise, "
                       f"named {r['named']}")
        cpu = r.get("cpu_seconds", float("nan"))  # reports saved before it was recorded
        lines.append(f"{r['what']} | {r['engine']} | {r['seconds']:.3f} | {cpu:.3f} | {result}")
    return "\n".join(lines)


# --- the script ---------------------------------------------------------------------


def cpu_model():
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def versions():
    out = {"python": platform.python_version(), "numpy": np.__version__,
           "fastgrad": fastgrad.__version__}
    for name in ("numba", "scipy", "torch", "numdifftools", "jax"):
        try:
            out[name] = __import__(name).__version__
        except ImportError:
            out[name] = None
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="write the results as JSON to this file")
    parser.add_argument("--quick", action="store_true", help="smaller sizes (about 1e4)")
    parser.add_argument("--speed-only", action="store_true",
                        help="only the speed table (no planted bugs, no peers' checks)")
    parser.add_argument("--repeat", type=int, default=2,
                        help="runs per speed row, the fastest kept (default 2)")
    ns = parser.parse_args(argv)
    if ns.repeat < 1:
        parser.error(f"--repeat must be at least 1, got {ns.repeat}")
    sizes = SIZES["quick" if ns.quick else "full"]
    load_before = os.getloadavg()
    cases, rows, table = [], [], None
    if not ns.speed_only:
        print("warming up (compiling f and the kernels, loading the peers) ...", flush=True)
        warm(sizes)
        cases = planted_cases(sizes) + relu_cases(sizes)
        print("planted bugs and ReLU nets:", flush=True)
        rows = run_table(cases)
        table = format_table(rows, cases)
        print(table, flush=True)
    print("speed:", flush=True)
    speed = speed_table(sizes, repeat=ns.repeat)
    print(format_speed(speed))
    if ns.out:
        result = {
            "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "cpu": cpu_model(), "cores": os.cpu_count(),
            "command": " ".join(["python"] + [os.path.relpath(sys.argv[0])] + sys.argv[1:]),
            "load_average": {"before": list(load_before), "after": list(os.getloadavg())},
            "speed_only": ns.speed_only,
            "machine_note": "shared 2-core machine, other jobs running: times are noisy",
            "versions": versions(), "sizes": {k: list(v) if isinstance(v, tuple) else v
                                              for k, v in sizes.items()},
            "cases": [{"name": c.name, "kind": c.kind, **c.info} for c in cases],
            "table": rows, "table_text": table, "speed": speed,
        }
        with open(ns.out, "w") as fh:
            json.dump(result, fh, indent=1, default=str)
        print(f"wrote {ns.out}")


# --- smoke test -----------------------------------------------------------------------


def test_planted_bugs_are_caught_and_named_by_fastgrad():
    cases = planted_cases(SIZES["smoke"])
    for case in cases:
        case.jit_f = None  # the NumPy path: same points as the kernels, no kernel to compile
        out = run_tool(fastgrad_full, case)
        want = ("caught", True) if case.kind == "bug" else ("ok", None)
        assert verdict(out, case) == want, (case.name, out.detail)
    # directional mode names the single wrong element by bisection
    one = cases[0]
    out = run_tool(fastgrad_directional, one)
    assert verdict(out, one) == ("caught", True)
    assert list(out.named) == [one.info["element"]]


def test_relu_nets_raise_no_false_alarm_and_the_kinks_are_set_apart():
    cases = relu_cases(SIZES["smoke"])
    kinks = 0
    for case in [c for c in cases if c.kind == "relu"]:
        report = fastgrad.gradcheck(case.f, case.x, case.grad)
        assert report.ok, (case.name, str(report))
        kinks += report.n_kinks
    assert kinks > 0  # the points do sit at kinks: the check is not vacuous
    book = next(c for c in cases if c.kind == "note")
    assert not fastgrad.gradcheck(book.f, book.x, book.grad).ok


def test_peers_run_on_the_planted_cases():
    pytest.importorskip("torch")
    scaled = planted_cases(SIZES["smoke"])[1]
    assert verdict(run_tool(torch_slow, scaled), scaled) == ("caught", None)
    relu = relu_cases(SIZES["smoke"])[2]
    assert verdict(run_tool(scipy_approx_derivative, relu), relu)[0] in ("ok", "alarm")


def test_speed_table_smoke():
    rows = speed_table(SIZES["smoke"], repeat=1)
    wrong = [r for r in rows if "bisection" in r["what"]]
    assert len(wrong) == 3
    assert wrong and all(not r["ok"] and r["named"] == [SIZES["smoke"]["dir_n"] * 7 // 9]
                         for r in wrong)
    correct = [r for r in rows if r["what"].endswith("correct")]
    assert len(correct) == 3 and all(r["ok"] and f"h = {DEFAULT_H:g}," in r["what"]
                                     for r in correct)
    assert all(r["max_abs_vs_exact"] < 1e-6 for r in rows if "max_abs_vs_exact" in r)
    assert all(r["cpu_seconds"] > 0 for r in rows)


def test_tanh_layer_partial_sums_against_numpy():
    rng = np.random.default_rng(3)
    for n in (1, 7, 8, 13):  # the partial sums' tail, and none
        a, x = rng.standard_normal((3, n)), rng.standard_normal(n)
        np.testing.assert_allclose(tanh_layer(x, a), np.tanh(a @ x), rtol=1e-13, atol=1e-15)


def test_speed_only_writes_the_speed_rows_alone(tmp_path, monkeypatch):
    monkeypatch.setitem(SIZES, "quick", SIZES["smoke"])
    out = tmp_path / "speed.json"
    main(["--speed-only", "--quick", "--repeat", "1", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved["speed_only"] and saved["table"] == [] and saved["cases"] == []
    assert len(saved["speed"]) == 9 and saved["speed"][0]["repeat"] == 1
    with pytest.raises(SystemExit):
        main(["--speed-only", "--repeat", "0"])


if __name__ == "__main__":
    main()
