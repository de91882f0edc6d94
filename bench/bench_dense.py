"""Dense-layer kernels: GFLOP/s against BLAS, sparse vs dense first layer, BLAS in prange.

``pytest bench/bench_dense.py`` (BLAS held at one thread; unset
OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE for NumPy's own numbers). Each benchmark
also checks its result. bench/dense_report.py prints the same comparisons as
a table and the density sweep behind ``dense.DENSE_MIN_DENSITY``.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest
from dense_inputs import (
    DATASETS,
    batch_of,
    blas_affine,
    first_layer,
    layer,
    perturbed_layers,
)
from threadpoolctl import threadpool_limits

from fastgrad import config
from fastgrad.kernels import dense

SHAPES = ((100, 784, 50), (128, 784, 100), (128, 100, 100), (128, 100, 10))
IMPLS = ("affine_packed", "affine", "numpy", "numpy_in_njit")


def _gflops(benchmark, flops):
    stats = getattr(benchmark, "stats", None)
    if stats is not None:  # absent under --benchmark-disable
        benchmark.extra_info["gflops"] = round(flops / stats.stats.min / 1e9, 2)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "{}x{}@{}".format(*s))
def test_matmul(benchmark, shape, impl):
    if impl == "numpy_in_njit":
        pytest.importorskip("scipy", reason="Numba calls BLAS through SciPy")
    batch, n_in, n_out = shape
    rng = np.random.default_rng(0)
    z, W, b = rng.standard_normal((batch, n_in)), rng.standard_normal((n_in, n_out)), \
        rng.standard_normal(n_out)
    Wp = np.empty(dense.packed_size(n_in, n_out))
    dense.pack(W, Wp)
    out = np.empty((batch, n_out))
    runs = {
        "affine_packed": lambda: dense.affine_packed(z, Wp, b, out),
        "affine": lambda: dense.affine(z, W, b, out),
        "numpy": lambda: np.add(np.dot(z, W, out=out), b, out=out),
        "numpy_in_njit": lambda: blas_affine(z, W, b, out),
    }
    benchmark.group = f"dense matmul {batch}x{n_in}@{n_out}"
    with threadpool_limits(1, user_api="blas"):
        benchmark(runs[impl])
    _gflops(benchmark, 2 * batch * n_in * n_out)
    want = z @ W + b
    assert np.max(np.abs(out - want)) <= 1e-12 * np.max(np.abs(want))


@pytest.mark.parametrize("path", ["dense", "csr", "sparse"])
@pytest.mark.parametrize("data", DATASETS)
def test_first_layer(benchmark, data, path):
    x = batch_of(data, 100)
    if x is None:
        pytest.skip(f"{data} test images not found locally")
    W, Wp, b = layer(784, 50)
    benchmark.group = f"first layer 784-50, batch 100, {data}"
    benchmark.extra_info["density"] = round(np.count_nonzero(x) / x.size, 3)
    benchmark.extra_info["dense_min_density"] = dense.DENSE_MIN_DENSITY
    out = benchmark(first_layer(path, x, W, Wp, b))
    np.testing.assert_allclose(out, x @ W + b, rtol=0, atol=1e-12)


@pytest.mark.parametrize("path", ["kernel", "blas"])
def test_in_prange(benchmark, path):
    """The jit method's pattern on all threads; bitwise the same as on one thread."""
    if path == "blas":
        pytest.importorskip("scipy", reason="Numba calls BLAS through SciPy")
    x = np.random.default_rng(0).standard_normal((100, 784))
    W, _Wp, b = layer(784, 50)
    threads = config.max_threads()
    n_items = 64
    args = (x, W, b, n_items, config.n_chunks(threads, n_items), path == "blas")
    benchmark.group = "one dense layer per perturbed weight, in prange"
    with threadpool_limits(1, user_api="blas"):
        previous = numba.get_num_threads()
        try:
            numba.set_num_threads(1)
            one = perturbed_layers(*args)
            numba.set_num_threads(threads)
            many = benchmark(perturbed_layers, *args)
        finally:
            numba.set_num_threads(previous)
    _gflops(benchmark, n_items * 2 * 100 * 784 * 50)
    np.testing.assert_array_equal(many, one)
