"""Run time of every registry method: side by side, over threads, batch and hidden size.

Every benchmark checks the gradient it timed against the reference, and the
reference against the analytic gradient of the same loss (never against itself).
"""

from __future__ import annotations

import pytest

from fastgrad import reference
from fastgrad.bench.timing import thread_counts
from fastgrad.methods import COMPILED_METHODS
from fastgrad.validate import BACKPROP_TOL, compare

big = pytest.mark.big


def check_reference(grad, w, benchmark):
    """The reference against an independent value: the analytic gradient of the same
    loss, which the central difference matches to its O(h^2) truncation."""
    exact = reference.backprop_gradient(w.params, w.x, w.labels, exact=True)
    err = compare(grad, exact, "reference", "analytic", BACKPROP_TOL).max_abs
    benchmark.extra_info.update(max_abs_error_vs_analytic=err, data=w.data)
    assert err <= BACKPROP_TOL, f"reference vs analytic on {w.label()}: {err:.3e}"


def test_reference(benchmark, measure, workload, references):
    w = workload()
    benchmark.group = f"methods: {w.label()}"
    grad = measure("reference", w, rounds=1)  # 12-20 s a call
    check_reference(grad, w, benchmark)
    references.put(w, grad)


@pytest.mark.parametrize("method", ["jit", "incremental", "backprop"])
def test_method(benchmark, measure, method, workload, references, warm_kernels):
    w = workload()
    benchmark.group = f"methods: {w.label()}"
    grad = measure(method, w, rounds=3 if method == "jit" else None)
    references.check(method, grad, w, benchmark)


@pytest.mark.parametrize("threads", thread_counts())
@pytest.mark.parametrize("method", [pytest.param("jit", marks=big), "incremental"])
def test_threads(benchmark, measure, method, threads, workload, references,
                 warm_kernels):
    w = workload()
    benchmark.group = f"{method} threads: {w.label()}"
    grad = measure(method, w, threads, rounds=2 if method == "jit" else None)
    references.check(method, grad, w, benchmark)


def _sizes(values, big_from):
    return [pytest.param(m, v, marks=big if m == "jit" and v >= big_from else ())
            for m in COMPILED_METHODS for v in values]


@pytest.mark.parametrize(("method", "batch"), _sizes((1, 10, 100, 1000), big_from=100))
def test_batch(benchmark, measure, method, batch, workload, references, warm_kernels):
    w = workload(50, batch)
    benchmark.group = f"{method} batch: 784-50-10"
    slow = method == "jit" and batch >= 100  # 5 s at 100, a minute at 1000
    grad = measure(method, w, rounds=1 if slow else None)
    references.check(method, grad, w, benchmark)


@pytest.mark.parametrize(("method", "hidden"), _sizes((50, 100, 200), big_from=50))
def test_hidden(benchmark, measure, method, hidden, workload, references, warm_kernels):
    w = workload(hidden, 100)
    benchmark.group = f"{method} hidden: 784-H-10, batch 100"
    grad = measure(method, w, rounds=1 if method == "jit" else None)
    references.check(method, grad, w, benchmark)
