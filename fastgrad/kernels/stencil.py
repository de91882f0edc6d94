"""Finite-difference stencils of any Numba-jitted function, scalar or array valued.

Two kernels, both parallel and both bitwise independent of the thread count:

- :func:`column_stencil`: for every flat index ``p`` of ``x`` and every step
  multiple ``c`` of ``offsets``, ``f(x + c h e_p)`` (the Jacobian's columns and
  the full gradient check). Each of the ``n_chunks`` chunks of indices
  perturbs its own copy of ``x`` and restores each entry before the next, so
  the shared ``flat`` is never written.
- :func:`direction_stencil`: for every task ``t`` (a direction, or a block of
  coordinates of one) and every ``c``, ``f(x + c h s)`` with
  ``s_i = signs[rows[t], i] * scales[t]`` for ``lo[t] <= i < hi[t]`` and ``0``
  elsewhere (the directional check and its search for wrong elements). Each
  chunk of tasks forms its points in its own copy of ``x``, one pass over the
  block per point: the step ``(s_i h) c`` is recomputed in the pass rather than
  stored, and between tasks only the coordinates the next task does not
  overwrite are restored (at 1e6 coordinates these passes, not the
  arithmetic, are what the stencil costs beyond ``f``).

Every value of ``f`` lands in its own slot of the output, written by the one
task that computed it; nothing is summed across tasks, so the order in which
threads run cannot change a bit. Points are formed as ``x_i + (s_i h) c``:
with ``c`` in ``{1, -1, 1/2, -1/2}`` the products by ``c`` are exact, and the
NumPy path of :mod:`fastgrad.gradcheck` forms them by the same operations, so
both engines evaluate ``f`` at the very same points.

The user's extra arguments reach ``f`` as kernel arguments (flattened leaves,
see :mod:`fastgrad.kernels.generic`). A value of the wrong size is not raised
inside the parallel loop: its size is recorded in ``sizes`` and the wrapper
names the point.
"""

from __future__ import annotations

import functools
import textwrap

import numpy as np
from numba import njit, prange

from fastgrad.config import GENERIC_OPTIONS
from fastgrad.kernels.generic import FLAT_CALL

# How one value of f is stored: a scalar into slot 0, an array raveled into all m slots.
_STORE = {
    False: """
            out[{slot}, 0] = float(f(view, {call}))
            sizes[{slot}] = 1""",
    True: """
            value = np.ravel(f(view, {call}))
            sizes[{slot}] = value.size
            if value.size == m:
                for i in range(m):
                    out[{slot}, i] = value[i]""",
}

_COLUMNS = '''
def column_stencil(f, flat, shape, h, offsets, m, n_chunks, leaves):
    """``out[p * k + j] = f(x + offsets[j] * h * e_p)`` (raveled) for every flat index ``p``."""
    size, k = flat.size, offsets.size
    out = np.full((size * k, m), np.nan)
    sizes = np.zeros(size * k, dtype=np.int64)
    for c in prange(n_chunks):
        mine = flat.copy()
        view = mine.reshape(shape)
        for p in range(c * size // n_chunks, (c + 1) * size // n_chunks):
            original = flat[p]
            for j in range(k):
                mine[p] = original + offsets[j] * h
                {store}
            mine[p] = original
    return out, sizes
'''

_DIRECTIONS = '''
def direction_stencil(f, flat, shape, h, offsets, m, signs, rows, lo, hi, scales, n_chunks,
                      leaves):
    """``out[t * k + j] = f(x + offsets[j] * h * s_t)`` (raveled) for every task ``t``."""
    n_tasks, k = rows.size, offsets.size
    out = np.full((n_tasks * k, m), np.nan)
    sizes = np.zeros(n_tasks * k, dtype=np.int64)
    for c in prange(n_chunks):
        mine = flat.copy()
        view = mine.reshape(shape)
        stop = (c + 1) * n_tasks // n_chunks
        for t in range(c * n_tasks // n_chunks, stop):
            row, scale, a, b = signs[rows[t]], scales[t], lo[t], hi[t]
            for j in range(k):
                shift = offsets[j]
                for i in range(a, b):
                    mine[i] = flat[i] + ((float(row[i]) * scale) * h) * shift
                {store}
            if t + 1 < stop:  # the next task writes its own block before calling f
                for i in range(a, min(b, lo[t + 1])):
                    mine[i] = flat[i]
                for i in range(max(a, hi[t + 1]), b):
                    mine[i] = flat[i]
    return out, sizes
'''


def _build(template, name, call, vector, slot):
    indent = " " * (template.index("{store}") - template.rindex("\n", 0, template.index("{store}"))
                    - 1)
    store = textwrap.dedent(_STORE[vector].format(slot=slot, call=call)).strip("\n")
    source = template.format(store=textwrap.indent(store, indent).lstrip())
    namespace = {"np": np, "prange": prange}
    exec(compile(source, f"<fastgrad {name}: {call}, vector={vector}>", "exec"), namespace)
    return njit(**GENERIC_OPTIONS)(namespace[name])


@functools.lru_cache(maxsize=64)
def column_kernel(call=FLAT_CALL, vector=False):
    """The jitted column stencil calling ``f(view, <call>)``."""
    return _build(_COLUMNS, "column_stencil", call, vector, "p * k + j")


@functools.lru_cache(maxsize=64)
def direction_kernel(call=FLAT_CALL, vector=False):
    """The jitted direction stencil calling ``f(view, <call>)``."""
    return _build(_DIRECTIONS, "direction_stencil", call, vector, "t * k + j")


def column_stencil(f, flat, shape, h, offsets, m, n_chunks, leaves=(), call=FLAT_CALL,
                   vector=False):
    """Run :func:`column_kernel`; returns ``(values (n * k, m), sizes (n * k,))``."""
    return column_kernel(call, vector)(f, flat, shape, h, offsets, m, n_chunks, leaves)


def direction_stencil(f, flat, shape, h, offsets, m, signs, rows, lo, hi, scales, n_chunks,
                      leaves=(), call=FLAT_CALL, vector=False):
    """Run :func:`direction_kernel`; returns ``(values (tasks * k, m), sizes (tasks * k,))``."""
    return direction_kernel(call, vector)(f, flat, shape, h, offsets, m, signs, rows, lo, hi,
                                          scales, n_chunks, leaves)
