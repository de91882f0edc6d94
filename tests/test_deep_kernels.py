"""The deep kernel's building blocks against NumPy (float64) and longdouble witnesses.

The whole gradient is held to the reference in test_multilayer.py and
test_witness.py; here each new piece is checked on its own, where an error
cannot hide behind the others: the masked product of the backward passes,
the directions and margins of the ReLU preparation, the odd series of a
linear (unit, sample), and the batched recomputation from scratch.
"""

from __future__ import annotations

import numpy as np
import pytest

from fastgrad import compute_gradient
from fastgrad.kernels import deep, dense
from fastgrad.kernels.forward import dense_to_csr
from fastgrad.kernels.layers import RELU
from fastgrad.methods import _flatten, _weight_norms
from tests.test_multilayer import deep_case, max_abs_diff
from tests.witness import EXTENDED, LD

TOL = 1e-9


@pytest.mark.parametrize(("rows", "n_in", "n_out"), [(1, 3, 2), (5, 9, 10), (7, 13, 14),
                                                     (100, 100, 18)])
def test_affine_selected_is_the_masked_product(rows, n_in, n_out):
    rng = np.random.default_rng(rows + n_in)
    z = rng.standard_normal((rows, n_in))
    W = rng.standard_normal((n_in, n_out))
    keep = np.flatnonzero(rng.random(n_in) < 0.5).astype(np.int64)
    Wp = np.empty(dense.packed_size(n_in, n_out))
    dense.pack(W, Wp)
    out = np.full((rows, n_out), np.nan)
    dense.affine_selected(z, keep, keep.size, Wp, out)
    want = z[:, keep] @ W[keep, :]
    assert np.max(np.abs(out - want)) <= 1e-12 * max(1.0, np.max(np.abs(want)))
    # bitwise the dense product with the other rows of W zeroed (a ReLU mask)
    masked = np.zeros_like(W)
    masked[keep] = W[keep]
    dense.pack(masked, Wp)
    full = np.empty((rows, n_out))
    dense.affine_packed(z, Wp, np.zeros(n_out), full)
    np.testing.assert_array_equal(out, full)


def _relu_prepare(sizes, batch, seed, h=1e-4):
    params, x, t = deep_case(sizes, batch, seed=seed)
    theta, sizes_arr = _flatten(params)
    spec, colmax = _weight_norms(params)
    indptr, indices, values = dense_to_csr(np.ascontiguousarray(x, dtype=np.float64))
    labels = np.asarray(t, dtype=np.int64)
    cache = deep.deep_prepare(theta, sizes_arr, RELU, indptr, indices, values, labels, h, spec,
                              colmax)
    return params, x, labels, cache


def _forward(params, x, count):
    """Pre-activations of every layer (NumPy, ReLU)."""
    pre, z = [], x
    for i in range(1, count + 1):
        a = z @ params[f"W{i}"] + params[f"b{i}"]
        pre.append(a)
        z = np.maximum(a, 0.0)
    return pre


def _moved(params, pre, n, layer, j, d):
    """Pre-activations above ``layer`` of sample ``n`` with unit ``j`` moved by ``d``."""
    out = []
    z = np.maximum(pre[layer][n], 0.0)
    z[j] += d
    for i in range(layer + 2, len(pre) + 1):
        a = z @ params[f"W{i}"] + params[f"b{i}"]
        out.append(a)
        z = np.maximum(a, 0.0)
    return out


