"""Parallel central difference of any Numba-jitted scalar function.

The user's extra arguments reach ``f`` as real kernel arguments, never as
globals (which Numba would freeze into the compiled code as constants). Numba's
parallel lowering cannot hand a *nested* tuple holding arrays to the threads,
so the wrapper passes the flat tuple of leaves and each kernel rebuilds the
nesting in its call to ``f``: one kernel per call expression, built from the
single source below (``f(view, *leaves)`` for the usual flat ``args``).
"""

from __future__ import annotations

import functools

import numpy as np
from numba import njit, prange

from fastgrad.config import GENERIC_OPTIONS

_SOURCE = '''
def generic_gradient(f, flat, shape, h, n_chunks, leaves):
    """``(f(x + h e_p, *args) - f(x - h e_p, *args)) / 2h`` for every flat index ``p``.

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
            f_plus = float(f(view, {call}))
            mine[p] = original - h
            f_minus = float(f(view, {call}))
            mine[p] = original
            grad[p] = (f_plus - f_minus) / (2.0 * h)
    return grad
'''

#: Call expression of flat ``args`` (every leaf a direct argument of ``f``).
FLAT_CALL = "*leaves"


@functools.lru_cache(maxsize=64)
def generic_kernel(call=FLAT_CALL):
    """The jitted kernel calling ``f(view, <call>)``; ``call`` indexes ``leaves``."""
    namespace = {"np": np, "prange": prange}
    exec(compile(_SOURCE.format(call=call), f"<fastgrad generic kernel: {call}>", "exec"),
         namespace)
    return njit(**GENERIC_OPTIONS)(namespace["generic_gradient"])


def generic_gradient(f, flat, shape, h, n_chunks, leaves=(), call=FLAT_CALL):
    """Run :func:`generic_kernel` for ``call`` (see the module docstring)."""
    return generic_kernel(call)(f, flat, shape, h, n_chunks, leaves)
