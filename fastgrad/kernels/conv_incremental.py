"""Central difference of the convolution's parameters from cached activations.

Still ``(f(theta + h e_p) - f(theta - h e_p)) / 2h`` for every entry of ``W1``
and ``b1`` of the book's ``SimpleConvNet``, with less work; each shortcut is
exact up to rounding, so the O(h^2) truncation is the reference's:

* An entry ``W1[c, ch, fy, fx]`` moves only channel ``c`` of the convolution,
  and moves its output at ``(oy, ox)`` by exactly ``+-h v`` with ``v`` the
  zero-padded input ``x[ch, oy*stride + fy, ox*stride + fx]`` (``b1[c]``: by
  ``+-h`` everywhere). Every other channel, hence every other pooled feature,
  is bitwise unchanged; a pool window none of whose four inputs moves keeps
  its value, and is skipped.
* A window that moves is recomputed: its maximum of the moved ReLU outputs,
  ``relu(max_i(a_i +- s_i))``, on each side. That is the value the
  reference's pooling gives: ``argmax`` picks the first of tied inputs, but a
  tie has one value, so a step that crosses a ReLU kink, overtakes the
  runner-up or breaks a tie (blank regions give equal outputs) yields what
  the reference yields. When the winner stays the same input on the positive
  side of the kink the change is ``s`` itself (no cancellation in
  ``(a + s) - a``), and ``-s`` on the other side.
* The hidden pre-activations move by ``sum_r dp_r W2[r, :]`` over the moved
  windows ``r`` (rows ``c*PH*PW + py*PW + px``): the affine layer is linear in
  the pooled features. When every window moves by ``dp- = -dp+`` (no switch,
  no kink), the ``-h`` sum is the negated ``+h`` sum exactly (IEEE rounding is
  symmetric), so it is formed once. The hidden ReLU is applied to the moved
  values exactly (``relu(a + d) - relu(a)``, exactly ``d`` when no kink lies
  between), the logits move by those changes times ``W3``'s rows, and each
  sample's loss at ``+h`` and ``-h`` is evaluated from its moved logits with
  the max-shifted softmax, as the reference does.
* A sample none of whose windows moves cancels exactly in ``f+ - f-`` and is
  skipped; the others' differences ``L_n(+) - L_n(-)`` are summed in sample
  order and scaled by ``1 / (N 2h)``.

The step is exactly ``h`` (``theta +- h`` is never rounded to float64).
``W2, b2, W3, b3`` are not handled here: the layers above the pooling are a
two-layer ReLU net on the pooled features, served by
:mod:`fastgrad.kernels.deep`.

Parallel over chunks of parameters (``prange``); each chunk has its own
scratch and each entry sums its samples in order, so the result is bitwise
the same for any thread count.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from fastgrad.config import JIT_OPTIONS, SWEEP_OPTIONS
from fastgrad.kernels.deep import vector_shift_loss

POOL = 2


@njit(inline="always", **JIT_OPTIONS)
def _relu_step(a, s):
    """``relu(a + s) - relu(a)``, exactly ``s`` when no kink lies between."""
    if a > 0.0:
        return s if a + s > 0.0 else -a
    return a + s if a + s > 0.0 else 0.0


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
        zp = _relu_step(a, da_p[k])
        zm = _relu_step(a, da_m[k])
        if zp != 0.0:
            row = W3[k]
            for o in range(dl_p.size):
                dl_p[o] += zp * row[o]
        if zm != 0.0:
            row = W3[k]
            for o in range(dl_m.size):
                dl_m[o] += zm * row[o]
    return vector_shift_loss(a3_n, dl_p, t) - vector_shift_loss(a3_n, dl_m, t)


@njit(**SWEEP_OPTIONS)
def conv_sweep(xpad, W2, W3, stride, filter_h, filter_w, a1, a2, a3, labels, h, n_chunks):
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
    per_filter = channels * taps + 1
    n_params = filters * per_filter
    pool_h, pool_w = out_h // POOL, out_w // POOL
    n_windows = pool_h * pool_w
    hidden, classes = W3.shape
    sums = np.zeros(n_params)
    for chunk in prange(n_chunks):
        rows = np.empty(n_windows, dtype=np.int64)
        dpp = np.empty(n_windows)
        dpm = np.empty(n_windows)
        da_p = np.empty(hidden)
        da_m = np.empty(hidden)
        dl_p = np.empty(classes)
        dl_m = np.empty(classes)
        for p in range(chunk * n_params // n_chunks, (chunk + 1) * n_params // n_chunks):
            c = p // per_filter
            k = p % per_filter
            is_bias = k == per_filter - 1
            ch = 0 if is_bias else k // taps
            fy = 0 if is_bias else (k % taps) // filter_w
            fx = 0 if is_bias else k % filter_w
            total = 0.0
            for n in range(n_samples):
                a1_c = a1[n, c]
                img = xpad[n, ch]
                count = 0
                symmetric = True
                for py in range(pool_h):
                    for px in range(pool_w):
                        moved = False
                        best = -np.inf  # unperturbed maximum, its input and that input's step
                        win = 0
                        s_win = 0.0
                        up = -np.inf  # maximum at +h and its input
                        win_up = 0
                        down = -np.inf  # maximum at -h and its input
                        win_down = 0
                        for q in range(POOL * POOL):
                            oy = POOL * py + q // POOL
                            ox = POOL * px + q % POOL
                            a = a1_c[oy, ox]
                            s = h if is_bias else h * img[oy * stride + fy, ox * stride + fx]
                            if s != 0.0:
                                moved = True
                            if a > best:
                                best = a
                                win = q
                                s_win = s
                            if a + s > up:
                                up = a + s
                                win_up = q
                            if a - s > down:
                                down = a - s
                                win_down = q
                        if not moved:
                            continue
                        old = best if best > 0.0 else 0.0
                        if win_up == win and best > 0.0 and up > 0.0:
                            d_up = s_win
                        else:
                            d_up = (up if up > 0.0 else 0.0) - old
                        if win_down == win and best > 0.0 and down > 0.0:
                            d_down = -s_win
                        else:
                            d_down = (down if down > 0.0 else 0.0) - old
                        if d_up == 0.0 and d_down == 0.0:
                            continue
                        if d_down != -d_up:
                            symmetric = False
                        rows[count] = (c * pool_h + py) * pool_w + px
                        dpp[count] = d_up
                        dpm[count] = d_down
                        count += 1
                if count == 0:
                    continue
                total += _sample_diff(W2, W3, a2[n], a3[n], labels[n], rows, dpp, dpm, count,
                                      symmetric, da_p, da_m, dl_p, dl_m)
            sums[p] = total
    return sums.reshape((filters, per_filter))
