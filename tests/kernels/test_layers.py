"""The ``jit`` method's two first-layer kernels (dense and CSR) and the choice between them.

Tolerance: jit vs the reference, max abs <= 1e-9 (TOL); the two paths agree bitwise
(the sparse kernel is the dense chain without its ``+ 0 * w`` steps).
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest

from fastgrad import compute_gradient, methods
from fastgrad.kernels.layers import FIRST_COLUMNS, FIRST_DENSE, FIRST_SPARSE
from fastgrad.methods import force_jit_path, jit_first_layer
from tests.cases import run_with_four_threads

TOL = 1e-9

#: (sizes, activation, weight decay): widths cover full and short strips of 8 and 4,
#: and the 48-column register block of the sparse kernel (50).
NETS = {
    "two-layer-sigmoid": ([30, 50, 10], "sigmoid", 0.0),
    "two-layer-relu-decay": ([30, 13, 10], "relu", 0.1),
    "depth2-sigmoid-decay": ([30, 13, 9, 10], "sigmoid", 0.05),
    "depth3-relu-decay": ([30, 13, 9, 7, 10], "relu", 0.1),
}

#: Input densities: a faint digit, half lit (both sides of the threshold nearby), all lit.
DENSITIES = {"sparse": 0.1, "half": 0.5, "dense": 1.0}


def batch(n_in, size, density, seed):
    """Inputs spread over negatives and values above 1; each non-zero with ``density``."""
    rng = np.random.default_rng(seed)
    x = 2.0 * rng.standard_normal((size, n_in)) + 0.3
    return np.where(rng.random((size, n_in)) < density, x, 0.0)


def params_of(sizes, seed):
    rng = np.random.default_rng(seed)
    params = {}
    for i in range(1, len(sizes)):
        params[f"W{i}"] = rng.standard_normal((sizes[i - 1], sizes[i])) / np.sqrt(sizes[i - 1])
        params[f"b{i}"] = 0.1 * rng.standard_normal(sizes[i])
    return params


@cache
def case(net, kind):
    """Params, a batch of 9 (a ragged block of 4 samples), labels and the reference."""
    sizes, activation, decay = NETS[net]
    params = params_of(sizes, seed=len(sizes))
    x = batch(sizes[0], 9, DENSITIES[kind], seed=sorted(DENSITIES).index(kind))
    t = np.random.default_rng(5).integers(0, sizes[-1], size=9)
    kwargs = {"activation": activation, "weight_decay": decay}
    ref = compute_gradient("reference", params, x, t, **kwargs)
    return params, x, t, kwargs, ref


def max_abs_diff(a, b):
    assert a.keys() == b.keys()
    return max(float(np.max(np.abs(a[k] - b[k]))) for k in a)


@pytest.mark.parametrize("kind", DENSITIES)
@pytest.mark.parametrize("net", NETS)
def test_both_paths_match_reference(net, kind):
    params, x, t, kwargs, ref = case(net, kind)
    before = {k: v.copy() for k, v in params.items()}
    got = {}
    for path in ("dense", "sparse", None):
        with force_jit_path(path):
            got[path] = compute_gradient("jit", params, x, t, threads=2, **kwargs)
        assert max_abs_diff(got[path], ref) <= TOL, path
    for k in ref:
        np.testing.assert_array_equal(got["dense"][k], got["sparse"][k])
        np.testing.assert_array_equal(got[None][k], got["dense"][k])
        np.testing.assert_array_equal(before[k], params[k])  # params untouched


def test_real_digits_both_paths(mnist_batch):
    """784-12-10 on 7 real digits (a ragged block), both paths against the reference."""
    x, t = mnist_batch
    x, t = np.asarray(x[:7], dtype=np.float64), t[:7]
    params = params_of([784, 12, 10], seed=3)
    ref = compute_gradient("reference", params, x, t)
    for path in ("dense", "sparse"):
        with force_jit_path(path):
            assert max_abs_diff(compute_gradient("jit", params, x, t), ref) <= TOL, path


THREADS_SCRIPT = """
import numpy as np
from fastgrad import compute_gradient
from fastgrad.methods import force_jit_path
from tests.kernels.test_layers import batch, params_of
for sizes, activation in (([40, 50, 10], "sigmoid"), ([40, 13, 9, 7, 10], "relu")):
    params = params_of(sizes, 1)
    x = batch(sizes[0], 10, 0.5, 2)
    t = np.arange(10) % sizes[-1]
    for path in ("dense", "sparse"):
        with force_jit_path(path):
            runs = [compute_gradient("jit", params, x, t, threads=n, activation=activation,
                                     weight_decay=0.1) for n in (1, 2, 3, 4)]
        for r in runs[1:]:
            assert all(np.array_equal(runs[0][k], r[k]) for k in r), (sizes, path)
