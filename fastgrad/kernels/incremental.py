"""Central difference from cached activations: recompute only what ``p`` moves.

Still the finite difference ``(f(theta + h e_p) - f(theta - h e_p)) / 2h``,
evaluated with less work, and every shortcut below is exact up to rounding:

* Perturbing ``W1[i, j]`` (``b1[j]``) moves only hidden unit ``j``, and only in
  samples whose pixel ``i`` is non-zero (in every sample). Perturbing
  ``W2[j, k]`` (``b2[k]``) moves only logit ``k``. Every other sample's loss is
  bitwise the same on both sides, so it cancels in ``f+ - f-`` and is skipped;
  the kernel sums the per-sample differences ``L_n(+) - L_n(-)`` instead.
* ``exp(-(a + hv)) = exp(-a) * exp(-hv)``: ``exp(-a)`` is cached per
  (sample, unit) and ``expm1(-+hv)`` per (sample, pixel), so the perturbed
  sigmoid needs no call to ``exp``; ``z' - z`` is formed without cancellation.
* With the hidden unit moved by ``d`` the softmax denominator (relative to the
  unperturbed one) is ``g(d) = sum_k y_k exp(d w_k)``, ``w = W2[j, :]``, and the
  sample loss is ``log g(d) - log(y_t exp(d w_t) + 1e-7 g(d))``. When
  ``|d| max|w| <= POLY_MAX`` the exponentials are summed through the moments
  ``M_m = sum_k y_k w_k^m`` and ``expm1``/``log1p`` of arguments that small are
  evaluated by their Taylor series; the truncation error (``eps^6/720`` and
  ``u^7/7`` for arguments ``eps``, ``u``) lies below the rounding error of
  evaluating the same sums with ``math.exp``. Outside that range (or for a
  saturated unit, ``exp(-a) = inf``) the kernel recomputes the sample's
  sigmoid and max-shifted softmax from scratch, as the reference does.

So the O(h^2) truncation error of the central difference is kept; only its
rounding noise differs from the reference's (it is smaller).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from fastgrad.config import JIT_OPTIONS, PARALLEL_OPTIONS, SWEEP_OPTIONS
from fastgrad.kernels.forward import LOG_EPS, sample_hidden, sample_logits

#: Largest ``|d| * max|w|`` for which the series below are exact to rounding.
POLY_MAX = 1e-3
#: Largest pre-activation step ``h |v|`` taken by the series path.
STEP_MAX = 1.0
DBL_MAX = np.finfo(np.float64).max

#: Largest ``|u|`` for which the degree-6 ``log1p`` series is exact to rounding
#: (covers the ``2 eps (1 + 3 eps)`` bound on the ratios when ``eps <= POLY_MAX``).
LOG1P_POLY_MAX = 2.01e-3

_I2 = 1.0 / 2.0
_I3 = 1.0 / 3.0
_I4 = 1.0 / 4.0
_I5 = 1.0 / 5.0
_I6 = 1.0 / 6.0
_F3 = 1.0 / 6.0
_F4 = 1.0 / 24.0
_F5 = 1.0 / 120.0


@njit(inline="always", **JIT_OPTIONS)
def expm1_series(u):
    """``expm1(u)`` for ``|u| <= POLY_MAX`` (degree 5)."""
    return u * (1.0 + u * (_I2 + u * (_F3 + u * (_F4 + u * _F5))))


@njit(inline="always", **JIT_OPTIONS)
def _log1p_series(u):
    """``log1p(u)`` for ``|u| <= LOG1P_POLY_MAX`` (degree 6)."""
    return u * (1.0 - u * (_I2 - u * (_I3 - u * (_I4 - u * (_I5 - u * _I6)))))


@njit(inline="always", **JIT_OPTIONS)
def log1p_fast(u):
    """``log1p(u)``: the series near 0 (exact to rounding there, and cheaper), else libm's."""
    if abs(u) <= LOG1P_POLY_MAX:
        return _log1p_series(u)
    return math.log1p(u)


@njit(inline="always", **JIT_OPTIONS)
def logit_shift_diff(y_k, y_t, is_target, m0, x_plus, x_minus):
    """``L(+) - L(-)`` of one sample when only logit ``k`` moves.

    ``x_plus``/``x_minus`` are ``expm1`` of the two logit shifts.
    """
    g1_plus = y_k * x_plus
    g1_minus = y_k * x_minus
    a_minus = y_t + LOG_EPS * (m0 + g1_minus)
    d_a = LOG_EPS * (g1_plus - g1_minus)
    if is_target:
        a_minus += y_t * x_minus
        d_a += y_t * (x_plus - x_minus)
    return log1p_fast((g1_plus - g1_minus) / (m0 + g1_minus)) - log1p_fast(d_a / a_minus)


