"""The minibatch of a training step, gathered on the Numba threads.

The book draws a minibatch with replacement; NumPy's ``x[pick]`` and the
float64 conversion are two serial passes (~0.1 ms of a ~3 ms chapter-4 step
on one core). :func:`gather` gives the same rows in one parallel pass.
(A compiled loss after the update was tried too: no faster than NumPy's,
whose matrix product is BLAS's.)
"""

from __future__ import annotations

import numpy as np

from fastgrad.kernels.batch import gather_rows
from fastgrad.methods import numba_threads


def gather(x, pick, threads):
    """``x[pick]`` as a new C-contiguous float64 array (``x`` 2-d, ``pick`` int64)."""
    out = np.empty((pick.size, x.shape[1]))
    with numba_threads(threads):
        gather_rows(x, pick, out)
    return out
