"""Fixtures of the benchmark suite: workloads, reference gradients, timing, big-run skipping.

Run the benchmarks with ``pytest bench``; ``pytest bench --benchmark-disable``
runs each body once as a smoke test (validation included) and skips the runs
marked ``big`` unless ``--bench-big`` is given.
"""

from __future__ import annotations

import pytest

from fastgrad import config
from fastgrad.bench.machine import blas_limits
from fastgrad.bench.validation import check_gradient, compute_reference
from fastgrad.bench.workload import load_workload
from fastgrad.methods import COMPILED_METHODS, METHODS

#: The standard workload: the book's 784-50-10 net on 100 digits.
STANDARD = (50, 100)
#: What gets the full reference: the standard workload's layers, batch and arch.
STANDARD_NET = ((784, 50, 10), 100, ("sigmoid", 0.0))
#: Indices per tensor of the sampled reference of every other workload.
SAMPLE = 24


def pytest_addoption(parser):
    parser.addoption("--bench-big", action="store_true",
                     help="fastgrad: also run benchmarks marked 'big' under --benchmark-disable")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "big: one run takes many seconds (jit at batch >= 100); skipped under "
                   "--benchmark-disable unless --bench-big")


def pytest_collection_modifyitems(config, items):
    if not config.getoption("benchmark_disable", False) or config.getoption("bench_big"):
        return
    skip = pytest.mark.skip(reason="big benchmark (seconds per call): skipped in smoke runs "
                                   "with --benchmark-disable; add --bench-big to run it")
    for item in items:
        if "big" in item.keywords:
            item.add_marker(skip)


class References:
    """Reference gradients per workload, computed at most once per session.

    The standard workload gets the full reference (the reference benchmark
    stores the one it times); other workloads get the reference's own loop on
    a seeded sample of entries per tensor (:func:`fastgrad.validate.reference_gradient`),
    bitwise equal there and far cheaper.
    """

    def __init__(self):
        self._refs = {}

    @staticmethod
    def _standard(workload):
        return (workload.layers, workload.batch, tuple(workload.arch)) == STANDARD_NET

    def put(self, workload, grad):
        """Store the full reference ``grad`` timed by a benchmark, or check it if present."""
        if workload.key in self._refs:
            assert check_gradient("reference", grad, self._refs[workload.key],
                                     workload).max_abs == 0.0
        self._refs[workload.key] = grad

    def get(self, workload):
        if workload.key not in self._refs:
            sample = "all" if self._standard(workload) else SAMPLE
            self._refs[workload.key] = compute_reference(workload, blas_threads=1,
                                                            sample=sample).grad
        return self._refs[workload.key]

    def check(self, method, grad, workload, benchmark=None):
        """Assert ``grad`` agrees with the reference; note how it was checked."""
        result = check_gradient(method, grad, self.get(workload), workload)
        if benchmark is not None:
            benchmark.extra_info.update(
                max_abs_error=result.max_abs, data=workload.data, density=workload.density,
                validated_on=f"all {workload.n_params} params"
                if result.compared == workload.n_params
                else f"{result.compared} sampled params")
        assert result.ok, (f"{method} on {workload.label()}: max |error| {result.max_abs:.3e} "
                           f"> {result.tol:g} ({result.share_within:.1%} within)")


@pytest.fixture(scope="session")
def references():
    return References()


@pytest.fixture(scope="session")
def workload():
    """``workload(hidden, batch, data="mnist", **net)``: real test images when found, else
    synthetic (labelled); ``net`` as for :func:`fastgrad.bench.workload.load_workload`
    (activation, weight_init, weight_decay); ``hidden`` an int or a tuple of widths."""
    cache = {}

    def get(hidden=STANDARD[0], batch=STANDARD[1], data="mnist", **net):
        key = (hidden, batch, data, tuple(sorted(net.items())))
        if key not in cache:
            widths = hidden if isinstance(hidden, int) else list(hidden)
            cache[key] = load_workload(widths, batch, data=data, **net)
        return cache[key]

    return get


@pytest.fixture(scope="session")
def warm_kernels():
    """Load (or compile) every Numba kernel once, so no benchmark times that."""
    for hidden, activation in ((2, "sigmoid"), ([2, 2], "sigmoid"), ([2, 2], "relu")):
        tiny = load_workload(hidden, 1, synthetic=True, activation=activation)
        for name in COMPILED_METHODS:
            METHODS[name].func(tiny.params, tiny.x, tiny.labels, tiny.h, 1, tiny.arch)


@pytest.fixture
def measure(benchmark):
    """``measure(method, w, threads=None, rounds=None)``: time registry ``method`` on ``w``.

    Pedantic ``rounds`` if given; BLAS threads as the CLI sets them (one for
    Numba methods, the BLAS's own choice for NumPy ones); returns the gradient
    of the last timed call, for the caller to check.
    """
    def run(method, w, threads=None, rounds=None):
        entry = METHODS[method]
        n = threads or config.default_threads()
        benchmark.extra_info.update(method=method, layers=list(w.layers), batch=w.batch,
                                    activation=w.arch.activation, data=w.data,
                                    threads=threads if entry.compiled else None)

        def call():
            return entry.func(w.params, w.x, w.labels, w.h, n, w.arch)

        # smoke runs pin BLAS to one thread: on a busy machine BLAS's own threads can make
        # the book's loop 10x slower (measured 16 ms against 1.1 ms per loss at load 4 on
        # 2 cores)
        with blas_limits(1 if entry.compiled or benchmark.disabled else None) as blas:
            benchmark.extra_info["blas_threads"] = blas
            if rounds is None:
                return benchmark(call)
            return benchmark.pedantic(call, rounds=rounds, iterations=1)

    return run