def test_relu_directions_and_margins():
    """``dirs`` are d logits / d z through the masks; within the margin no unit above
    changes side of zero, and the logits move by exactly ``d * dirs``."""
    sizes = [12, 9, 8, 7, 6, 4]
    params, x, labels, cache = _relu_prepare(sizes, 10, seed=7)
    _, _, unit_off, pre_c, _, _, _, _, dirs, margins = cache[:10]
    count = len(sizes) - 1
    pre = _forward(params, x, count)
    for layer in range(count - 1):
        np.testing.assert_allclose(pre_c[:, layer, :sizes[layer + 1]], pre[layer], rtol=0,
                                   atol=1e-12)
    checked = 0
    for n in range(x.shape[0]):
        for layer in range(count - 1):
            for j in range(sizes[layer + 1]):
                u = unit_off[layer] + j
                reach = margins[n, u]
                assert reach > 0.0
                for d in (-min(reach, 1.0), min(reach, 1.0)):
                    d = 0.999 * d
                    moved = _moved(params, pre, n, layer, j, d)
                    for above, a in zip(range(layer + 1, count - 1), moved[:-1], strict=True):
                        assert np.all((a > 0) == (pre[above][n] > 0)), (n, layer, j, d)
                    shift = moved[-1] - pre[-1][n]
                    np.testing.assert_allclose(shift, d * dirs[n, u], rtol=1e-9, atol=1e-12)
                    checked += 1
    assert checked > 500


def test_critical_units_lengthen_the_margin():
    """The exact sensitivities of the units nearest zero give margins the norm bound alone
    would not: some margin exceeds its norm-only bound."""
    sizes = [12, 9, 8, 7, 6, 4]
    params, x, labels, cache = _relu_prepare(sizes, 10, seed=7)
    _, _, unit_off, pre_c, _, _, _, _, _, margins, mu = cache[:11]
    spec, colmax = _weight_norms(params)
    n_hidden = len(sizes) - 2
    longer = 0
    for n in range(x.shape[0]):
        for layer in range(n_hidden - 2):  # units with a layer l' >= 2 two above
            W = params[f"W{layer + 2}"]
            for j in range(sizes[layer + 1]):
                rho = np.sqrt(np.sum(W[j] ** 2 * (pre_c[n, layer + 1, :sizes[layer + 2]] > 0)))
                gain, bound = rho, np.inf
                for lp in range(layer + 2, n_hidden):  # every unit of l' by the norm
                    if gain * colmax[lp] > 0.0:
                        bound = min(bound, mu[n, lp] / (gain * colmax[lp]))
                    gain *= spec[lp]
                longer += margins[n, unit_off[layer] + j] > deep.MARGIN_SHARE * bound
    assert longer > 0


def _loss_ld(logits, t):
    """The reference's sample loss in longdouble."""
    z = logits - np.max(logits)
    e = np.exp(z)
    return -np.log(e[t] / np.sum(e) + LD(1e-7))


@pytest.mark.skipif(not EXTENDED, reason="np.longdouble is float64 here")
@pytest.mark.parametrize("seed", range(4))
def test_linear_coefficients_are_the_central_difference(seed):
    """``c1 v + c3 v^3 + c5 v^5`` = ``L(+) - L(-)`` of logits moved by ``+-h v w`` up to
    ``h |v| max|w - w_t| = POLY_MAX``, where the c3 term weighs far above rounding."""
    rng = np.random.default_rng(seed)
    n_out = 10
    logits = 3.0 * rng.standard_normal(n_out)
    t = int(rng.integers(n_out))
    w = rng.standard_normal((3, n_out))
    y = np.exp(logits - logits.max())
    y /= y.sum()
    m0 = float(np.sum(y))
    h = 1e-4
    lin = np.empty((3, 1, 4))
    deep._linear_coefficients(w, y, m0, t, h, lin, 0)
    for u in range(3):
        c1, c3, c5, dev = lin[u, 0]
        assert dev == np.max(np.abs(w[u] - w[u, t]))
        for v in (0.3, deep.POLY_MAX / (h * dev)):
            s = LD(h) * LD(v)
            want = (_loss_ld(logits.astype(LD) + s * w[u].astype(LD), t)
                    - _loss_ld(logits.astype(LD) - s * w[u].astype(LD), t))
            got = v * (c1 + v * v * (c3 + v * v * c5))
            # longdouble's own rounding of losses ~1 is ~1e-19, of a difference ~1e-5: 1e-14
            assert abs(got - float(want)) <= 1e-12 * abs(float(want))
        # at the edge the c3 term is far above that: the series is the difference, not 2 h L'
        assert abs(v * c1 - float(want)) > 1e-10 * abs(float(want))


