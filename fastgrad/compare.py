"""How two gradients are compared: one definition of absolute and relative error.

Shared by ``fastgrad check``, the benchmarks, :func:`fastgrad.gradcheck` and the
tests, so every report means the same thing by "max rel".
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np

#: Floor of the relative error's denominator. An element whose gradient is
#: below this in magnitude is pure rounding noise relative to itself (the
#: central difference's rounding is about ulp(f) / h, ~1e-12 at h = 1e-4), so
#: its error is measured against the floor instead.
REL_FLOOR = 1e-6


def abs_error(got, want):
    """Elementwise ``|got - want|`` as float64; NaN anywhere counts as infinite."""
    got, want = _pair(got, want)
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf, huge - (-huge): inf below
        diff = np.abs(got - want)
    return np.where(np.isnan(diff), np.inf, diff)


def relative_error(got, want, floor=REL_FLOOR):
    """Elementwise ``|got - want| / max(|got|, |want|, floor)``.

    A non-finite element (NaN or infinite in either input) has an infinite
    relative error, like its absolute error.

    Parameters
    ----------
    got, want : array_like
        Gradients of the same shape.
    floor : float
        Smallest denominator (see :data:`REL_FLOOR`); must be positive and finite.
    """
    if isinstance(floor, bool) or not isinstance(floor, Real) or not 0 < floor < math.inf:
        raise ValueError(f"floor must be a positive finite number, got {floor!r}")
    got, want = _pair(got, want)
    rel = np.full(got.shape, np.inf)
    finite = np.isfinite(got) & np.isfinite(want)
    a, b = got[finite], want[finite]
    scale = np.maximum(np.maximum(np.abs(a), np.abs(b)), floor)
    # scaled before subtracting: no overflow for huge values of opposite sign
    rel[finite] = np.abs(a / scale - b / scale)
    return rel


def _pair(got, want):
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:  # broadcasting would compare the wrong elements
        raise ValueError(f"got and want differ in shape: {got.shape} vs {want.shape}")
    return got, want
