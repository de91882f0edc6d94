"""The book's optimizer rules, compiled: one parallel pass per parameter array.

Each kernel reads flat (1-D, C-contiguous) views of one parameter, its
gradient and its state slots, writes the new values into fresh arrays, and
returns how many of them are NaN/Inf, so the training loop's divergence check
costs no second pass. The operations and their order are those of
:mod:`fastgrad.optimizers` (the book's), with the same Python-float scalars
passed in; fastmath stays off (no FMA contraction), so every result is bitwise
the NumPy rule's.
"""

from __future__ import annotations

import math

from numba import njit, prange

from fastgrad.config import JIT_OPTIONS, PARALLEL_OPTIONS

EPS = 1e-7  # the book's guard in every adaptive denominator (as in fastgrad.optimizers)


@njit(inline="always", **JIT_OPTIONS)
def _bad(x):
    return 0 if math.isfinite(x) else 1


@njit(**PARALLEL_OPTIONS)
def sgd(p, g, lr, new_p):
    """``p - lr * g``."""
    bad = 0
    for i in prange(p.size):
        new_p[i] = p[i] - lr * g[i]
        bad += _bad(new_p[i])
    return bad


@njit(**PARALLEL_OPTIONS)
def momentum(p, g, v, mom, lr, new_p, new_v):
    """``v = mom * v - lr * g; p + v``."""
    bad = 0
    for i in prange(p.size):
        vi = mom * v[i] - lr * g[i]
        new_v[i] = vi
        new_p[i] = p[i] + vi
        bad += _bad(new_p[i]) + _bad(vi)
    return bad


@njit(**PARALLEL_OPTIONS)
def nesterov(p, g, v, mom, lr, mom2, lr_ahead, new_p, new_v):
    """``v = v * mom - lr * g; (p + mom2 * v) - lr_ahead * g`` (``mom2 = mom * mom``,
    ``lr_ahead = (1 + mom) * lr``, as the book's expressions evaluate)."""
    bad = 0
    for i in prange(p.size):
        vi = v[i] * mom
        vi = vi - lr * g[i]
        new_v[i] = vi
        new_p[i] = (p[i] + mom2 * vi) - lr_ahead * g[i]
        bad += _bad(new_p[i]) + _bad(vi)
    return bad


@njit(**PARALLEL_OPTIONS)
def adagrad(p, g, h, lr, new_p, new_h):
    """``h = h + g * g; p - lr * g / (sqrt(h) + 1e-7)``."""
    bad = 0
    for i in prange(p.size):
        hi = h[i] + g[i] * g[i]
        new_h[i] = hi
        new_p[i] = p[i] - lr * g[i] / (math.sqrt(hi) + EPS)
        bad += _bad(new_p[i]) + _bad(hi)
    return bad


@njit(**PARALLEL_OPTIONS)
def rmsprop(p, g, h, decay, keep, lr, new_p, new_h):
    """``h = h * decay + keep * g * g; p - lr * g / (sqrt(h) + 1e-7)`` (``keep = 1 - decay``)."""
    bad = 0
    for i in prange(p.size):
        hi = h[i] * decay
        hi = hi + keep * g[i] * g[i]
        new_h[i] = hi
        new_p[i] = p[i] - lr * g[i] / (math.sqrt(hi) + EPS)
        bad += _bad(new_p[i]) + _bad(hi)
    return bad


@njit(**PARALLEL_OPTIONS)
def adam(p, g, m, v, keep1, keep2, lr_t, new_p, new_m, new_v):
    """``m += keep1 * (g - m); v += keep2 * (g * g - v); p - lr_t * m / (sqrt(v) + 1e-7)``."""
    bad = 0
    for i in prange(p.size):
        mi = m[i] + keep1 * (g[i] - m[i])
        vi = v[i] + keep2 * (g[i] * g[i] - v[i])
        new_m[i] = mi
        new_v[i] = vi
        new_p[i] = p[i] - lr_t * mi / (math.sqrt(vi) + EPS)
        bad += _bad(new_p[i]) + _bad(mi) + _bad(vi)
    return bad