def test_recomputed_inputs_in_batches_of_pending():
    """Saturated sigmoid units send every input to the from-scratch path: more than
    PENDING per (unit, sample), flushed mid-sample, match the reference."""
    sizes = [3 * deep.PENDING, 6, 5, 4]
    params, x, t = deep_case(sizes, 3, seed=12, density=1.0)
    params["W1"] *= 600.0
    ref = compute_gradient("reference", params, x, t, activation="sigmoid")
    got = compute_gradient("incremental", params, x, t, activation="sigmoid")
    assert max_abs_diff(got, ref) <= TOL


def test_interleaved_units_is_a_permutation_mixing_layers():
    unit_off = np.array([0, 100, 200, 300, 400], dtype=np.int64)
    order = deep.interleaved_units(unit_off)
    assert sorted(order.tolist()) == list(range(400))
    halves = [order[:200] // 100, order[200:] // 100]
    assert all(np.bincount(half, minlength=4).tolist() == [50] * 4 for half in halves)


def test_reference_relu_gradient_still_met_on_a_wider_net():
    """Widths above the dense kernel's strips (ragged tails), batch not a multiple of BLOCK."""
    sizes = [30, 21, 17, 13, 11, 5]
    params, x, t = deep_case(sizes, deep.BLOCK + 3, seed=21, std=0.4)
    for activation in ("relu", "sigmoid"):
        ref = compute_gradient("reference", params, x, t, activation=activation)
        got = compute_gradient("incremental", params, x, t, activation=activation)
        assert max_abs_diff(got, ref) <= TOL, activation


def _cubic(logits, c, d):
    """Logits moved by ``c[0] d + c[1] d^2 + c[2] d^3`` in longdouble."""
    d = LD(d)
    return logits.astype(LD) + d * (c[0] + d * (c[1] + d * c[2]))


@pytest.mark.skipif(not EXTENDED, reason="np.longdouble is float64 here")
@pytest.mark.parametrize("seed", range(4))
def test_sigmoid_series_is_the_loss_difference(seed):
    """``sum_m l_m (d+^m - d-^m)`` = ``L(+) - L(-)`` when the logits move by the cubic
    ``P(d)`` of their Taylor coefficients, up to ``|d| dev = POLY_MAX``."""
    rng = np.random.default_rng(seed)
    n_out = 10
    logits = 3.0 * rng.standard_normal(n_out)
    t = int(rng.integers(n_out))
    coefs = rng.standard_normal((3, 3, n_out)) * np.array([1.0, 0.3, 0.1])[None, :, None]
    y = np.exp(logits - logits.max())
    y /= y.sum()
    m0 = float(np.sum(y))
    sig = np.empty((3, 1, 7))
    deep._sigmoid_series(coefs, y, m0, t, sig, 0)
    for u in range(3):
        c = coefs[u].astype(LD)
        dev, rho = sig[u, 0, 5], sig[u, 0, 6]
        assert dev == np.max(np.abs(coefs[u, 0] - coefs[u, 0, t]))
        for scale in (0.05, 1.0):
            d_p = scale * deep.POLY_MAX / max(dev, rho)
            d_m = -0.9 * d_p  # a sigmoid's two moves differ

            want = float(_loss_ld(_cubic(logits, c, d_p), t) - _loss_ld(_cubic(logits, c, d_m), t))
            got = deep._series5(sig[u, 0], d_p) - deep._series5(sig[u, 0], d_m)
            # 1e-18: longdouble's own rounding of losses ~1; each l_m weighs more at the edge
            assert abs(got - want) <= 2e-14 * abs(want) + 1e-18