@njit(**JIT_OPTIONS)
def shifted_loss(logits, w, d, t):
    """``-log(softmax(logits + d w)[t] + 1e-7)``, max-shifted like the reference."""
    m = logits[0] + d * w[0]
    for k in range(1, w.size):
        m = max(m, logits[k] + d * w[k])
    total = 0.0
    for k in range(w.size):
        total += math.exp(logits[k] + d * w[k] - m)
    return -math.log(math.exp(logits[t] + d * w[t] - m) / total + LOG_EPS)


@njit(**JIT_OPTIONS)
def _direct_diff(a, z, step, logits, w, t):
    """``L(+) - L(-)`` of one sample for a hidden-unit shift of ``+-step``, from scratch.

    Recomputes the sample's perturbed sigmoid and max-shifted softmax as the
    reference does; used where the series' range or float64 range ends (large
    steps or weights, saturated units).
    """
    d_p = 1.0 / (1.0 + math.exp(-(a + step))) - z
    d_m = 1.0 / (1.0 + math.exp(-(a - step))) - z
    return shifted_loss(logits, w, d_p, t) - shifted_loss(logits, w, d_m, t)


@njit(inline="always", **JIT_OPTIONS)
def _series_diff(e, z, em_p, em_m, m0, m1, m2, m3, m4, m5, y_t, w_t, a_base):
    """``L(+) - L(-)`` of one sample for a hidden-unit shift, by the series.

    ``em_p``/``em_m`` are ``expm1`` of minus the two pre-activation shifts;
    ``m0..m5`` the moments (``m_k`` already divided by ``k!``).
    """
    d_p = -e * em_p * z / (1.0 + e + e * em_p)
    d_m = -e * em_m * z / (1.0 + e + e * em_m)
    return linear_series_diff(d_p, d_m, m0, m1, m2, m3, m4, m5, y_t, w_t, a_base)


@njit(inline="always", **JIT_OPTIONS)
def linear_series_diff(d_p, d_m, m0, m1, m2, m3, m4, m5, y_t, w_t, a_base):
    """``L(+) - L(-)`` of one sample whose logits move by ``d+- * w`` (the unit's outputs
    moved by ``d+-``), summed through the moments ``m_k / k!`` of ``w``."""
    g1_p = d_p * (m1 + d_p * (m2 + d_p * (m3 + d_p * (m4 + d_p * m5))))
    g1_m = d_m * (m1 + d_m * (m2 + d_m * (m3 + d_m * (m4 + d_m * m5))))
    x_p = expm1_series(d_p * w_t)
    x_m = expm1_series(d_m * w_t)
    d_g = g1_p - g1_m
    u_g = d_g / (m0 + g1_m)
    u_a = (y_t * (x_p - x_m) + LOG_EPS * d_g) / (a_base + y_t * x_m + LOG_EPS * g1_m)
    return _log1p_series(u_g) - _log1p_series(u_a)


@njit(**PARALLEL_OPTIONS)
def cached_activations(W1, b1, W2, b2, indptr, indices, values, labels, h, pre, exp_neg_a1, z1,
                       logits, y, em_plus, em_minus, v_max, gb2_rows):
    """Phase 1, parallel over samples: the unperturbed activations the sweep reuses.

    Also each sample's ``L(+) - L(-)`` for every output bias (``gb2_rows``),
    summed over samples in order by :func:`finish`.
    """
    n_hidden = W1.shape[1]
    n_out = W2.shape[1]
    n_samples = labels.size
    x_plus_bias = math.expm1(h)
    x_minus_bias = math.expm1(-h)
    for n in prange(n_samples):
        a1 = np.empty(n_hidden)
        a2 = np.empty(n_out)
        sample_hidden(W1, b1, indptr, indices, values, n, a1)
        for j in range(n_hidden):
            e = math.exp(-a1[j])
            pre[n, j] = a1[j]
            exp_neg_a1[n, j] = e
            z1[n, j] = 1.0 / (1.0 + e)
        sample_logits(W2, b2, z1[n], a2)
        logits[n, :] = a2
        m = a2[0]
        for k in range(1, n_out):
            m = max(m, a2[k])
        total = 0.0
        for k in range(n_out):
            a2[k] = math.exp(a2[k] - m)
            total += a2[k]
        for k in range(n_out):
            y[n, k] = a2[k] / total
        v_max[n] = 0.0
        for q in range(indptr[n], indptr[n + 1]):
            em_plus[q] = math.expm1(-h * values[q])
            em_minus[q] = math.expm1(h * values[q])
            v_max[n] = max(v_max[n], abs(values[q]))
        t = labels[n]
        m0 = 0.0
        for k in range(n_out):
            m0 += y[n, k]
        for k in range(n_out):
            gb2_rows[n, k] = logit_shift_diff(y[n, k], y[n, t], k == t, m0, x_plus_bias,
                                               x_minus_bias)


