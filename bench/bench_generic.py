"""The generic engine on a user's own @njit loss, beside SciPy, PyTorch and fastgrad's jit.

The user's function is the book's 784-50-10 sigmoid net as one flat parameter
vector, taking the batch as ``args``: ``fastgrad.numerical_gradient(net_loss,
theta, args=(x, labels, ...))`` runs it in the parallel kernel (and a variant
taking the batch as a nested tuple of CSR arrays). Peers on the
same function: SciPy's ``approx_derivative`` (3-point, the same absolute h)
and PyTorch's numerical Jacobian (optional). SciPy on the NumPy loss (what a
SciPy user would write) is timed for information. Every gradient is validated
against the reference (sampled on big workloads).

``pytest bench/bench_generic.py`` runs the suite (the 784-50-10 runs are
``big``); ``python bench/bench_generic.py`` measures each once and prints the
ratios.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pytest
from numba import njit

import fastgrad
from fastgrad import config, reference
from fastgrad.bench.machine import blas_limits
from fastgrad.bench.validation import check_gradient, compute_reference
from fastgrad.bench.workload import load_workload
from fastgrad.kernels.forward import batch_loss
from fastgrad.methods import METHODS


@njit
def _unpack(theta, n_in, n_hidden, n_out):
    """Views ``W1, b1, W2, b2`` of the flat parameters."""
    o = n_in * n_hidden
    w1 = theta[:o].reshape(n_in, n_hidden)
    b1 = theta[o:o + n_hidden]
    o += n_hidden
    w2 = theta[o:o + n_hidden * n_out].reshape(n_hidden, n_out)
    o += n_hidden * n_out
    return w1, b1, w2, theta[o:o + n_out]


@njit
def _log_prob(a, w2, b2, z, label):
    """``log(softmax(sigmoid(a) @ w2 + b2)[label] + 1e-7)``, max-shifted; ``z`` is scratch."""
    z[:] = b2
    for j in range(a.size):
        sj = 1.0 / (1.0 + np.exp(-a[j]))
        for k in range(z.size):
            z[k] += sj * w2[j, k]
    m = z.max()
    den = 0.0
    for k in range(z.size):
        den += np.exp(z[k] - m)
    return np.log(np.exp(z[label] - m) / den + 1e-7)


@njit  # a user's function, with Numba's defaults
def net_loss(theta, x, labels, n_in, n_hidden, n_out):
    """The book's loss ``-sum(log(y[t] + 1e-7)) / batch`` of a sigmoid net, flat parameters.

    ``theta`` is ``W1, b1, W2, b2`` raveled one after the other. Zero pixels
    (~80% of MNIST) are skipped, as fastgrad's jit method skips them.
    """
    w1, b1, w2, b2 = _unpack(theta, n_in, n_hidden, n_out)
    a = np.empty(n_hidden)
    z = np.empty(n_out)
    total = 0.0
    for s in range(x.shape[0]):
        a[:] = b1
        for i in range(n_in):
            v = x[s, i]
            if v != 0.0:
                for j in range(n_hidden):
                    a[j] += v * w1[i, j]
        total -= _log_prob(a, w2, b2, z, labels[s])
    return total / x.shape[0]


@njit
def net_loss_csr(theta, batch, labels, layers):
    """:func:`net_loss` with the batch in compressed sparse rows ``(indptr, indices, values)``."""
    indptr, indices, values = batch
    n_in, n_hidden, n_out = layers
    w1, b1, w2, b2 = _unpack(theta, n_in, n_hidden, n_out)
    a = np.empty(n_hidden)
    z = np.empty(n_out)
    total = 0.0
    for s in range(labels.size):
        a[:] = b1
        for q in range(indptr[s], indptr[s + 1]):
            v = values[q]
            for j in range(n_hidden):
                a[j] += v * w1[indices[q], j]
        total -= _log_prob(a, w2, b2, z, labels[s])
    return total / labels.size


@njit
def net_loss_fastgrad(theta, batch, labels, layers):
    """The loss by fastgrad's own compiled forward pass: the engine's cost alone vs ``jit``."""
    n_in, n_hidden, n_out = layers
    o_b1 = n_in * n_hidden
    o_w2 = o_b1 + n_hidden
    o_b2 = o_w2 + n_hidden * n_out
    indptr, indices, values = batch
    return batch_loss(theta[:o_b1].reshape((n_in, n_hidden)), theta[o_b1:o_w2],
                      theta[o_w2:o_b2].reshape((n_hidden, n_out)), theta[o_b2:], indptr,
                      indices, values, labels, np.empty(n_hidden), np.empty(n_out))


def csr_args(w):
    """``((indptr, indices, values), labels, layers)``: nested tuples reach the kernel too."""
    lit = w.x != 0.0
    indptr = np.concatenate([[0], np.cumsum(lit.sum(axis=1))]).astype(np.int64)
    return ((indptr, np.nonzero(lit)[1].astype(np.int64), w.x[lit]), w.labels, w.layers)


def flat(params):
    return np.concatenate([params[k].ravel() for k in reference.PARAM_NAMES])


def unflatten(theta, params):
    out, start = {}, 0
    for name in reference.PARAM_NAMES:
        size = params[name].size
        out[name] = np.asarray(theta[start:start + size]).reshape(params[name].shape)
        start += size
    return out


def loss_args(w):
    return (w.x, w.labels, *w.layers)


def run_generic(w, threads=None):
    return fastgrad.numerical_gradient(net_loss, flat(w.params), w.h, threads, args=loss_args(w))


def run_generic_csr(w, threads=None):
    return fastgrad.numerical_gradient(net_loss_csr, flat(w.params), w.h, threads,
                                       args=csr_args(w))


def run_generic_fastgrad(w, threads=None):
    return fastgrad.numerical_gradient(net_loss_fastgrad, flat(w.params), w.h, threads,
                                       args=csr_args(w))


def run_jit(w, threads=None):
    return flat(METHODS["jit"].func(w.params, w.x, w.labels, w.h,
                                    threads or config.default_threads()))


def run_scipy_same_function(w):
    from scipy.optimize._numdiff import approx_derivative

    args = loss_args(w)
    # abs_step: the same absolute h as the book, not SciPy's relative default
    return approx_derivative(lambda th: net_loss(th, *args), flat(w.params), method="3-point",
                             abs_step=w.h)


def run_scipy_numpy_loss(w):
    from scipy.optimize._numdiff import approx_derivative

    return approx_derivative(lambda th: reference.loss(unflatten(th, w.params), w.x, w.labels),
                             flat(w.params), method="3-point", abs_step=w.h)


def torch_numerical_jacobian():
    """``torch.autograd.gradcheck.get_numerical_jacobian``, or None where torch has none.

    Imported as a module: ``from torch.autograd import gradcheck`` gives the
    function of that name, which shadows the module.
    """
    import importlib

    return getattr(importlib.import_module("torch.autograd.gradcheck"),
                   "get_numerical_jacobian", None)


def run_torch(w):
    import torch

    args = loss_args(w)

    def fn(inputs):  # the same jitted function, on the tensor's memory (inputs: a tuple)
        (theta,) = inputs
        return torch.tensor(net_loss(theta.detach().numpy(), *args), dtype=torch.float64)

    # torch differences only the inputs that require a gradient
    theta = torch.from_numpy(flat(w.params)).requires_grad_()
    with warnings.catch_warnings():  # deprecated but still the peer
        warnings.simplefilter("ignore")
        jac = torch_numerical_jacobian()(fn, (theta,), eps=w.h)[0]
    return jac.reshape(-1).numpy()


PEERS = {
    "generic": (run_generic, "fastgrad.numerical_gradient(net_loss, theta, args=batch)"),
    "generic-csr": (run_generic_csr, "the same with the batch as a CSR tuple in args"),
    "generic-fg": (run_generic_fastgrad,
                   "the same on fastgrad's own forward pass (the jit method's arithmetic)"),
    "jit": (run_jit, "fastgrad's jit method on the same net (its own kernels)"),
    "scipy": (run_scipy_same_function,
              "scipy approx_derivative(3-point) on the same @njit net_loss"),
    "scipy-numpy": (run_scipy_numpy_loss,
                    "scipy approx_derivative(3-point) on the NumPy loss (information)"),
    "torch": (run_torch, "torch get_numerical_jacobian on the same @njit net_loss"),
}
#: Peers fast enough to run once untimed first: compiled and validated before timing.
FAST = ("generic", "generic-csr", "generic-fg", "jit")
#: Largest max-abs difference from the reference: the other engines sum in
#: other orders, which moves the difference quotient by ~eps |f| / h.
TOL = 1e-9


def skip_reason(name):
    """Why peer ``name`` cannot run here, or None."""
    module = {"scipy": "scipy", "scipy-numpy": "scipy", "torch": "torch"}.get(name)
    if module is None:
        return None
    try:
        imported = __import__(module)
    except ImportError:
        return f"{module} is not installed: the {name} peer is skipped"
    if name == "torch" and torch_numerical_jacobian() is None:
        return f"torch {imported.__version__} has no numerical-Jacobian helper"
    return None


# --- pytest -------------------------------------------------------------------------

SMOKE = (3, 4)  # hidden, batch: every code path, in seconds
STANDARD = (50, 100)
#: Variants whose code paths the tests cover already: run on the standard size only,
#: sparing the smoke run their compilation.
VARIANTS = ("generic-csr", "generic-fg")
CASES = [pytest.param(name, size, id=f"{name}-784-{size[0]}-10-batch{size[1]}",
                      marks=[pytest.mark.big] if size == STANDARD else [])
         for size in (SMOKE, STANDARD) for name in PEERS
         if size == STANDARD or name not in VARIANTS]


@pytest.mark.parametrize("name, size", CASES)
def test_generic_peers(benchmark, name, size, workload, references, warm_kernels):
    reason = skip_reason(name)
    if reason:
        pytest.skip(reason)
    w = workload(*size)
    run, summary = PEERS[name]
    if name in FAST:
        run(w)  # compile outside the timing, and validate before timing
        references.check("jit", unflatten(run(w), w.params), w)
    benchmark.group = f"generic engine vs peers: {w.label()}"
    benchmark.extra_info["peer"] = summary
    with blas_limits(1):
        grad = benchmark.pedantic(run, args=(w,), rounds=1, iterations=1)
    references.check("jit", unflatten(grad, w.params), w, benchmark)


# --- one measurement, ratios ---------------------------------------------------------


def measure(hidden=50, batch=100, peers=tuple(PEERS)):
    """Time each peer once (generic and jit after a validated warm-up call); return rows."""
    w = load_workload(hidden, batch)
    ref = compute_reference(w, sample=24)  # the book's loop on 24 entries per tensor
    rows = {}
    for name in peers:
        reason = skip_reason(name)
        if reason:
            rows[name] = {"skipped": reason}
            continue
        run, summary = PEERS[name]
        if name in FAST:
            err = check_gradient("jit", unflatten(run(w), w.params), ref, w).max_abs
            assert err <= TOL, f"{name}: max abs error {err:.2e} before timing"
        with blas_limits(1):
            start = time.perf_counter()
            grad = run(w)
            seconds = time.perf_counter() - start
        err = check_gradient("jit", unflatten(grad, w.params), ref, w).max_abs
        assert err <= TOL, f"{name}: max abs error {err:.2e} > {TOL:g}"
        rows[name] = {"seconds": seconds, "max_abs_error": err, "summary": summary}
    return w, ref, rows


def serial_time(w):
    """Seconds of the generic engine at one thread: the user's ``f`` called ``2 n`` times.

    The engine adds nothing measurable to those calls (``generic-fg`` vs ``jit``),
    so this is the cost of the evaluations themselves.
    """
    run_generic(w, threads=1)
    with blas_limits(1):
        start = time.perf_counter()
        run_generic(w, threads=1)
        return time.perf_counter() - start


def ceiling_note(w, serial, rows):
    """The best ratio over SciPy that any engine calling ``f`` per perturbation can reach.

    Every peer evaluates ``f`` twice per entry; an engine can only spread those
    calls over ``T`` threads, so it cannot beat SciPy by more than SciPy's time
    over ``serial / T``.
    """
    evals = 2 * sum(p.size for p in w.params.values())
    threads = config.default_threads()
    lines = [f"\ngeneric engine at 1 thread: {serial:.2f} s = {evals:,} calls of net_loss "
             f"({1e6 * serial / evals:.0f} us each); on {threads} threads the calls alone take "
             f"at least {serial / threads:.2f} s"]
    scipy = rows.get("scipy", {}).get("seconds")
    if scipy:
        lines.append(f"SciPy: {scipy:.2f} s = those calls + {scipy - serial:.2f} s of its own "
                     f"work (copies of x, Python): at most {scipy * threads / serial:.2f}x over "
                     f"SciPy on {threads} threads for any engine; projected "
                     + ", ".join(f"{n} threads {scipy * n / serial:.1f}x"
                                 for n in (4, 8, 16, 64))
                     + " (from the measured 1-thread time, not a measurement)")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hidden", type=int, default=50)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--peers", nargs="+", default=list(PEERS), choices=list(PEERS))
    args = p.parse_args(argv)
    w, ref, rows = measure(args.hidden, args.batch, tuple(args.peers))
    serial = serial_time(w) if "generic" in args.peers else None
    print(f"{w.label()}, {w.description}; threads {config.default_threads()}, "
          f"layer {config.threading_layer()}; validated on {ref.entries} sampled parameters "
          f"against the reference (tol {TOL:g})\n")
    base = rows.get("generic", {}).get("seconds")
    for name, row in rows.items():
        if "skipped" in row:
            print(f"{name:<12} skipped: {row['skipped']}")
            continue
        ratio = f"{row['seconds'] / base:8.2f}x generic" if base else ""
        print(f"{name:<12} {row['seconds']:9.3f} s  {ratio}  err {row['max_abs_error']:.1e}  "
              f"({row['summary']})")
    if serial is not None:
        print(ceiling_note(w, serial, rows))


if __name__ == "__main__":
    main()
