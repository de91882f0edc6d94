"""Central difference of the convolution's parameters from cached activations.

Still ``(f(theta + h e_p) - f(theta - h e_p)) / 2h`` for every entry of ``W1``
and ``b1`` of the book's ``SimpleConvNet``, with less work; each shortcut is
exact up to rounding, so the O(h^2) truncation is the reference's:

* An entry ``W1[c, ch, fy, fx]`` moves only channel ``c`` of the convolution,
  and moves its output at ``(oy, ox)`` by exactly ``+-s`` with ``s = h v``,
  ``v`` the zero-padded input ``x[ch, oy*stride + fy, ox*stride + fx]``
  (``b1[c]``: by ``+-h`` everywhere). Every other channel, hence every other
  pooled feature, is bitwise unchanged.
* A pool window's new value is ``relu(max_i(a_i +- s_i))`` on each side, the
  value the reference's pooling gives (``argmax`` picks the first of tied
  inputs, but a tie has one value). Every ``|s_i|`` of a window is at most
  ``h M``, ``M`` the largest ``|x|`` its inputs' receptive fields read (any
  channel), so per sample and channel each window is one of three kinds,
  decided once for all the entries of ``W1[c]``:

  - *dead*: ``best + h M <= 0``. Every input stays at or below zero on both
    sides: the pooled value stays 0 and the window is skipped.
  - *safe*: ``best - h M > 0`` and ``best - h M > second + h M`` (``second``
    the runner-up; a tie is never safe). The winner stays the same input on
    the positive side of the kink on both sides, so the window moves by
    ``s_win`` and ``-s_win`` exactly (no cancellation in ``(a + s) - a``).
    The bounds hold after rounding too: rounding is monotone, so
    ``fl(a_win + s_win) >= fl(best - h M) > fl(second + h M) >= fl(a_j + s_j)``.
  - *critical*: anything else (a step that may cross a kink, overtake the
    runner-up or break a tie; blank regions give ties). Recomputed exactly,
    entry by entry, as above.

* The hidden pre-activations move by ``sum_r dp_r W2[r, :]`` over the moved
  windows ``r`` (rows ``c*PH*PW + py*PW + px``): the affine layer is linear in
  the pooled features. For the safe windows that sum, for all the entries of
  ``W1[c]`` at once, is one matrix product ``D @ W2[safe rows]`` with
  ``D[e, r] = s_win`` of entry ``e`` (the register-blocked kernel of
  :mod:`fastgrad.kernels.dense`); its ``-h`` side is its negation exactly
  (IEEE rounding is symmetric). The critical windows' changes are added to
  each side after it.
* The hidden ReLU is applied to the moved values exactly (``relu(a + d) -
  relu(a)``, exactly ``d`` when no kink lies between), the logits move by
  those changes times ``W3`` (again one product for all the entries; the
  ``-h`` side is its negation when every change on that side is the negated
  ``+h`` one, and is formed on its own otherwise), and each sample's loss at
  ``+h`` and ``-h`` is evaluated from its moved logits with the max-shifted
  softmax, as the reference does.
* An entry's differences ``L_n(+) - L_n(-)`` are summed in sample order and
  scaled by ``1 / (N 2h)``; one whose step moves nothing cancels exactly.

The step is exactly ``h`` (``theta +- h`` is never rounded to float64).
``W2, b2, W3, b3`` are not handled here: the layers above the pooling are a
two-layer ReLU net on the pooled features, served by
:mod:`fastgrad.kernels.deep`.

Parallel over the filters (``prange``); each filter has its own scratch and
each entry sums its samples in order, so the result is bitwise the same for
any thread count.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from fastgrad.config import JIT_OPTIONS, PARALLEL_OPTIONS, SWEEP_OPTIONS
from fastgrad.kernels.deep import vector_shift_loss
from fastgrad.kernels.dense import ROWS, affine_packed, affine_selected, pack, packed_size
from fastgrad.kernels.layers import relu_shift

POOL = 2


@njit(**JIT_OPTIONS)
def _sample_diff(W2, W3, a2_n, a3_n, t, rows, dpp, dpm, count, symmetric, da_p, da_m, dl_p,
                 dl_m):
    """``L(+) - L(-)`` of one sample: pooled features ``rows[:count]`` moved by ``dpp``, ``dpm``."""
    hidden = a2_n.size
    da_p[:] = 0.0
    for i in range(count):
        d = dpp[i]
        if d != 0.0:
            row = W2[rows[i]]
            for k in range(hidden):
                da_p[k] += d * row[k]
    if symmetric:
        for k in range(hidden):
            da_m[k] = -da_p[k]
    else:
        da_m[:] = 0.0
        for i in range(count):
            d = dpm[i]
            if d != 0.0:
                row = W2[rows[i]]
                for k in range(hidden):
                    da_m[k] += d * row[k]
    dl_p[:] = 0.0
    dl_m[:] = 0.0
    for k in range(hidden):
        a = a2_n[k]
        zp = relu_shift(a, da_p[k])
        zm = relu_shift(a, da_m[k])
        if zp != 0.0:
            row = W3[k]
            for o in range(dl_p.size):
                dl_p[o] += zp * row[o]
        if zm != 0.0:
            row = W3[k]
            for o in range(dl_m.size):
                dl_m[o] += zm * row[o]
    return vector_shift_loss(a3_n, dl_p, t) - vector_shift_loss(a3_n, dl_m, t)


@njit(inline="always", **JIT_OPTIONS)
def _window_shift(a1_c, py, px, s_q):
    """``(d+, d-)``: the change of window ``(py, px)``'s pooled value at ``+h`` and ``-h``.

    ``s_q`` holds the step of each of its four inputs, in row-major order.
    """
    best = -np.inf  # unperturbed maximum, its input and that input's step
    win = 0
    up = -np.inf  # maximum at +h and its input
    win_up = 0
    down = -np.inf  # maximum at -h and its input
    win_down = 0
    for q in range(POOL * POOL):
        a = a1_c[POOL * py + q // POOL, POOL * px + q % POOL]
        s = s_q[q]
        if a > best:
            best = a
            win = q
        if a + s > up:
            up = a + s
            win_up = q
        if a - s > down:
            down = a - s
            win_down = q
    s_win = s_q[win]
    old = best if best > 0.0 else 0.0
    if win_up == win and best > 0.0 and up > 0.0:
        d_up = s_win
    else:
        d_up = (up if up > 0.0 else 0.0) - old
    if win_down == win and best > 0.0 and down > 0.0:
        d_down = -s_win
    else:
        d_down = (down if down > 0.0 else 0.0) - old
    return d_up, d_down


@njit(**PARALLEL_OPTIONS)
def window_reach(xpad, stride, filter_h, filter_w, pool_h, pool_w):
    """``(N, PH*PW)``: the largest ``|x|`` any input of each pool window reads, any channel."""
    n_samples, channels = xpad.shape[0], xpad.shape[1]
    span_h = (POOL - 1) * stride + filter_h
    span_w = (POOL - 1) * stride + filter_w
    reach = np.zeros((n_samples, pool_h * pool_w))
    for n in prange(n_samples):
        for py in range(pool_h):
            for px in range(pool_w):
                y0 = POOL * py * stride
                x0 = POOL * px * stride
                m = 0.0
                for ch in range(channels):
                    for y in range(y0, y0 + span_h):
                        for x in range(x0, x0 + span_w):
                            m = max(m, abs(xpad[n, ch, y, x]))
                reach[n, py * pool_w + px] = m
    return reach


@njit(**SWEEP_OPTIONS)
def conv_sweep(xpad, W2, W3, stride, filter_h, filter_w, a1, a2, a3, labels, h):
    """Sum ``L_n(+) - L_n(-)`` over the samples for every entry of ``W1`` and ``b1``.

    ``xpad`` the zero-padded batch ``(N, C, HP, WP)``; ``a1`` ``(N, FN, OH,
    OW)``, ``a2`` ``(N, hidden)``, ``a3`` ``(N, classes)`` the cached
    convolution outputs (before the ReLU), hidden pre-activations and logits
    (:func:`fastgrad.kernels.conv.conv_prepare`). Returns ``(FN, C*FH*FW + 1)``
    sums: row ``c`` holds ``W1[c].ravel()``'s entries, then ``b1[c]``.
    """
    n_samples, filters, out_h, out_w = a1.shape
    channels = xpad.shape[1]
    taps = filter_h * filter_w
    n_taps = channels * taps
    n_rows = (n_taps + ROWS - 1) // ROWS * ROWS  # the products run in blocks of ROWS entries
    pool_h, pool_w = out_h // POOL, out_w // POOL
    n_windows = pool_h * pool_w
    hidden, classes = W3.shape
    reach = window_reach(xpad, stride, filter_h, filter_w, pool_h, pool_w)
    W3p = np.empty(packed_size(hidden, classes))
    pack(W3, W3p)
    no_bias = np.zeros(classes)
    sums = np.zeros((filters, n_taps + 1))
    for c in prange(filters):
        W2c = W2[c * n_windows:(c + 1) * n_windows]
        W2p = np.empty(packed_size(n_windows, hidden))
        pack(W2c, W2p)
        D = np.zeros((n_rows, n_windows))
        G = np.empty((n_rows, hidden))
        Zp = np.zeros((n_rows, hidden))
        DL = np.empty((n_rows, classes))
        DLm = np.empty((n_rows, classes))
        mirrored = np.empty(n_taps, dtype=np.bool_)
        safe = np.empty(n_windows, dtype=np.int64)
        critical = np.empty(n_windows, dtype=np.int64)
        winner = np.empty(n_windows, dtype=np.int64)
        rows = np.empty(n_windows, dtype=np.int64)
        dpp = np.empty(n_windows)
        dpm = np.empty(n_windows)
        s_q = np.empty(POOL * POOL)
        da_p = np.empty(hidden)
        da_m = np.empty(hidden)
        zm = np.empty(hidden)
        dl_p = np.empty(classes)
        dl_m = np.empty(classes)
        for n in range(n_samples):
            a1_c = a1[n, c]
            a2_n = a2[n]
            a3_n = a3[n]
            t = labels[n]
            # each window's kind, once for every entry of W1[c]
            n_safe = 0
            n_critical = 0
            for r in range(n_windows):
                py = r // pool_w
                px = r % pool_w
                best = -np.inf
                second = -np.inf
                win = 0
                for q in range(POOL * POOL):
                    a = a1_c[POOL * py + q // POOL, POOL * px + q % POOL]
                    if a > best:
                        second = best
                        best = a
                        win = q
                    elif a > second:
                        second = a
                reach_h = h * reach[n, r]
                if best + reach_h <= 0.0:
                    continue  # dead
                if best - reach_h > 0.0 and best - reach_h > second + reach_h:
                    safe[n_safe] = r
                    winner[r] = win
                    n_safe += 1
                else:
                    critical[n_critical] = r
                    n_critical += 1
            # the safe windows' steps, s_win of each entry, then one product for them all
            for e in range(n_taps):
                img = xpad[n, e // taps]
                fy = (e % taps) // filter_w
                fx = e % filter_w
                row = D[e]
                for i in range(n_safe):
                    r = safe[i]
                    q = winner[r]
                    oy = POOL * (r // pool_w) + q // POOL
                    ox = POOL * (r % pool_w) + q % POOL
                    row[r] = h * img[oy * stride + fy, ox * stride + fx]
            affine_selected(D, safe, n_safe, W2p, G)
            for e in range(n_taps):
                img = xpad[n, e // taps]
                fy = (e % taps) // filter_w
                fx = e % filter_w
                mirror = True
                for k in range(hidden):
                    da_p[k] = G[e, k]
                    da_m[k] = -G[e, k]
                for i in range(n_critical):
                    r = critical[i]
                    py = r // pool_w
                    px = r % pool_w
                    for q in range(POOL * POOL):
                        oy = POOL * py + q // POOL
                        ox = POOL * px + q % POOL
                        s_q[q] = h * img[oy * stride + fy, ox * stride + fx]
                    d_up, d_down = _window_shift(a1_c, py, px, s_q)
                    if d_up == 0.0 and d_down == 0.0:
                        continue
                    w2 = W2c[r]
                    for k in range(hidden):
                        da_p[k] += d_up * w2[k]
                        da_m[k] += d_down * w2[k]
                zp = Zp[e]
                for k in range(hidden):
                    a = a2_n[k]
                    zp[k] = relu_shift(a, da_p[k])
                    zm[k] = relu_shift(a, da_m[k])
                    # a window's kink or switch on one side only, or a hidden unit's kink,
                    # shows here: the -h side is the mirror only if every unit moves back
                    if zm[k] != -zp[k]:
                        mirror = False
                mirrored[e] = mirror
                if not mirror:  # the -h side's logits on their own
                    DLm[e] = 0.0
                    for k in range(hidden):
                        if zm[k] != 0.0:
                            w3 = W3[k]
                            for o in range(classes):
                                DLm[e, o] += zm[k] * w3[o]
            affine_packed(Zp, W3p, no_bias, DL)
            for e in range(n_taps):
                for o in range(classes):
                    dl_p[o] = DL[e, o]
                    dl_m[o] = -DL[e, o] if mirrored[e] else DLm[e, o]
                sums[c, e] += (vector_shift_loss(a3_n, dl_p, t)
                               - vector_shift_loss(a3_n, dl_m, t))
            # b1[c]: every output of the channel moves by h; each window recomputed
            s_q[:] = h
            count = 0
            mirror = True
            for r in range(n_windows):
                d_up, d_down = _window_shift(a1_c, r // pool_w, r % pool_w, s_q)
                if d_up == 0.0 and d_down == 0.0:
                    continue
                if d_down != -d_up:
                    mirror = False
                rows[count] = c * n_windows + r
                dpp[count] = d_up
                dpm[count] = d_down
                count += 1
            if count > 0:
                sums[c, n_taps] += _sample_diff(W2, W3, a2_n, a3_n, t, rows, dpp, dpm, count,
                                                mirror, da_p, da_m, dl_p, dl_m)
    return sums
