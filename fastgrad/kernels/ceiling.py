"""Compute-bound ``prange`` kernel: what this machine gives any parallel code.

``fastgrad bench`` times it interleaved with the gradient methods, so each
method's thread speed-up can be read against the machine's own ceiling,
measured in the same rounds under the same load.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from fastgrad.config import PARALLEL_OPTIONS


@njit(**PARALLEL_OPTIONS)
def ceiling_work(n_items, inner):
    """``n_items`` equal, independent chains of ``inner`` multiply-adds and exps.

    Arithmetic only (no memory traffic beyond one float per item), with
    ``n_items`` much larger than any thread count, so the split over threads
    is balanced and the speed-up is the machine's, not the kernel's.
    """
    out = np.empty(n_items)
    for i in prange(n_items):
        x = 1.0 + i * 1e-9
        acc = 0.0
        for _ in range(inner):
            # a dependent chain: neither vectorised nor hoisted out of the loop
            x = x * 0.9999999 + 1e-7
            acc += math.exp(-x)
        out[i] = acc
    return out
