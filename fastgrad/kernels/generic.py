"""Parallel central difference of any Numba-jitted scalar function."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from fastgrad.config import GENERIC_OPTIONS


@njit(**GENERIC_OPTIONS)
def generic_gradient(f, flat, shape, h, n_chunks):
    """``(f(x + h e_p) - f(x - h e_p)) / 2h`` for every flat index ``p``.

    ``flat`` is ``x`` raveled; ``f`` receives arrays of ``shape``. Each of the
    ``n_chunks`` contiguous chunks of indices perturbs its own copy, so
    ``flat`` itself is never written.
    """
    size = flat.size
    grad = np.empty(size)
    for c in prange(n_chunks):
        mine = flat.copy()
        view = mine.reshape(shape)
        for p in range(c * size // n_chunks, (c + 1) * size // n_chunks):
            original = flat[p]
            mine[p] = original + h
            f_plus = f(view)
            mine[p] = original - h
            f_minus = f(view)
            mine[p] = original
            grad[p] = (f_plus - f_minus) / (2.0 * h)
    return grad