@njit(**SWEEP_OPTIONS)
def hidden_sweep(W2, indptr, indices, values, labels, h, pre, exp_neg_a1, z1, logits, y, em_plus,
                 em_minus, v_max, gW1_t, gb1, gW2, scale):
    """Phase 2, parallel over hidden units: sum ``L_n(+) - L_n(-)`` for W1, b1, W2.

    Row ``j`` of ``gW1_t`` (``W1[:, j]``), ``gb1[j]`` and ``gW2[j]`` are
    written only by the iteration of unit ``j``; ``gb1`` and ``gW2`` come out
    scaled by ``scale``, ``gW1_t`` unscaled (see :func:`finish`).
    """
    n_hidden, n_out = W2.shape
    n_samples = labels.size
    max_row = 1
    for n in range(n_samples):
        max_row = max(max_row, indptr[n + 1] - indptr[n])
    bias_em_plus = math.expm1(-h)
    bias_em_minus = math.expm1(h)

    for j in prange(n_hidden):
        gW1_t[j, :] = 0.0
        gb1[j] = 0.0
        gW2[j, :] = 0.0
        tmp = np.empty(max_row)
        w = W2[j]
        w_max = 0.0
        for k in range(n_out):
            w_max = max(w_max, abs(w[k]))
        for n in range(n_samples):
            e = exp_neg_a1[n, j]
            z = z1[n, j]
            t = labels[n]
            y_row = y[n]
            y_t = y_row[t]
            w_t = w[t]
            m0 = 0.0
            m1 = 0.0
            m2 = 0.0
            m3 = 0.0
            m4 = 0.0
            m5 = 0.0
            for k in range(n_out):
                wk = w[k]
                p = y_row[k]
                m0 += p
                p *= wk
                m1 += p
                p *= wk
                m2 += p
                p *= wk
                m3 += p
                p *= wk
                m4 += p
                p *= wk
                m5 += p
            m2 *= _I2
            m3 *= _F3
            m4 *= _F4
            m5 *= _F5
            a_base = y_t + LOG_EPS * m0
            start = indptr[n]
            stop = indptr[n + 1]
            # |z' - z| <= |hv| / 4 (the sigmoid's slope is at most 1/4). The
            # series also needs exp(-a) and expm1(+-hv) finite and hv small.
            step_max = h * max(v_max[n], 1.0)
            series_ok = (0.25 * step_max * w_max <= POLY_MAX and step_max <= STEP_MAX
                         and e <= DBL_MAX)
            if series_ok:
                for q in range(start, stop):
                    tmp[q - start] = _series_diff(
                        e, z, em_plus[q], em_minus[q], m0, m1, m2, m3, m4, m5, y_t, w_t, a_base
                    )
                for q in range(start, stop):
                    gW1_t[j, indices[q]] += tmp[q - start]
                gb1[j] += _series_diff(
                    e, z, bias_em_plus, bias_em_minus, m0, m1, m2, m3, m4, m5, y_t, w_t, a_base
                )
            else:
                a = pre[n, j]
                for q in range(start, stop):
                    gW1_t[j, indices[q]] += _direct_diff(a, z, h * values[q], logits[n], w, t)
                gb1[j] += _direct_diff(a, z, h, logits[n], w, t)
            # W2[j, k] moves logit k by +-h z.
            x_plus = math.expm1(h * z)
            x_minus = math.expm1(-h * z)
            for k in range(n_out):
                gW2[j, k] += logit_shift_diff(y_row[k], y_t, k == t, m0, x_plus, x_minus)
        gb1[j] *= scale
        for k in range(n_out):
            gW2[j, k] *= scale


@njit(**PARALLEL_OPTIONS)
def finish(gW1_t, gb2_rows, scale, gW1, gb2):
    """Phase 3: ``gW1`` from its transposed sums (parallel over rows), ``gb2`` in sample order."""
    n_hidden, n_in = gW1_t.shape
    for i in prange(n_in):
        for j in range(n_hidden):
            gW1[i, j] = gW1_t[j, i] * scale
    gb2[:] = 0.0
    for n in range(gb2_rows.shape[0]):
        for k in range(gb2.size):
            gb2[k] += gb2_rows[n, k]
    for k in range(gb2.size):
        gb2[k] *= scale
