"""The dense-layer kernels against NumPy, and their bitwise determinism."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from numba import njit, prange

from fastgrad import config, functions
from fastgrad.kernels import dense
from fastgrad.kernels.forward import dense_to_csr

#: Relative tolerance against NumPy's BLAS (a different summation order).
REL_TOL = 1e-12
#: Relative tolerance of a compiled sigmoid against NumPy's: a few ulp, as the two
#: ``exp`` implementations may differ in the last bit (sigmoid's values lie in (0, 1]).
SIGMOID_REL_TOL = 4 * np.finfo(np.float64).eps

SHAPES = [  # (batch, n_in, n_out): ragged tails in every dimension
    (1, 1, 1), (2, 3, 4), (3, 5, 5), (4, 8, 8), (5, 13, 9), (7, 2, 12), (8, 17, 13),
    (9, 784, 10), (100, 784, 50), (6, 100, 100), (11, 50, 3),
]


def _problem(batch, n_in, n_out, seed=0):
    """Inputs spread over negatives and values above 1, like standardised data."""
    rng = np.random.default_rng(seed)
    z = 3.0 * rng.standard_normal((batch, n_in))
    W = rng.standard_normal((n_in, n_out))
    b = rng.standard_normal(n_out)
    return z, W, b


def _affine(z, W, b):
    out = np.full((z.shape[0], W.shape[1]), np.nan)
    dense.affine(z, W, b, out)
    return out


def _rel_err(got, want):
    return np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-300)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_affine_matches_numpy(shape):
    z, W, b = _problem(*shape)
    copies = [a.copy() for a in (z, W, b)]
    out = _affine(z, W, b)
    assert _rel_err(out, z @ W + b) <= REL_TOL
    for before, after in zip(copies, (z, W, b), strict=True):
        np.testing.assert_array_equal(before, after)  # inputs untouched


def test_affine_on_sparse_nonnegative_inputs():
    z, W, b = _problem(10, 784, 50, seed=1)
    z = np.where(z > 2.5, np.abs(z) / 10, 0.0)  # ~1% lit, like a faint digit
    assert _rel_err(_affine(z, W, b), z @ W + b) <= REL_TOL


@pytest.mark.parametrize("shape", SHAPES[:9], ids=lambda s: "x".join(map(str, s)))
def test_packed_path_and_index(shape):
    batch, n_in, n_out = shape
    z, W, b = _problem(*shape, seed=2)
    Wp = np.empty(dense.packed_size(n_in, n_out))
    dense.pack(W, Wp)
    for k in range(n_in):
        for j in range(n_out):
            assert Wp[dense.packed_index(n_in, n_out, k, j)] == W[k, j]
    out = np.empty((batch, n_out))
    dense.affine_packed(z, Wp, b, out)
    np.testing.assert_array_equal(out, _affine(z, W, b))
    # perturbing the packed copy in place is the same as packing the perturbed W
    k, j = n_in - 1, n_out - 1
    Wp[dense.packed_index(n_in, n_out, k, j)] += 0.5
    W2 = W.copy()
    W2[k, j] += 0.5
    dense.affine_packed(z, Wp, b, out)
    np.testing.assert_array_equal(out, _affine(z, W2, b))


SPARSE_SHAPES = SHAPES + [(3, 40, 48), (4, 30, 96), (5, 20, 101), (2, 9, 52)]


@pytest.mark.parametrize("density", [0.0, 0.2, 1.0])
@pytest.mark.parametrize("shape", SPARSE_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_sparse_affine_matches_numpy_and_dense_bitwise(shape, density):
    batch, n_in, n_out = shape
    z, W, b = _problem(*shape, seed=8)
    z[np.random.default_rng(9).random(z.shape) >= density] = 0.0
    z[0] = 0.0  # an empty row
    Wp = np.empty(dense.packed_size(n_in, n_out))
    dense.pack(W, Wp)
    out = np.full((batch, n_out), np.nan)
    dense.sparse_affine(*dense_to_csr(z), W, Wp, b, out)
    assert _rel_err(out, z @ W + b) <= REL_TOL
    np.testing.assert_array_equal(out, _affine(z, W, b))


def test_padding_is_zero():
    W = np.ones((3, 5))
    Wp = np.full(dense.packed_size(3, 5), np.nan)
    dense.pack(W, Wp)
    assert Wp.size == 3 * 8 and np.sum(Wp) == 15.0 and not np.isnan(Wp).any()


def test_result_independent_of_position_in_batch():
    """Each sample goes through the same FMA chain wherever it sits (tails included)."""
    z, W, b = _problem(23, 37, 21, seed=3)
    whole = _affine(z, W, b)
    for s in range(z.shape[0]):
        np.testing.assert_array_equal(_affine(z[s:s + 1], W, b)[0], whole[s])
    perm = np.random.default_rng(4).permutation(z.shape[0])
    np.testing.assert_array_equal(_affine(z[perm], W, b), whole[perm])


@njit(**{**config.PARALLEL_OPTIONS, "cache": False})
def _perturbed_outputs(z, W, b, n_items):
    """One perturbed W per item (like the jit method), run in a prange."""
    n_in, n_out = W.shape
    res = np.empty((n_items, z.shape[0], n_out))
    for i in prange(n_items):
        mine = W.copy()
        mine[i % n_in, i % n_out] += 1e-4
        dense.affine(z, mine, b, res[i])
        dense.sigmoid_(res[i])
    return res


def test_bitwise_same_for_any_thread_count():
    z, W, b = _problem(10, 30, 11, seed=5)
    runs = []
    for threads in sorted({1, config.max_threads()}):
        previous = numba.get_num_threads()
        numba.set_num_threads(threads)
        try:
            runs.append(_perturbed_outputs(z, W, b, 12))
        finally:
            numba.set_num_threads(previous)
    for run in runs[1:]:
        np.testing.assert_array_equal(run, runs[0])
    # against NumPy only to rounding: Numba's vectorised exp is not NumPy's on every
    # CPU (the last bit differs on some), while a wrong perturbation is off by ~1e-5
    serial = np.stack([_affine(z, W + _delta(W.shape, i), b) for i in range(12)])
    want = functions.sigmoid(serial)
    assert np.max(np.abs(runs[0] - want) / want) <= SIGMOID_REL_TOL


def _delta(shape, i):
    d = np.zeros(shape)
    d[i % shape[0], i % shape[1]] = 1e-4
    return d


def test_non_c_contiguous_input_is_a_typing_error():
    z, W, b = _problem(4, 8, 8)
    with pytest.raises(numba.core.errors.TypingError):
        dense.affine(np.asfortranarray(z), W, b, np.empty((4, 8)))


def test_activations_in_place():
    a = 40.0 * np.random.default_rng(6).standard_normal((7, 9))
    a[0, :3] = [0.0, -0.0, 800.0]
    a[1, 0] = -800.0  # exp overflows to inf: sigmoid gives exactly 0, as in NumPy
    s = a.copy()
    dense.sigmoid_(s)
    with np.errstate(over="ignore"):
        np.testing.assert_allclose(s, functions.sigmoid(a), rtol=1e-15, atol=0)
    r = a.copy()
    dense.relu_(r)
    np.testing.assert_array_equal(r, np.where(a > 0, a, 0.0))
    nan = np.array([np.nan, -1.0, 2.0])
    dense.relu_(nan)
    np.testing.assert_array_equal(nan, [0.0, 0.0, 2.0])


@pytest.mark.parametrize("scale", [1.0, 50.0])
def test_loss_from_logits_matches_reference(scale):
    rng = np.random.default_rng(7)
    logits = scale * rng.standard_normal((13, 10))
    labels = rng.integers(0, 10, size=13).astype(np.uint8)
    want = functions.cross_entropy_error(functions.softmax(logits), labels)
    got = dense.loss_from_logits(logits, labels)
    assert abs(got - want) <= REL_TOL * abs(want)
