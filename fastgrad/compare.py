"""How two gradients are compared: one definition of absolute and relative error.

Shared by ``fastgrad check``, the benchmarks, :func:`fastgrad.gradcheck` and the
tests, so every report means the same thing by "max rel".
"""

from __future__ import annotations

import numpy as np

#: Floor of the relative error's denominator. An element whose gradient is
#: below this in magnitude is pure rounding noise relative to itself (the
#: central difference's rounding is about ulp(f) / h, ~1e-12 at h = 1e-4), so
#: its error is measured against the floor instead.
REL_FLOOR = 1e-6


def abs_error(got, want):
    """Elementwise ``|got - want|`` as float64; NaN anywhere counts as infinite."""
    diff = np.abs(np.asarray(got, dtype=np.float64) - np.asarray(want, dtype=np.float64))
    return np.where(np.isnan(diff), np.inf, diff)


def relative_error(got, want, floor=REL_FLOOR):
    """Elementwise ``|got - want| / max(|got|, |want|, floor)``.

    Parameters
    ----------
    got, want : array_like
        Gradients of the same shape.
    floor : float
        Smallest denominator (see :data:`REL_FLOOR`); must be positive.
    """
    if not floor > 0:
        raise ValueError(f"floor must be positive, got {floor!r}")
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    scale = np.maximum(np.maximum(np.abs(got), np.abs(want)), floor)
    return abs_error(got, want) / scale
