"""Fixtures of the benchmark suite: workloads, reference gradients, big-run skipping.

Run the benchmarks with ``pytest bench``; ``pytest bench --benchmark-disable``
runs each body once as a smoke test (validation included) and skips the runs
marked ``big`` unless ``--bench-big`` is given.
"""

from __future__ import annotations

import pytest

from fastgrad import benchmark as fb
from fastgrad.methods import COMPILED_METHODS, METHODS

#: The standard workload: the book's 784-50-10 net on 100 digits.
STANDARD = (50, 100)


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
    a sample of parameters, bitwise equal there and seconds cheaper.
    """

    def __init__(self):
        self._full, self._sampled = {}, {}

    def put(self, workload, grad):
        """Store the reference ``grad`` timed by a benchmark, or check it if present."""
        if workload.key in self._full:
            assert fb.max_abs_error(grad, self._full[workload.key]) == 0.0
        self._full[workload.key] = grad

    def full(self, workload):
        if workload.key not in self._full:
            self._full[workload.key] = fb.compute_reference(workload)[0]
        return self._full[workload.key]

    def sampled(self, workload):
        if workload.key not in self._sampled:
            self._sampled[workload.key] = fb.sampled_reference(workload)
        return self._sampled[workload.key]

    def check(self, method, grad, workload, benchmark=None):
        """Assert ``grad`` agrees with the reference; note how it was checked."""
        standard = (workload.layers[1], workload.batch) == STANDARD
        ref = self.full(workload) if standard else self.sampled(workload)
        err = fb.max_abs_error(grad, ref)
        if benchmark is not None:
            benchmark.extra_info.update(
                max_abs_error=err, data=workload.data,
                validated_on=f"all {workload.n_params} params" if standard
                else f"{ref.size} sampled params")
        tol = fb.tolerance(method)
        assert err <= tol, f"{method} on {workload.label()}: max |error| {err:.3e} > {tol:g}"


@pytest.fixture(scope="session")
def references():
    return References()


@pytest.fixture(scope="session")
def workload():
    """``workload(hidden, batch)``: real MNIST digits when found, else synthetic (labelled)."""
    cache = {}

    def get(hidden=STANDARD[0], batch=STANDARD[1]):
        if (hidden, batch) not in cache:
            cache[hidden, batch] = fb.load_workload(hidden, batch)
        return cache[hidden, batch]

    return get


@pytest.fixture(scope="session")
def warm_kernels():
    """Load (or compile) every Numba kernel once, so no benchmark times that."""
    tiny = fb.load_workload(2, 1, synthetic=True)
    for name in COMPILED_METHODS:
        METHODS[name].func(tiny.params, tiny.x, tiny.labels, tiny.h, 1)
