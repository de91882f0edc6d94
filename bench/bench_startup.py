"""Start-up time of the compiled methods, apart from run time.

Each measurement is a fresh Python process running ``import fastgrad`` and a
first gradient (784-50-10, one synthetic sample) with ``NUMBA_CACHE_DIR`` set:
an empty folder (cold: compiles) or one a cold run filled (warm: loads). The
benchmark's time is the whole process; ``extra_info`` splits it into import,
compile or load, and run.
"""

from __future__ import annotations

import numpy as np
import pytest

from fastgrad.bench.startup import measure_startup
from fastgrad.bench.workload import load_workload
from fastgrad.methods import COMPILED_METHODS


@pytest.fixture(scope="session")
def filled_caches():
    """Numba cache folders a cold run has filled, by method."""
    return {}


def _check(method, npz, references, benchmark, out):
    with np.load(npz) as z:
        grad = {k: z[k] for k in z.files}
    references.check(method, grad, load_workload(50, 1, synthetic=True), benchmark)
    benchmark.extra_info.update(out)


@pytest.mark.parametrize("method", COMPILED_METHODS)
def test_cold_start(benchmark, method, tmp_path_factory, filled_caches, references):
    benchmark.group = "start-up: import + first gradient, empty Numba cache"

    def setup():
        cache = tmp_path_factory.mktemp(f"numba-{method}-")
        filled_caches[method] = cache
        return (cache,), {}

    def run(cache):
        return measure_startup(method, cache, save_to=cache / "grad.npz")

    out = benchmark.pedantic(run, setup=setup, rounds=1)
    _check(method, filled_caches[method] / "grad.npz", references, benchmark, out)


@pytest.mark.parametrize("method", COMPILED_METHODS)
def test_warm_start(benchmark, method, tmp_path_factory, filled_caches, references):
    benchmark.group = "start-up: import + first gradient, kernels cached on disk"
    if method not in filled_caches:  # the cold benchmark was deselected: fill one now
        cache = tmp_path_factory.mktemp(f"numba-{method}-")
        measure_startup(method, cache)
        filled_caches[method] = cache
    cache = filled_caches[method]
    out = benchmark.pedantic(measure_startup, args=(method, cache),
                             kwargs={"save_to": cache / "warm.npz"}, rounds=1)
    _check(method, cache / "warm.npz", references, benchmark, out)
