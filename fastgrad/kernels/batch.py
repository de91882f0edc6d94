"""Per-iteration work of the training loop, compiled: the minibatch gather.

It runs once per training step next to the gradient, so any time it takes is
serial overhead on every thread but one (issue 10): NumPy's fancy indexing and
float64 conversion take two passes and ~0.1 ms on a chapter-4 minibatch.
"""

from __future__ import annotations

from numba import njit, prange

from fastgrad.config import PARALLEL_OPTIONS


@njit(**PARALLEL_OPTIONS)
def gather_rows(x, pick, out):
    """``out[r] = x[pick[r]]`` as float64 (``out`` (len(pick), x.shape[1]))."""
    for r in prange(pick.size):
        row = x[pick[r]]
        for k in range(out.shape[1]):
            out[r, k] = row[k]