print("ok")
"""


def test_bitwise_identical_for_any_thread_count_on_both_paths():
    """1 to 4 threads in a process started with 4 (more than this machine has)."""
    run_with_four_threads(THREADS_SCRIPT, timeout=600)


def spread_batch(n_in, blocks, extra):
    """Every column lit in every block of 4 rows (no column to skip): once, and twice in
    the first ``extra`` columns; density ``(n_in + extra) / (4 n_in)``."""
    x = np.zeros((4 * blocks, n_in))
    for c in range(n_in):
        for i in range(2 if c < extra else 1):
            x[(c + i) % 4::4, c] = -1.5 if c % 3 else 2.5
    return x


def kernel_used(monkeypatch, x, path=None):
    """The first-layer kernel code ``jit`` passes to the kernel for ``x``."""
    seen = []
    real = methods.full_gradient

    def spy(theta, sizes, act, xx, first, *rest):
        seen.append(first)
        return real(theta, sizes, act, xx, first, *rest)

    monkeypatch.setattr(methods, "full_gradient", spy)
    params = params_of([x.shape[1], 5, 3], seed=0)
    with force_jit_path(path):
        compute_gradient("jit", params, x, np.arange(x.shape[0]) % 3, threads=1)
    return seen[0]


@pytest.mark.parametrize(("extra", "path"), [(88, "sparse"), (104, "dense"), (120, "dense")])
def test_density_switch(monkeypatch, extra, path):
    """Density 0.36 / 0.38 (exactly the threshold) / 0.40 picks each kernel."""
    x = spread_batch(200, 3, extra)
    assert np.count_nonzero(x) / x.size == (200 + extra) / 800
    assert jit_first_layer(x)[0] == path
    assert jit_first_layer(x)[1].startswith(f"first layer {path} (density ")
    assert kernel_used(monkeypatch, x) == (FIRST_DENSE if path == "dense" else FIRST_SPARSE)


@pytest.mark.parametrize(("lit", "code"), [(0.6, FIRST_COLUMNS), (0.95, FIRST_DENSE)])
def test_dense_path_skips_columns_zero_in_whole_blocks(monkeypatch, lit, code):
    x = np.zeros((10, 200))
    x[:, :round(lit * 200)] = 0.5  # the other columns are zero in every block
    assert jit_first_layer(x)[0] == "dense"
    assert ("skipping columns" in jit_first_layer(x)[1]) == (code == FIRST_COLUMNS)
    assert kernel_used(monkeypatch, x) == code


def test_forced_dense_covers_both_dense_kernels(monkeypatch):
    """The accuracy tests above run every first-layer kernel."""
    _, sparse_x, *_ = case("two-layer-sigmoid", "sparse")
    _, dense_x, *_ = case("two-layer-sigmoid", "dense")
    assert kernel_used(monkeypatch, sparse_x, "dense") == FIRST_COLUMNS
    assert kernel_used(monkeypatch, dense_x, "dense") == FIRST_DENSE
    assert kernel_used(monkeypatch, dense_x, "sparse") == FIRST_SPARSE


def test_force_jit_path_restores_and_validates():
    x = batch(40, 4, 0.05, 0)
    assert jit_first_layer(x)[0] == "sparse"
    with force_jit_path("dense"):
        assert jit_first_layer(x)[0] == "dense"
        assert "forced" in jit_first_layer(x)[1]
        with force_jit_path(None):
            assert jit_first_layer(x)[0] == "sparse"
        assert jit_first_layer(x)[0] == "dense"
    assert jit_first_layer(x)[0] == "sparse"
    with pytest.raises(ValueError, match="path must be one of"), force_jit_path("blas"):
        pass
