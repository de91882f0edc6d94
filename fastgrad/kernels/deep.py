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
  out a crossing is exact for the next layer (``|a_{l+1, k}| / |W_{l+1}[j, k]|``,
  formed as ``|a| * (1 / |W|)``: at most two roundings, ``(1 + 2^-52)``, above
  the quotient) and for the :data:`CRITICAL` units closest to zero in each layer
  further up (their exact sensitivities, carried as extra columns of the same
  backward pass); the others are bounded by norms (``||dz||_2 <= |d| rho``,
  upper bounds of ``||W||_2``, largest column norm). Half of that margin is
  used; a perturbation beyond it moves the next layer exactly and, failing the
  norm bound above, recomputes the sample's upper layers from scratch.
* *ReLU series*: a ReLU unit that is on and that no step turns off moves by
  exactly ``+-s``, ``s = h v``, so ``L(+) - L(-)`` is odd in ``s``. The loss is
  invariant under adding a constant to every logit, so with ``w' = w - w_t``
  (``w'_t = 0``), ``p = y / m0`` and ``beta = eps m0 / (y_t + eps m0)`` it is
  ``L(d) - L(0) = K_p(d) - K_r(d)``: the cumulant generating functions of
  ``w'`` under ``p`` and under ``r``, whose raw moments are ``beta`` times
  ``p``'s. Hence ``L(+) - L(-) = 2 sum_odd (kappa_m(p) - kappa_m(r)) s^m / m!``,
  kept to ``s^5`` (``c1 v + c3 v^3 + c5 v^5`` per input, the coefficients once
  per unit and sample). Both distributions live on ``[-D, D]``, ``D =
  max|w'|``; with ``s D <= POLY_MAX`` the terms from ``s^7`` on weigh
  ``(s D)^6 ~ 1e-18`` of the sum's scale, below its rounding. The even terms
  cancel exactly, so the O(h^2) truncation (the ``s^3`` term) is kept.
* *Sigmoid case* (sigmoid layers above): the logits are a smooth function of
  ``d``; their Taylor coefficients up to ``d^3`` are carried forward through the
  layers above (chain rule on the sigmoid's series). With ``|d| * rho <=
  POLY_MAX`` (``rho`` the coefficients' growth ratio) the omitted terms are of
  order ``(|d| rho)^4 |d G1|``; odd terms decide the central difference, even
  ones cancel to leading order, so the omission lies below rounding. Beyond
  that, or for saturated units, the sample is recomputed from scratch. While
  also ``|d| max|c1_k - c1_t| <= POLY_MAX`` (and the same growth ratio for the
  differences ``c_k - c_t``, which serve as the loss is shift-invariant),
  ``L(d) - L(0) = log(1 + F) - log(1 + beta F)`` with ``F = sum_k p_k
  expm1(P'_k(d))`` is expanded to ``d^5`` once per unit and sample, and each
  input costs two quintics; the ``d^6`` term weighs ``(|d| rho)^5`` but is even
  (it cancels to leading order between ``d+`` and ``d-``), the rest lies below
  rounding.
* Output-layer parameters move one logit: the two-layer kernel's formula.

Only rounding differs from the reference; the O(h^2) truncation is kept.

Work and threads: the preparation runs the batch through each layer a block
of samples at a time, and each sample's backward passes and Taylor
coefficients for all units of a layer at once, through the register-blocked
kernels of :mod:`fastgrad.kernels.dense`; the sweep gives each hidden unit to
one ``prange`` iteration (layers interleaved, so the threads' contiguous shares
cost alike). Every value is summed by one thread in a fixed order, so the
result is bitwise the same for any thread count, and the margins (from the
same values) do not depend on it either.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from fastgrad.config import JIT_OPTIONS, PARALLEL_OPTIONS, SWEEP_OPTIONS
from fastgrad.kernels.dense import (
    affine_packed,
    affine_selected,
    pack,
    packed_size,
    sparse_affine,
)
from fastgrad.kernels.forward import LOG_EPS, sample_log_prob
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
from fastgrad.kernels.layers import (
    RELU,
    activate,
    bias,
    offsets,
    pack_all,
    packed_offsets,
    weight,
)

#: Units per layer and sample whose crossing of zero is checked exactly.
CRITICAL = 4
#: Share of the proven no-crossing margin that the linear case uses.
MARGIN_SHARE = 0.5
#: Samples per block of the batched forward pass and of the per-sample passes.
BLOCK = 8
#: Inputs of one (unit, sample) whose losses are recomputed from scratch together.
PENDING = 16
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
def _upper_losses(theta, sizes, w_off, b_off, p_off, packed, act, pre_n, layer, j, ds, n_rows,
                  label, cur, nxt, losses):
    """``losses[r]``, ``r < n_rows``: the sample's loss with hidden unit ``j`` of ``layer``
    moved by ``ds[r]``, from scratch.

    ``pre_n`` holds the sample's unperturbed pre-activations (row ``l`` =
    layer ``l``); the layers above ``layer`` are recomputed as the reference
    does, all rows through each layer together by the register-blocked
    :func:`dense.affine_packed`.
    """
    count = sizes.size - 1
    W = weight(theta, sizes, w_off, layer + 1)
    width = sizes[layer + 2]
    Z = cur[:n_rows * width].reshape((n_rows, width))
    for r in range(n_rows):
        for k in range(width):
            Z[r, k] = pre_n[layer + 1, k] + ds[r] * W[j, k]
    for m in range(layer + 2, count):
        n_in, n_m = sizes[m], sizes[m + 1]
        for r in range(n_rows):
            for k in range(n_in):
                Z[r, k] = activate(Z[r, k], act)
        out = nxt[:n_rows * n_m].reshape((n_rows, n_m))
        affine_packed(Z, packed[p_off[m]:p_off[m] + packed_size(n_in, n_m)],
                      bias(theta, sizes, b_off, m), out)
        Z = out
        cur, nxt = nxt, cur
    for r in range(n_rows):
        losses[r] = -sample_log_prob(Z[r], label)


@njit(**JIT_OPTIONS)
def _flush_pending(theta, sizes, w_off, b_off, p_off, packed, act, pre_n, layer, j, pend_d,
                   pend_col, n_pend, label, cur, nxt, losses, sums, row, bias_at):
    """Add ``L(+) - L(-)`` of the pending inputs (moves ``pend_d[2e]``, ``pend_d[2e+1]``),
    recomputed from scratch, to their sums (column -1: the bias)."""
    _upper_losses(theta, sizes, w_off, b_off, p_off, packed, act, pre_n, layer, j, pend_d,
                  2 * n_pend, label, cur, nxt, losses)
    for e in range(n_pend):
        diff = losses[2 * e] - losses[2 * e + 1]
        if pend_col[e] >= 0:
            sums[row + pend_col[e]] += diff
        else:
            sums[bias_at] += diff


@njit(inline="always", **JIT_OPTIONS)
def _unit(unit_off, u):
    """``(layer, j)`` of hidden unit ``u`` counted over all hidden layers."""
    layer = 0
    while unit_off[layer + 1] <= u:
        layer += 1
    return layer, u - unit_off[layer]


@njit(**JIT_OPTIONS)
def vector_shift_loss(logits, shift, t):
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
    return vector_shift_loss(pre_n[count - 1, :sizes[count]], shift, t)


@njit(**JIT_OPTIONS)
def interleaved_units(unit_off):
    """The hidden units in an order that mixes the layers evenly (unit ``j`` of a layer of
    width ``H`` sits at ``(j + 1/2) / H``; ties by layer).

    Units of different layers cost differently (the first layer reads CSR
    pixels, the top one also owns the output weights); ``prange`` hands each
    thread a contiguous share of the iterations, so in this order every share
    gets a like mix. Which thread sums a unit does not change its sums.
    """
    n_hidden = unit_off.size - 1
    n_units = unit_off[n_hidden]
    key = np.empty(n_units)
    for layer in range(n_hidden):
        width = unit_off[layer + 1] - unit_off[layer]
        for j in range(width):
            key[unit_off[layer] + j] = (j + 0.5) / width
    return np.argsort(key, kind="mergesort")


@njit(**SWEEP_OPTIONS)
def deep_sweep(theta, sizes, act, indptr, indices, values, labels, h, spec, colmax, w_off, b_off,
               unit_off, pre, post, enz, y, m0s, dirs, margins, mu, coefs, ratios, em_plus,
               em_minus, out_rows, reach_in, lin, sig, p_off, packed):
    """Phase 2: sum ``L_n(+) - L_n(-)`` per parameter, one ``prange`` iteration per hidden unit
    (in :func:`interleaved_units` order).

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
    order = interleaved_units(unit_off)
    for slot in prange(n_units):
        u = order[slot]
        layer, j = _unit(unit_off, u)
        n_in = sizes[layer]
        row = w_off[layer] + j * n_in
        cur = np.empty(2 * PENDING * width)
        nxt = np.empty(2 * PENDING * width)
        pend_d = np.empty(2 * PENDING)
        pend_col = np.empty(PENDING, dtype=np.int64)
        losses = np.empty(2 * PENDING)
        n_pend = 0
        shift = np.empty(n_out)
        linear = relu or layer == top
        for n in range(n_samples):
            a = pre[n, layer, j]
            if relu:
                s_max = reach_in[n, layer]
                if a <= -s_max:  # off, and no step turns it on: every difference is 0
                    continue
                c = lin[u, n]
                reach = margins[n, u]
                if a > s_max and s_max < reach and s_max * c[3] <= POLY_MAX:
                    # on, no step turns it off, linear above, series valid: each
                    # input's L(+) - L(-) is the odd series c1 v + c3 v^3 + c5 v^5
                    c1, c3, c5 = c[0], c[1], c[2]
                    if layer == 0:
                        for q in range(indptr[n], indptr[n + 1]):
                            v = values[q]
                            v2 = v * v
                            sums[row + indices[q]] += v * (c1 + v2 * (c3 + v2 * c5))
                    else:
                        x = post[n, layer - 1]
                        for i in range(n_in):
                            v = x[i]
                            v2 = v * v
                            sums[row + i] += v * (c1 + v2 * (c3 + v2 * c5))
                    sums[b_off[layer] + j] += c1 + c3 + c5
                    continue
            t = labels[n]
            pre_n = pre[n]
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
            s_dev = np.inf
            s_rho = np.inf
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
                s_dev = sig[u, n, 5]
                s_rho = sig[u, n, 6]
                for k in range(n_out):
                    w_max = max(w_max, abs(coefs[n, u, 0, k]))
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
                elif not linear and big * s_dev <= POLY_MAX and big * s_rho <= POLY_MAX:
                    diff = _series5(sig[u, n], d_p) - _series5(sig[u, n], d_m)
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
                    if math.isnan(diff):  # from scratch, PENDING inputs at a time
                        pend_col[n_pend] = col
                        pend_d[2 * n_pend] = d_p
                        pend_d[2 * n_pend + 1] = d_m
                        n_pend += 1
                        if n_pend == PENDING:
                            _flush_pending(theta, sizes, w_off, b_off, p_off, packed, act, pre_n,
                                           layer, j, pend_d, pend_col, n_pend, t, cur, nxt,
                                           losses, sums, row, b_off[layer] + j)
                            n_pend = 0
                        continue
                if col >= 0:
                    sums[row + col] += diff
                else:
                    sums[b_off[layer] + j] += diff
            if n_pend > 0:
                _flush_pending(theta, sizes, w_off, b_off, p_off, packed, act, pre_n, layer, j,
                               pend_d, pend_col, n_pend, t, cur, nxt, losses, sums, row,
                               b_off[layer] + j)
                n_pend = 0
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


@njit(inline="always", **JIT_OPTIONS)
def _odd_cumulants(m1, m2, m3, m4, m5):
    """Cumulants 1, 3 and 5 of a distribution from its raw moments ``m1 .. m5``."""
    m1_2 = m1 * m1
    k3 = m3 - 3.0 * m2 * m1 + 2.0 * m1_2 * m1
    k5 = (m5 - 5.0 * m4 * m1 - 10.0 * m3 * m2 + 20.0 * m3 * m1_2 + 30.0 * m2 * m2 * m1
          - 60.0 * m2 * m1_2 * m1 + 24.0 * m1_2 * m1_2 * m1)
    return k3, k5


@njit(**JIT_OPTIONS)
def _linear_coefficients(dirs_n, y_n, m0, t, h, lin, n):
    """``lin[u, n]`` = ``(c1, c3, c5, dev)``: sample ``n``'s ``L(+) - L(-)`` when unit ``u``
    moves by ``+-h v`` (logits by ``+-h v w``, ``w = dirs_n[u]``) is
    ``c1 v + c3 v^3 + c5 v^5`` while ``h |v| dev <= POLY_MAX``.

    The loss is shift-invariant, so ``w' = w - w[t]`` serves: with ``p = y / m0``
    and ``beta = eps m0 / (y_t + eps m0)``, ``L(d) - L(0) = K_p(d) - K_r(d)``,
    the cumulant generating functions of ``w'`` under ``p`` and under the
    distribution ``r`` whose raw moments are ``beta`` times ``p``'s (``w'_t = 0``);
    the even cumulants cancel in ``L(+) - L(-)``.
    """
    n_units, n_out = dirs_n.shape
    y_t = y_n[t]
    beta = LOG_EPS * m0 / (y_t + LOG_EPS * m0)
    h3 = h * h * h
    h5 = h3 * h * h
    for u in range(n_units):
        w = dirs_n[u]
        w_t = w[t]
        s1 = 0.0
        s2 = 0.0
        s3 = 0.0
        s4 = 0.0
        s5 = 0.0
        dev = 0.0
        for k in range(n_out):
            d = w[k] - w_t
            dev = max(dev, abs(d))
            p = y_n[k] * d
            s1 += p
            p *= d
            s2 += p
            p *= d
            s3 += p
            p *= d
            s4 += p
            p *= d
            s5 += p
        m1, m2, m3, m4, m5 = s1 / m0, s2 / m0, s3 / m0, s4 / m0, s5 / m0
        p3, p5 = _odd_cumulants(m1, m2, m3, m4, m5)
        r3, r5 = _odd_cumulants(beta * m1, beta * m2, beta * m3, beta * m4, beta * m5)
        lin[u, n, 0] = 2.0 * h * (m1 - beta * m1)
        lin[u, n, 1] = 2.0 * h3 * _F3 * (p3 - r3)
        lin[u, n, 2] = 2.0 * h5 * _F5 * (p5 - r5)
        lin[u, n, 3] = dev


@njit(**JIT_OPTIONS)
def _sigmoid_series(coefs_n, y_n, m0, t, sig, n):
    """``sig[u, n]`` = ``(l1 .. l5, dev, rho)``: sample ``n``'s ``L(d) - L(0) = sum_m l_m d^m``
    when unit ``u`` (below the top) moves by ``d``, while ``|d| dev`` and ``|d| rho`` are at
    most ``POLY_MAX``.

    The logits move by ``P_k(d) = sum_m coefs_n[u, m-1, k] d^m`` (to ``d^3``);
    shift-invariance lets ``P'_k = P_k - P_t`` serve, so with ``p = y / m0``,
    ``F(d) = sum_k p_k expm1(P'_k(d))`` (to ``d^5``) and ``beta = eps m0 /
    (y_t + eps m0)``, ``L(d) - L(0) = log(1 + F) - log(1 + beta F)``, expanded
    to ``d^5``. ``dev = max|P'_k'(0)|`` and ``rho`` bounds the growth of the
    coefficients of ``P'``, as ``ratios`` does for ``P``.
    """
    n_coef = coefs_n.shape[0]
    n_out = coefs_n.shape[2]
    beta = LOG_EPS * m0 / (y_n[t] + LOG_EPS * m0)
    a1 = 1.0 - beta
    b2 = beta * beta
    a2 = -0.5 * (1.0 - b2)
    a3 = (1.0 - b2 * beta) / 3.0
    a4 = -0.25 * (1.0 - b2 * b2)
    a5 = 0.2 * (1.0 - b2 * b2 * beta)
    for u in range(n_coef):
        c = coefs_n[u]
        g1 = 0.0
        g2 = 0.0
        g3 = 0.0
        g4 = 0.0
        g5 = 0.0
        dev = 0.0
        top2 = 0.0
        top3 = 0.0
        for k in range(n_out):
            p = y_n[k] / m0
            e1 = c[0, k] - c[0, t]
            e2 = c[1, k] - c[1, t]
            e3 = c[2, k] - c[2, t]
            dev = max(dev, abs(e1))
            top2 = max(top2, abs(e2))
            top3 = max(top3, abs(e3))
            q1 = e1 * e1
            g1 += p * e1
            g2 += p * (e2 + 0.5 * q1)
            g3 += p * (e3 + e1 * e2 + _F3 * q1 * e1)
            g4 += p * (0.5 * e2 * e2 + e1 * e3 + 0.5 * q1 * e2 + _F4 * q1 * q1)
            g5 += p * (e2 * e3 + 0.5 * e1 * e2 * e2 + 0.5 * q1 * e3 + _F3 * q1 * e1 * e2
                       + _F5 * q1 * q1 * e1)
        h1 = g1 * g1
        sig[u, n, 0] = a1 * g1
        sig[u, n, 1] = a1 * g2 + a2 * h1
        sig[u, n, 2] = a1 * g3 + 2.0 * a2 * g1 * g2 + a3 * h1 * g1
        sig[u, n, 3] = (a1 * g4 + a2 * (g2 * g2 + 2.0 * g1 * g3) + 3.0 * a3 * h1 * g2
                        + a4 * h1 * h1)
        sig[u, n, 4] = (a1 * g5 + 2.0 * a2 * (g1 * g4 + g2 * g3)
                        + 3.0 * a3 * (h1 * g3 + g1 * g2 * g2) + 4.0 * a4 * h1 * g1 * g2
                        + a5 * h1 * h1 * g1)
        sig[u, n, 5] = dev
        sig[u, n, 6] = max(top2 / dev, math.sqrt(top3 / dev)) if dev > 0.0 else np.inf


@njit(inline="always", **JIT_OPTIONS)
def _series5(sc, d):
    """``sum_m sc[m-1] d^m`` for ``m = 1 .. 5``."""
    return d * (sc[0] + d * (sc[1] + d * (sc[2] + d * (sc[3] + d * sc[4]))))


@njit(**JIT_OPTIONS)
def _reciprocal_abs_t(theta, sizes, w_off):
    """``1 / |W_m|`` transposed for every weight matrix between hidden layers (``m`` >= 1).

    Row ``k`` of block ``m`` holds ``1 / |W_m[j, k]|`` over ``j``; clamped to
    ``DBL_MAX`` where the division overflows and ``inf`` where ``W`` is 0,
    so ``|a| * r`` never exceeds ``|a| / |W|`` by more than rounding. Also
    ``W_m[j, k] ** 2`` in the same layout, and the blocks' offsets.
    """
    count = sizes.size - 1
    t_off = np.zeros(count + 1, dtype=np.int64)
    for m in range(1, count - 1):
        t_off[m + 1] = t_off[m] + sizes[m] * sizes[m + 1]
    t_off[count] = t_off[count - 1]
    inv = np.empty(t_off[count])
    sq = np.empty(t_off[count])
    for m in range(1, count - 1):
        W = weight(theta, sizes, w_off, m)
        rows, cols = sizes[m], sizes[m + 1]
        for j in range(rows):
            for k in range(cols):
                w = abs(W[j, k])
                q = t_off[m] + k * rows + j
                sq[q] = w * w
                inv[q] = np.inf if w == 0.0 else min(1.0 / w, DBL_MAX)
    return t_off, inv, sq


@njit(**JIT_OPTIONS)
def _relu_directions(theta, sizes, w_off, unit_off, pre_n, dirs_n, rc, tau, crit, n_crit,
                     buf, ext, wp, kidx):
    """Backward passes through one sample's ReLU masks, all units of a layer at once.

    Fills ``dirs_n[u]`` = ``d logits / d z_u`` and ``rc[u]``: how far unit ``u``
    may move before a :data:`CRITICAL` unit (the ones nearest zero in each
    layer ``l' >= 2`` two or more layers above) reaches zero, from its exact
    sensitivity. The sensitivities ride along as extra columns of the
    directions: ``D_{m-1} = W_m diag(mask_m) [D_m | 0]``, then the columns of
    layer ``m``'s critical units (``W_m[:, k]``) appended, through the
    register-blocked :func:`dense.affine_selected` over the active units.
    """
    count = sizes.size - 1
    n_hidden = count - 1
    top = n_hidden - 1
    n_out = sizes[count]
    rc[:] = np.inf
    tau[:] = np.inf
    n_crit[:] = 0
    for lp in range(2, n_hidden):
        width = sizes[lp + 1]
        order = np.argsort(np.abs(pre_n[lp, :width]))
        if width > CRITICAL:
            tau[lp] = abs(pre_n[lp, order[CRITICAL]])
        n_crit[lp] = min(CRITICAL, width)
        for c in range(n_crit[lp]):
            crit[lp, c] = order[c]
    W_out = weight(theta, sizes, w_off, count - 1)
    cols = n_out
    D = buf[:sizes[top + 1] * cols].reshape((sizes[top + 1], cols))
    D[:, :] = W_out
    dirs_n[unit_off[top]:unit_off[top + 1], :] = W_out
    for m in range(top, 0, -1):  # D_{m-1} from D_m
        n_m = sizes[m + 1]
        n_below = sizes[m]
        grown = cols + n_crit[m]
        E = ext[:n_m * grown].reshape((n_m, grown))
        E[:, :cols] = D
        E[:, cols:] = 0.0
        packed = wp[:packed_size(n_m, grown)]
        pack(E, packed)
        n_k = 0
        for k in range(n_m):
            if pre_n[m, k] > 0.0:
                kidx[n_k] = k
                n_k += 1
        Wm = weight(theta, sizes, w_off, m)
        D = buf[:n_below * grown].reshape((n_below, grown))
        affine_selected(Wm, kidx, n_k, packed, D)
        for c in range(n_crit[m]):  # d a_m[k] / d z_{m-1}: the weights themselves
            k = crit[m, c]
            for i in range(n_below):
                D[i, cols + c] = Wm[i, k]
        col = n_out
        for lp in range(top, m, -1):  # columns in the order they were appended
            for c in range(n_crit[lp]):
                size = abs(pre_n[lp, crit[lp, c]])
                for i in range(n_below):
                    acc = D[i, col]
                    if acc != 0.0:
                        u = unit_off[m - 1] + i
                        rc[u] = min(rc[u], size / abs(acc))
                col += 1
        dirs_n[unit_off[m - 1]:unit_off[m], :] = D[:, :n_out]
        cols = grown


@njit(**JIT_OPTIONS)
def _relu_margins(sizes, unit_off, pre_n, spec, colmax, t_off, inv_t, sq_t, rc, tau, margin_n,
                  r, rho2):
    """Fill ``margin_n[u]``: how far each hidden unit may move with no ReLU above crossing 0.

    The next layer exactly (``|a_{l+1, k}| * (1 / |W[j, k]|)``, at most
    rounding above ``|a| / |W|``, which the margin share absorbs), the
    critical units by ``rc``, the rest by norms. The loops run over the
    next layer's units outermost so that the inner ones, over this layer's
    units, vectorise.
    """
    count = sizes.size - 1
    n_hidden = count - 1
    margin_n[:] = np.inf
    for layer in range(n_hidden - 1):
        n_j = sizes[layer + 1]
        n_k = sizes[layer + 2]
        inv = inv_t[t_off[layer + 1]:t_off[layer + 2]].reshape((n_k, n_j))
        sq = sq_t[t_off[layer + 1]:t_off[layer + 2]].reshape((n_k, n_j))
        for j in range(n_j):
            r[j] = rc[unit_off[layer] + j]
            rho2[j] = 0.0
        for k in range(n_k):
            a = pre_n[layer + 1, k]
            size = abs(a)
            for j in range(n_j):
                q = size * inv[k, j]
                r[j] = q if q < r[j] else r[j]  # NaN (0 * inf, a weight 0) leaves r
            if a > 0.0:
                for j in range(n_j):
                    rho2[j] += sq[k, j]
        for j in range(n_j):
            bound = r[j]
            gain = math.sqrt(rho2[j])
            for lp in range(layer + 2, n_hidden):
                if gain * colmax[lp] > 0.0:
                    bound = min(bound, tau[lp] / (gain * colmax[lp]))
                gain *= spec[lp]
            margin_n[unit_off[layer] + j] = MARGIN_SHARE * bound


@njit(**JIT_OPTIONS)
def _sigmoid_coefficients(theta, sizes, w_off, p_off, packed, unit_off, post_n, enz_n, coefs_n,
                          A, Z, series, zero):
    """Taylor coefficients (``d``, ``d^2``, ``d^3``) of the logits, every unit below the top.

    Row ``3 u + r`` of ``A`` carries coefficient ``r`` of unit ``u``'s effect on
    the current layer's pre-activations; a unit joins at the layer above it
    (``W[j, :]``, then 0, 0) and all rows move up a layer together: the
    sigmoid's series at the layer (chain rule, into ``Z``), then ``Z @ W``
    by the register-blocked :func:`dense.affine_packed`. ``coefs_n``
    ``(n_units_below_top, 3, O)`` receives the logits' rows.
    """
    count = sizes.size - 1
    n_hidden = count - 1
    for m in range(1, n_hidden):
        n_m = sizes[m + 1]
        rows = 3 * unit_off[m]
        Am = A[:rows * n_m].reshape((rows, n_m))
        W = weight(theta, sizes, w_off, m)
        for j in range(sizes[m]):  # units of layer m - 1 join
            q = 3 * (unit_off[m - 1] + j)
            Am[q, :] = W[j, :]
            Am[q + 1, :] = 0.0
            Am[q + 2, :] = 0.0
        for k in range(n_m):  # the sigmoid's series at layer m
            s = post_n[m, k]
            e = enz_n[m, k]
            oms = e * s if e <= DBL_MAX else 1.0 - s  # 1 - s without cancellation
            s1 = s * oms
            s2 = 0.5 * s1 * (oms - s)
            s3 = _F3 * s1 * (1.0 - 6.0 * s * oms)
            series[0, k] = s1
            series[1, k] = s2
            series[2, k] = s3
        Zm = Z[:rows * n_m].reshape((rows, n_m))
        for q in range(0, rows, 3):
            for k in range(n_m):
                s1, s2, s3 = series[0, k], series[1, k], series[2, k]
                a1, a2, a3 = Am[q, k], Am[q + 1, k], Am[q + 2, k]
                Zm[q, k] = s1 * a1
                Zm[q + 1, k] = s1 * a2 + s2 * a1 * a1
                Zm[q + 2, k] = s1 * a3 + 2.0 * s2 * a1 * a2 + s3 * a1 * a1 * a1
        n_next = sizes[m + 2]
        Wp = packed[p_off[m + 1]:p_off[m + 1] + packed_size(n_m, n_next)]
        if m + 1 < count - 1:
            affine_packed(Zm, Wp, zero[:n_next], A[:rows * n_next].reshape((rows, n_next)))
        else:
            affine_packed(Zm, Wp, zero[:n_next], coefs_n.reshape((rows, n_next)))


@njit(**PARALLEL_OPTIONS)
def deep_prepare(theta, sizes, act, indptr, indices, values, labels, h, spec, colmax):
    """Phase 1, parallel over blocks of samples: everything the sweep reuses.

    ``theta``/``sizes`` as in :mod:`fastgrad.kernels.layers`, ``act`` the
    activation code, the batch in CSR, ``spec[m]``/``colmax[m]`` the spectral
    norm and the largest column norm of weight matrix ``m`` (0-based; ReLU
    margins). Returns the cached arrays, in the order :func:`deep_sweep` takes them.

    The forward pass runs a whole block of :data:`BLOCK` samples through each
    layer (:func:`dense.sparse_affine`, :func:`dense.affine_packed`: every
    output one fixed chain, whatever the block); the backward passes and the
    sigmoid's coefficients run all units of a layer at once per sample. Every
    value is computed by one thread in a fixed order: the same for any
    thread count.
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
    p_off, p_size = packed_offsets(sizes)
    packed = np.empty(p_size)
    pack_all(theta, sizes, w_off, p_off, packed)
    t_off, inv_t, sq_t = _reciprocal_abs_t(theta, sizes, w_off)

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
    # ReLU: each (unit, sample)'s odd series of L(+) - L(-) in the input, and its range
    lin = np.empty((n_units if relu else 0, n_samples, 4))
    # sigmoid: each (unit below the top, sample)'s series of L(d) - L(0), and its range
    sig = np.empty((n_coef, n_samples, 7))
    # h * the largest input of each layer's units (1 for the bias): the largest step
    reach_in = np.empty((n_samples, n_hidden))
    x_plus_bias = math.expm1(h)
    x_minus_bias = math.expm1(-h)
    # each layer's pre-activations (and hidden outputs) of the whole batch, row = sample
    a_off = np.zeros(count + 1, dtype=np.int64)
    for m in range(count):
        a_off[m + 1] = a_off[m] + n_samples * sizes[m + 1]
    pre_all = np.empty(a_off[count])
    post_all = np.empty(a_off[n_hidden])
    n_cols = n_out + CRITICAL * n_hidden  # logits and critical units' sensitivities
    n_blocks = (n_samples + BLOCK - 1) // BLOCK
    for blk in prange(n_blocks):
        s0 = blk * BLOCK
        s1 = min(n_samples, s0 + BLOCK)
        for m in range(count):
            n_in, n_m = sizes[m], sizes[m + 1]
            out = pre_all[a_off[m]:a_off[m + 1]].reshape((n_samples, n_m))[s0:s1]
            Wp = packed[p_off[m]:p_off[m] + packed_size(n_in, n_m)]
            if m == 0:
                sparse_affine(indptr[s0:s1 + 1], indices, values, weight(theta, sizes, w_off, 0),
                              Wp, bias(theta, sizes, b_off, 0), out)
            else:
                z = post_all[a_off[m - 1]:a_off[m]].reshape((n_samples, n_in))[s0:s1]
                affine_packed(z, Wp, bias(theta, sizes, b_off, m), out)
            if m < n_hidden:
                z_out = post_all[a_off[m]:a_off[m + 1]].reshape((n_samples, n_m))[s0:s1]
                for r in range(s1 - s0):
                    for k in range(n_m):
                        z_out[r, k] = activate(out[r, k], act)

    for blk in prange(n_blocks):
        # per-block scratch of the backward passes / the sigmoid's coefficients
        buf = np.empty(width * n_cols)
        ext = np.empty(width * n_cols)
        wp = np.empty(packed_size(width, n_cols))
        kidx = np.empty(width, dtype=np.int64)
        rc = np.empty(n_units)
        tau = np.empty(n_hidden)
        crit = np.zeros((n_hidden, CRITICAL), dtype=np.int64)
        n_crit = np.zeros(n_hidden, dtype=np.int64)
        r = np.empty(width)
        rho2 = np.empty(width)
        rows = 3 * n_coef if not relu else 0
        A = np.empty(rows * width)
        Z = np.empty(rows * width)
        series = np.empty((3, width))
        zero = np.zeros(width)
        for n in range(blk * BLOCK, min(n_samples, (blk + 1) * BLOCK)):
            pre_n = pre[n]
            for m in range(count):
                n_m = sizes[m + 1]
                pre_n[m, :n_m] = pre_all[a_off[m] + n * n_m:a_off[m] + (n + 1) * n_m]
                if m < n_hidden:
                    post[n, m, :n_m] = post_all[a_off[m] + n * n_m:a_off[m] + (n + 1) * n_m]
                    if not relu:
                        for k in range(n_m):
                            enz[n, m, k] = math.exp(-pre_n[m, k])
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
            if relu:
                _relu_directions(theta, sizes, w_off, unit_off, pre_n, dirs[n], rc, tau, crit,
                                 n_crit, buf, ext, wp, kidx)
                for m in range(n_hidden):
                    for k in range(sizes[m + 1]):
                        mu[n, m] = min(mu[n, m], abs(pre_n[m, k]))
                _relu_margins(sizes, unit_off, pre_n, spec, colmax, t_off, inv_t, sq_t, rc, tau,
                              margins[n], r, rho2)
                _linear_coefficients(dirs[n], y[n], m0, t, h, lin, n)
            else:
                W_out = weight(theta, sizes, w_off, count - 1)
                dirs[n, unit_off[top]:unit_off[top + 1], :] = W_out
                if n_coef > 0:
                    _sigmoid_coefficients(theta, sizes, w_off, p_off, packed, unit_off, post[n],
                                          enz[n], coefs[n], A, Z, series, zero)
                for u in range(n_coef):
                    c = coefs[n, u]
                    g1 = 0.0
                    g2 = 0.0
                    g3 = 0.0
                    for o in range(n_out):
                        g1 = max(g1, abs(c[0, o]))
                        g2 = max(g2, abs(c[1, o]))
                        g3 = max(g3, abs(c[2, o]))
                    ratios[n, u] = (max(g2 / g1, math.sqrt(g3 / g1)) if g1 > 0.0
                                    else np.inf)
                if n_coef > 0:
                    _sigmoid_series(coefs[n, :n_coef], y[n], m0, t, sig, n)
    return (w_off, b_off, unit_off, pre, post, enz, y, m0s, dirs, margins, mu, coefs, ratios,
            em_plus, em_minus, out_rows, reach_in, lin, sig, p_off, packed)
