"""Central difference for networks of any depth from cached activations.

Still ``(f(theta + h e_p) - f(theta - h e_p)) / 2h`` for every parameter, with
less work; the shortcuts are exact up to rounding, as in the two-layer kernel
(:mod:`fastgrad.kernels.incremental`, whose series this module reuses):

* A parameter of hidden unit ``j`` of layer ``l`` (a row entry of ``W_l`` or
  ``b_l[j]``) moves only that unit's pre-activation, by ``+-h v`` in the
  samples whose input ``v`` is non-zero; the unit's output moves by ``d+-``.
  Every other sample cancels exactly in ``f+ - f-`` and is skipped.
* *Linear case* (ReLU layers above, or ``l`` the top hidden layer): as long as
  no unit above changes side of zero, the logits move by ``d * w`` along a
  fixed per-sample direction ``w = d logits / d z_l[j]`` (a backward pass
  through the ReLU masks), and the softmax terms are summed through the moments
  of ``w`` as in the two-layer kernel. The margin ``|d| < R[n, u]`` that rules
  out a crossing is exact for the next layer (``|a_{l+1, k}| / |W_{l+1}[j, k]|``)
  and for the :data:`CRITICAL` units closest to zero in each layer further up
  (their exact sensitivities, by backward passes); the others are bounded by
  norms (``||dz||_2 <= |d| rho``, ``||W||_2``, largest column norm). Half of
  that margin is used; a perturbation beyond it recomputes the sample's upper
  layers from scratch.
* *Sigmoid case* (sigmoid layers above): the logits are a smooth function of
  ``d``; their Taylor coefficients up to ``d^3`` are carried forward through the
  layers above (chain rule on the sigmoid's series). With ``|d| * rho <=
  POLY_MAX`` (``rho`` the coefficients' growth ratio) the omitted terms are of
  order ``(|d| rho)^4 |d G1|``; odd terms decide the central difference, even
  ones cancel to leading order, so the omission lies below rounding. Beyond
  that, or for saturated units, the sample is recomputed from scratch.
* Output-layer parameters move one logit: the two-layer kernel's formula.

Only rounding differs from the reference; the O(h^2) truncation is kept.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from fastgrad.config import JIT_OPTIONS, PARALLEL_OPTIONS, SWEEP_OPTIONS
from fastgrad.kernels.forward import LOG_EPS, sample_hidden, sample_log_prob
from fastgrad.kernels.incremental import (
    DBL_MAX,
    POLY_MAX,
    STEP_MAX,
    expm1_series,
    linear_series_diff,
    log1p_fast,
    logit_shift_diff,
    shifted_loss,
)
from fastgrad.kernels.layers import RELU, activate, bias, dense_affine, offsets, weight

#: Units per layer and sample whose crossing of zero is checked exactly.
CRITICAL = 4
#: Share of the proven no-crossing margin that the linear case uses.
MARGIN_SHARE = 0.5
_F3 = 1.0 / 6.0
_F4 = 1.0 / 24.0
_F5 = 1.0 / 120.0


@njit(inline="always", **JIT_OPTIONS)
def _expm1(u):
    if abs(u) <= POLY_MAX:
        return expm1_series(u)
    return math.expm1(u)


@njit(inline="always", **JIT_OPTIONS)
def _relu_shift(a, s):
    """``relu(a + s) - relu(a)``, exactly ``s`` when no kink lies between."""
    if a > 0.0:
        return s if a + s > 0.0 else -a
    return a + s if a + s > 0.0 else 0.0


@njit(inline="always", **JIT_OPTIONS)
def _sigmoid_shift(a, e, z, s, em):
    """``sigmoid(a + s) - sigmoid(a)`` with ``e = exp(-a)``, ``em = expm1(-s)``.

    Formed without cancellation where ``exp(-a)`` is finite and the step moderate.
    """
    if e <= DBL_MAX and abs(s) <= STEP_MAX:
        return -e * em * z / (1.0 + e + e * em)
    return 1.0 / (1.0 + math.exp(-(a + s))) - z


@njit(**JIT_OPTIONS)
def _poly_diff(coef, d_p, d_m, y_row, t, m0, a_base):
    """``L(+) - L(-)`` when the logits move by ``sum_m coef[m] d^(m+1)`` (m < 3)."""
    d_g = 0.0
    g_m = 0.0
    x_p = 0.0
    x_m = 0.0
    for k in range(y_row.size):
        e_p = _expm1(d_p * (coef[0, k] + d_p * (coef[1, k] + d_p * coef[2, k])))
        e_m = _expm1(d_m * (coef[0, k] + d_m * (coef[1, k] + d_m * coef[2, k])))
        d_g += y_row[k] * (e_p - e_m)
        g_m += y_row[k] * e_m
        if k == t:
            x_p = e_p
            x_m = e_m
    y_t = y_row[t]
    u_g = d_g / (m0 + g_m)
    u_a = (y_t * (x_p - x_m) + LOG_EPS * d_g) / (a_base + y_t * x_m + LOG_EPS * g_m)
    return log1p_fast(u_g) - log1p_fast(u_a)


@njit(**JIT_OPTIONS)
def _upper_loss(theta, sizes, w_off, b_off, act, pre_n, layer, j, d, label, cur, nxt):
    """Loss of one sample with hidden unit ``j`` of ``layer`` moved by ``d``, from scratch.

    ``pre_n`` holds the sample's unperturbed pre-activations (row ``l`` =
    layer ``l``); the layers above ``layer`` are recomputed as the reference does.
    """
    count = sizes.size - 1
    W = weight(theta, sizes, w_off, layer + 1)
    for k in range(sizes[layer + 2]):
        cur[k] = pre_n[layer + 1, k] + d * W[j, k]
    for m in range(layer + 2, count):
        width = sizes[m]
        for k in range(width):
            cur[k] = activate(cur[k], act)
        dense_affine(cur[:width], weight(theta, sizes, w_off, m), bias(theta, sizes, b_off, m),
                     nxt[:sizes[m + 1]])
        cur, nxt = nxt, cur
    return -sample_log_prob(cur[:sizes[count]], label)


@njit(inline="always", **JIT_OPTIONS)
def _unit(unit_off, u):
    """``(layer, j)`` of hidden unit ``u`` counted over all hidden layers."""
    layer = 0
    while unit_off[layer + 1] <= u:
        layer += 1
    return layer, u - unit_off[layer]


@njit(**JIT_OPTIONS)
def _vector_shift_loss(logits, shift, t):
    """``-log(softmax(logits + shift)[t] + 1e-7)``, max-shifted like the reference."""
    m = logits[0] + shift[0]
    for k in range(1, logits.size):
        m = max(m, logits[k] + shift[k])
    total = 0.0
    for k in range(logits.size):
        total += math.exp(logits[k] + shift[k] - m)
    return -math.log(math.exp(logits[t] + shift[t] - m) / total + LOG_EPS)


@njit(**JIT_OPTIONS)
def _next_layer_loss(theta, sizes, w_off, pre_n, mu_n, spec, colmax, dirs_n, unit_off, layer, j,
                     d, t, dz, shift):
    """Loss with ReLU unit ``j`` of ``layer`` moved by ``d``, next layer's kinks exact.

    The next layer's units are moved exactly (crossing zero or not); above it
    the logits move linearly along the cached directions, which holds when the
    norm bound keeps every unit further up on its side of zero. Returns NaN
    when that bound fails (the caller then recomputes from scratch).
    """
    count = sizes.size - 1
    above = layer + 1
    W = weight(theta, sizes, w_off, above)
    norm2 = 0.0
    for k in range(sizes[above + 1]):
        a = pre_n[above, k]
        moved = a + d * W[j, k]
        dz[k] = (moved if moved > 0.0 else 0.0) - (a if a > 0.0 else 0.0)
        norm2 += dz[k] * dz[k]
    gain = math.sqrt(norm2)
    for m in range(above + 1, count - 1):
        if gain * colmax[m] >= MARGIN_SHARE * mu_n[m]:
            return np.nan
        gain *= spec[m]
    shift[:] = 0.0
    for k in range(sizes[above + 1]):
        if dz[k] != 0.0:
            shift += dz[k] * dirs_n[unit_off[above] + k]
    return _vector_shift_loss(pre_n[count - 1, :sizes[count]], shift, t)


@njit(**JIT_OPTIONS)
def _relu_margins(theta, sizes, w_off, pre_n, unit_off, spec, colmax, margin_n, rc, svec, snext):
    """Fill ``margin_n[u]``: how far each hidden unit may move with no ReLU above crossing 0."""
    count = sizes.size - 1
    n_hidden = count - 1
    margin_n[:] = np.inf
    rc[:] = np.inf
    # exact sensitivities of the CRITICAL units nearest zero in layers l' >= 2 (0-based)
    tau = np.full(n_hidden, np.inf)
    for lp in range(2, n_hidden):
        width = sizes[lp + 1]
        order = np.argsort(np.abs(pre_n[lp, :width]))
        if width > CRITICAL:
            tau[lp] = abs(pre_n[lp, order[CRITICAL]])
        for c in range(min(CRITICAL, width)):
            k = order[c]
            size = abs(pre_n[lp, k])
            W = weight(theta, sizes, w_off, lp)
            for i in range(sizes[lp]):  # d a_{lp}[k] / d z_{lp-1}[i], masked
                svec[i] = W[i, k] if pre_n[lp - 1, i] > 0.0 else 0.0
            for low in range(lp - 2, -1, -1):  # sensitivities w.r.t. z_low
                Wl = weight(theta, sizes, w_off, low + 1)
                for j in range(sizes[low + 1]):
                    acc = 0.0
                    for i in range(sizes[low + 2]):
                        acc += Wl[j, i] * svec[i]
                    snext[j] = acc
                    if acc != 0.0:
                        rc[unit_off[low] + j] = min(rc[unit_off[low] + j], size / abs(acc))
                for j in range(sizes[low + 1]):  # through layer ``low``'s mask
                    svec[j] = snext[j] if pre_n[low, j] > 0.0 else 0.0
    for layer in range(n_hidden - 1):
        W = weight(theta, sizes, w_off, layer + 1)
        for j in range(sizes[layer + 1]):
            r = rc[unit_off[layer] + j]
            rho2 = 0.0
            for k in range(sizes[layer + 2]):
                w = W[j, k]
                if w != 0.0:
                    r = min(r, abs(pre_n[layer + 1, k]) / abs(w))
                if pre_n[layer + 1, k] > 0.0:
                    rho2 += w * w
            rho = math.sqrt(rho2)
            gain = rho
            for lp in range(layer + 2, n_hidden):
                if gain * colmax[lp] > 0.0:
                    r = min(r, tau[lp] / (gain * colmax[lp]))
                gain *= spec[lp]
            margin_n[unit_off[layer] + j] = MARGIN_SHARE * r


@njit(**JIT_OPTIONS)
def _sigmoid_coefficients(theta, sizes, w_off, pre_n, post_n, enz_n, layer, j, A, Z, out):
    """Taylor coefficients (``d``, ``d^2``, ``d^3``) of the logits when z_layer[j] moves by d.

    ``A``/``Z`` are ``(3, width)`` scratch rows; the result goes to ``out`` ``(3, O)``.
    """
    count = sizes.size - 1
    W = weight(theta, sizes, w_off, layer + 1)
    for k in range(sizes[layer + 2]):
        A[0, k] = W[j, k]
        A[1, k] = 0.0
        A[2, k] = 0.0
    for m in range(layer + 1, count - 1):  # hidden layers above: sigmoid's series at pre_n[m]
        for k in range(sizes[m + 1]):
            s = post_n[m, k]
            e = enz_n[m, k]
            oms = e * s if e <= DBL_MAX else 1.0 - s  # 1 - s without cancellation
            s1 = s * oms
            s2 = 0.5 * s1 * (oms - s)
            s3 = _F3 * s1 * (1.0 - 6.0 * s * oms)
            a1, a2, a3 = A[0, k], A[1, k], A[2, k]
            Z[0, k] = s1 * a1
            Z[1, k] = s1 * a2 + s2 * a1 * a1
            Z[2, k] = s1 * a3 + 2.0 * s2 * a1 * a2 + s3 * a1 * a1 * a1
        Wm = weight(theta, sizes, w_off, m + 1)
        width = sizes[m + 2]
        for r in range(3):
            for k in range(width):
                A[r, k] = 0.0
            for i in range(sizes[m + 1]):
                zi = Z[r, i]
                if zi != 0.0:
                    row = Wm[i]
                    for k in range(width):
                        A[r, k] += zi * row[k]
    out[:, :] = A[:, :sizes[count]]


@njit(inline="always", **JIT_OPTIONS)
def _relu_linear_block(h, inputs, tmp, m0, m1, m2, m3, m4, m5, y_t, w_t, a_base):
    """``tmp[i]`` = ``L(+) - L(-)`` for every input ``i`` of an active ReLU unit.

    Only valid when no step crosses a kink (then the unit moves by exactly
    ``+-h v``), none leaves the linear region above and the series applies:
    the loop has no branch, so it runs in SIMD lanes. A zero input gives 0.
    """
    for i in range(inputs.size):
        s = h * inputs[i]
        tmp[i] = linear_series_diff(s, -s, m0, m1, m2, m3, m4, m5, y_t, w_t, a_base)


@njit(**SWEEP_OPTIONS)
def deep_sweep(theta, sizes, act, indptr, indices, values, labels, h, spec, colmax, w_off, b_off,
               unit_off, pre, post, enz, y, m0s, dirs, margins, mu, coefs, ratios, em_plus,
               em_minus, out_rows, reach_in):
    """Phase 2: sum ``L_n(+) - L_n(-)`` per parameter, one ``prange`` iteration per hidden unit.

    Returns the sums laid out like ``theta`` except that each hidden weight
    block is transposed (row ``j`` = unit ``j``, owned by its iteration);
    :func:`deep_finish` turns them into the gradient.
    """
    count = sizes.size - 1
    n_hidden = count - 1
    top = n_hidden - 1
    n_out = sizes[count]
    n_samples = labels.size
    n_units = unit_off[n_hidden]
    relu = act == RELU
    width = pre.shape[2]
    # gradient sums; weight blocks transposed (row j = unit j) so each unit owns its row
    sums = np.zeros(theta.size)
    for u in prange(n_units):
        layer, j = _unit(unit_off, u)
        n_in = sizes[layer]
        row = w_off[layer] + j * n_in
        cur = np.empty(width)
        nxt = np.empty(width)
        shift = np.empty(n_out)
        tmp = np.empty(n_in)
        linear = relu or layer == top
        for n in range(n_samples):
            t = labels[n]
            pre_n = pre[n]
            a = pre_n[layer, j]
            z = post[n, layer, j]
            e = enz[n, layer, j]
            y_row = y[n]
            y_t = y_row[t]
            m0 = m0s[n]
            a_base = y_t + LOG_EPS * m0
            w = dirs[n, u]
            reach = margins[n, u]
            m1 = 0.0
            m2 = 0.0
            m3 = 0.0
            m4 = 0.0
            m5 = 0.0
            w_max = 0.0
            rho = np.inf
            if linear:
                for k in range(n_out):
                    wk = w[k]
                    w_max = max(w_max, abs(wk))
                    p = y_row[k] * wk
                    m1 += p
                    p *= wk
                    m2 += p
                    p *= wk
                    m3 += p
                    p *= wk
                    m4 += p
                    p *= wk
                    m5 += p
                m2 *= 0.5
                m3 *= _F3
                m4 *= _F4
                m5 *= _F5
            else:
                rho = ratios[n, u]
                for k in range(n_out):
                    w_max = max(w_max, abs(coefs[n, u, 0, k]))
            if relu:
                s_max = reach_in[n, layer]
                if a <= -s_max:  # off, and no step turns it on: every difference is 0
                    continue
                if a > s_max and s_max < reach and s_max * w_max <= POLY_MAX:
                    # on, no step turns it off, linear above, series valid: the
                    # per-input branches below all take the series, so skip them
                    if layer == 0:
                        lo, hi = indptr[n], indptr[n + 1]
                        _relu_linear_block(h, values[lo:hi], tmp, m0, m1, m2, m3, m4, m5,
                                           y_t, w[t], a_base)
                        for q in range(lo, hi):
                            sums[row + indices[q]] += tmp[q - lo]
                    else:
                        _relu_linear_block(h, post[n, layer - 1, :n_in], tmp, m0, m1, m2, m3,
                                           m4, m5, y_t, w[t], a_base)
                        for i in range(n_in):
                            sums[row + i] += tmp[i]
                    sums[b_off[layer] + j] += linear_series_diff(h, -h, m0, m1, m2, m3, m4, m5,
                                                                 y_t, w[t], a_base)
                    continue
            # inputs of the unit: CSR pixels for layer 0, the activations below otherwise
            if layer == 0:
                start = indptr[n]
                stop = indptr[n + 1] + 1
            else:
                start = 0
                stop = n_in + 1
            for q in range(start, stop):
                if q == stop - 1:  # the bias
                    v = 1.0
                    col = -1
                elif layer == 0:
                    v = values[q]
                    col = indices[q]
                else:
                    v = post[n, layer - 1, q]
                    col = q
                    if v == 0.0:
                        continue
                s = h * v
                if relu:
                    d_p = _relu_shift(a, s)
                    d_m = _relu_shift(a, -s)
                    if d_p == 0.0 and d_m == 0.0:
                        continue
                else:
                    if layer == 0 and col >= 0:
                        em_p, em_m = em_plus[q], em_minus[q]
                    else:
                        em_p, em_m = math.expm1(-s), math.expm1(s)
                    d_p = _sigmoid_shift(a, e, z, s, em_p)
                    d_m = _sigmoid_shift(a, e, z, -s, em_m)
                big = max(abs(d_p), abs(d_m))
                if linear and big < reach:
                    if big * w_max <= POLY_MAX:
                        diff = linear_series_diff(d_p, d_m, m0, m1, m2, m3, m4, m5, y_t,
                                                   w[t], a_base)
                    else:
                        diff = (shifted_loss(pre_n[count - 1], w, d_p, t)
                                - shifted_loss(pre_n[count - 1], w, d_m, t))
                elif not linear and big * rho <= POLY_MAX and big * w_max <= STEP_MAX:
                    diff = _poly_diff(coefs[n, u], d_p, d_m, y_row, t, m0, a_base)
                else:
                    diff = np.nan
                    if linear and layer < top:  # the next layer's kinks exactly, linear above
                        diff = (_next_layer_loss(theta, sizes, w_off, pre_n, mu[n], spec, colmax,
                                                 dirs[n], unit_off, layer, j, d_p, t, cur, shift)
                                - _next_layer_loss(theta, sizes, w_off, pre_n, mu[n], spec,
                                                   colmax, dirs[n], unit_off, layer, j, d_m, t,
                                                   cur, shift))
                    if math.isnan(diff):
                        diff = (_upper_loss(theta, sizes, w_off, b_off, act, pre_n, layer, j,
                                            d_p, t, cur, nxt)
                                - _upper_loss(theta, sizes, w_off, b_off, act, pre_n, layer, j,
                                              d_m, t, cur, nxt))
                if col >= 0:
                    sums[row + col] += diff
                else:
                    sums[b_off[layer] + j] += diff
        if layer == top:  # output weights W_out[j, :] move one logit by +-h z
            out_row = w_off[count - 1] + j * n_out
            for n in range(n_samples):
                z = post[n, layer, j]
                if z == 0.0:
                    continue
                t = labels[n]
                x_plus = math.expm1(h * z)
                x_minus = math.expm1(-h * z)
                for k in range(n_out):
                    sums[out_row + k] += logit_shift_diff(y[n, k], y[n, t], k == t, m0s[n],
                                                           x_plus, x_minus)
    b_out = b_off[count - 1]
    for n in range(n_samples):  # in sample order, like every other sum
        for k in range(n_out):
            sums[b_out + k] += out_rows[n, k]
    return sums


@njit(**PARALLEL_OPTIONS)
def deep_finish(sums, sizes, w_off, b_off, unit_off, n_samples, h):
    """Phase 3: the gradient in ``theta``'s layout, scaled (parallel over hidden units)."""
    count = sizes.size - 1
    n_units = unit_off[unit_off.size - 1]
    scale = 1.0 / (n_samples * 2.0 * h)
    grad = np.empty(sums.size)
    for u in prange(n_units):
        layer, j = _unit(unit_off, u)
        n_in = sizes[layer]
        n_unit = sizes[layer + 1]
        for i in range(n_in):
            grad[w_off[layer] + i * n_unit + j] = sums[w_off[layer] + j * n_in + i] * scale
        grad[b_off[layer] + j] = sums[b_off[layer] + j] * scale
    for p in range(w_off[count - 1], sums.size):
        grad[p] = sums[p] * scale
    return grad


@njit(**PARALLEL_OPTIONS)
def deep_prepare(theta, sizes, act, indptr, indices, values, labels, h, spec, colmax):
    """Phase 1, parallel over samples: everything the sweep reuses.

    ``theta``/``sizes`` as in :mod:`fastgrad.kernels.layers`, ``act`` the
    activation code, the batch in CSR, ``spec[m]``/``colmax[m]`` the spectral
    norm and the largest column norm of weight matrix ``m`` (0-based; ReLU
    margins). Returns the cached arrays, in the order :func:`deep_sweep` takes them.
    """
    count = sizes.size - 1  # affine layers; hidden layers are 0 .. count - 2
    n_hidden = count - 1
    n_out = sizes[count]
    n_samples = labels.size
    w_off, b_off = offsets(sizes)
    width = 1
    for m in range(1, sizes.size):
        width = max(width, sizes[m])
    unit_off = np.zeros(n_hidden + 1, dtype=np.int64)
    for m in range(n_hidden):
        unit_off[m + 1] = unit_off[m] + sizes[m + 1]
    n_units = unit_off[n_hidden]
    top = n_hidden - 1
    relu = act == RELU
    n_coef = unit_off[top] if not relu else 0

    # --- per sample: activations, softmax, directions, margins, Taylor coefficients
    pre = np.empty((n_samples, count, width))
    post = np.zeros((n_samples, n_hidden, width))
    enz = np.zeros((n_samples, n_hidden, width))  # sigmoid: exp(-a)
    y = np.empty((n_samples, n_out))
    m0s = np.empty(n_samples)
    dirs = np.empty((n_samples, n_units, n_out))  # linear case: d logits / d z
    margins = np.full((n_samples, n_units), np.inf)
    mu = np.full((n_samples, n_hidden), np.inf)  # ReLU: smallest |a| per layer
    coefs = np.empty((n_samples, max(n_coef, 1), 3, n_out))
    ratios = np.empty((n_samples, max(n_coef, 1)))
    em_plus = np.empty(values.size)
    em_minus = np.empty(values.size)
    out_rows = np.empty((n_samples, n_out))  # output biases: L(+) - L(-) per sample
    # h * the largest input of each layer's units (1 for the bias): the largest step
    reach_in = np.empty((n_samples, n_hidden))
    x_plus_bias = math.expm1(h)
    x_minus_bias = math.expm1(-h)
    W_out = weight(theta, sizes, w_off, count - 1)
    for n in prange(n_samples):
        pre_n = pre[n]
        sample_hidden(weight(theta, sizes, w_off, 0), bias(theta, sizes, b_off, 0),
                      indptr, indices, values, n, pre_n[0, :sizes[1]])
        for m in range(n_hidden):
            for k in range(sizes[m + 1]):
                a = pre_n[m, k]
                if relu:
                    post[n, m, k] = a if a > 0.0 else 0.0
                else:
                    e = math.exp(-a)
                    post[n, m, k] = 1.0 / (1.0 + e)
                    enz[n, m, k] = e
            dense_affine(post[n, m, :sizes[m + 1]], weight(theta, sizes, w_off, m + 1),
                         bias(theta, sizes, b_off, m + 1), pre_n[m + 1, :sizes[m + 2]])
        logits = pre_n[count - 1, :n_out]
        mx = logits[0]
        for k in range(1, n_out):
            mx = max(mx, logits[k])
        total = 0.0
        for k in range(n_out):
            y[n, k] = math.exp(logits[k] - mx)
            total += y[n, k]
        m0 = 0.0
        for k in range(n_out):
            y[n, k] /= total
            m0 += y[n, k]
        m0s[n] = m0
        t = labels[n]
        for k in range(n_out):
            out_rows[n, k] = logit_shift_diff(y[n, k], y[n, t], k == t, m0, x_plus_bias,
                                               x_minus_bias)
        big = 1.0
        for q in range(indptr[n], indptr[n + 1]):
            em_plus[q] = math.expm1(-h * values[q])
            em_minus[q] = math.expm1(h * values[q])
            big = max(big, abs(values[q]))
        reach_in[n, 0] = h * big
        for m in range(1, n_hidden):
            big = 1.0
            for i in range(sizes[m]):
                big = max(big, abs(post[n, m - 1, i]))
            reach_in[n, m] = h * big
        for j in range(sizes[top + 1]):
            dirs[n, unit_off[top] + j, :] = W_out[j, :]
        if relu:
            for m in range(top - 1, -1, -1):  # backward through the masks
                Wm = weight(theta, sizes, w_off, m + 1)
                for j in range(sizes[m + 1]):
                    u = unit_off[m] + j
                    dirs[n, u, :] = 0.0
                    for k in range(sizes[m + 2]):
                        if pre_n[m + 1, k] > 0.0:
                            w = Wm[j, k]
                            for o in range(n_out):
                                dirs[n, u, o] += w * dirs[n, unit_off[m + 1] + k, o]
            for m in range(n_hidden):
                for k in range(sizes[m + 1]):
                    mu[n, m] = min(mu[n, m], abs(pre_n[m, k]))
            _relu_margins(theta, sizes, w_off, pre_n, unit_off, spec, colmax, margins[n],
                          np.empty(n_units), np.empty(width), np.empty(width))
        else:
            A = np.empty((3, width))
            Z = np.empty((3, width))
            for m in range(top):
                for j in range(sizes[m + 1]):
                    u = unit_off[m] + j
                    c = coefs[n, u]
                    _sigmoid_coefficients(theta, sizes, w_off, pre_n, post[n], enz[n], m, j,
                                          A, Z, c)
                    g1 = 0.0
                    g2 = 0.0
                    g3 = 0.0
                    for o in range(n_out):
                        g1 = max(g1, abs(c[0, o]))
                        g2 = max(g2, abs(c[1, o]))
                        g3 = max(g3, abs(c[2, o]))
                    ratios[n, u] = (max(g2 / g1, math.sqrt(g3 / g1)) if g1 > 0.0
                                    else np.inf)
    return (w_off, b_off, unit_off, pre, post, enz, y, m0s, dirs, margins, mu, coefs, ratios,
            em_plus, em_minus, out_rows, reach_in)
