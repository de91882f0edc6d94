"""``numerical_gradient(f, x, args=())`` and ``jacobian(f, x, args=())`` for any function.

Also what :mod:`fastgrad.gradcheck` builds on: the checks of the extra
arguments (passed read-only, so ``f`` cannot change the caller's data) and of
every value ``f`` returns (finite and real, of one shape, or an error naming
the point where it was not), and the two stencil engines: ``f`` at
``x + c h e_p`` for every index ``p`` (:func:`column_values`) and at
``x + c h s`` for given sign directions ``s`` (:func:`direction_values`),
compiled and parallel for a Numba ``f`` (:mod:`fastgrad.kernels.stencil`), a
NumPy loop over a private copy of ``x`` otherwise; both evaluate ``f`` at the
very same points.
"""

from __future__ import annotations

import numbers

import numpy as np
from numba.core.errors import NumbaError
from numba.core.registry import CPUDispatcher

from fastgrad import config, inputs, reference
from fastgrad.kernels import stencil
from fastgrad.kernels.generic import FLAT_CALL, generic_gradient
from fastgrad.methods import numba_threads

#: Kinds of array a jitted ``f`` may receive through ``args``: bool, int, float, complex.
_NUMBA_KINDS = "biufc"


def _readonly(value, where, jitted):
    """``value`` with every array replaced by a read-only view (tuples recursively)."""
    if isinstance(value, tuple):
        return tuple(_readonly(v, f"{where}[{i}]", jitted) for i, v in enumerate(value))
    if isinstance(value, np.ndarray):
        if jitted and (isinstance(value, np.ma.MaskedArray) or value.dtype.kind not in
                       _NUMBA_KINDS):
            raise TypeError(f"{where} must be a plain numeric array for a jitted f, got "
                            f"{type(value).__name__} of dtype {value.dtype}")
        view = value.view()
        view.flags.writeable = False
        return view
    if jitted and not isinstance(value, (numbers.Number, np.generic, str)):
        raise TypeError(f"{where} must be an array, a number, a string or a tuple of them for "
                        f"a jitted f, got {type(value).__name__} (convert lists to arrays)")
    return value


def check_args(args, jitted):
    """Return ``args`` with arrays as read-only views; ``TypeError`` unless a tuple."""
    if not isinstance(args, tuple):
        raise TypeError(f"args must be a tuple of extra arguments of f, got "
                        f"{type(args).__name__} (write args=(a,) for a single one)")
    return _readonly(args, "args", jitted)


def flatten_args(args):
    """``(leaves, call)``: the flat tuple of non-tuple arguments and how to rebuild ``args``.

    ``call`` is the argument list of the kernel's call to ``f``, written in
    terms of ``leaves`` (``*leaves`` when ``args`` holds no tuple).
    """
    if not any(isinstance(a, tuple) for a in args):
        return args, FLAT_CALL
    leaves = []

    def expr(value):
        if isinstance(value, tuple):
            inner = ", ".join(expr(v) for v in value)
            return f"({inner}{',' if len(value) == 1 else ''})"
        leaves.append(value)
        return f"leaves[{len(leaves) - 1}]"

    call = ", ".join(expr(a) for a in args)
    return tuple(leaves), call


def point_name(index=None, sign=+1, direction=False):
    """Where ``f`` was evaluated, for messages: ``x``, ``x + h*e[(1, 2)]``, ``x - h*v[3]``."""
    if index is None:
        return "x"
    op = "+" if sign > 0 else "-"
    return f"x {op} h*{'v' if direction else 'e'}[{index}]"


def as_scalar(value, where):
    """``value`` as a float if it is a finite real scalar, else a clear error."""
    if isinstance(value, np.ndarray) and value.ndim == 0 and value.dtype.kind in "iuf":
        value = value[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        kind = (f"ndarray of shape {value.shape}" if isinstance(value, np.ndarray)
                else f"{type(value).__name__} {value!r}"[:80])
        raise TypeError(f"f must return a real scalar, got {kind} at {where}")
    out = float(value)
    if not np.isfinite(out):
        raise ValueError(f"f must return a finite value, got {out} at {where}")
    return out


def _short(exc, limit=300):
    text = str(exc)
    for marker in ("\n\nFile ", "\nDuring:", "\n\nDuring:"):
        text = text.split(marker)[0]
    return " ".join(text.split())[:limit]


def evaluate(f, point, args, where="x"):
    """``f(point, *args)`` as a checked float; a jitted ``f`` that fails to compile names itself."""
    try:
        value = f(point, *args)
    except (NumbaError, TypeError) as exc:
        # a dispatcher raises TypeError for a wrong number of arguments
        if not isinstance(f, CPUDispatcher) or isinstance(exc, TypeError) and where != "x":
            raise
        raise _compile_error(f, point, args, exc) from None
    return as_scalar(value, where)


def _compile_error(f, point, args, exc):
    name = getattr(f, "__name__", type(f).__name__)
    shown = ", ".join(["x"] + [f"args[{i}]" for i in range(len(args))])
    hint = " (args are passed read-only: f must not write into them)" \
        if "readonly" in str(exc) else ""
    return TypeError(f"f ({name}) does not compile as a scalar function f({shown}) with x of "
                     f"shape {np.shape(point)}{hint}: {_short(exc)}")


def prepare(f, x, args):
    """Validate ``f``, ``x``, ``args``; return ``(jitted, work, args)``.

    ``work`` is a private C-contiguous float64 copy of ``x`` and ``args`` has
    read-only views of the caller's arrays.
    """
    if not callable(f):
        raise TypeError(f"f must be callable, got {type(f).__name__}")
    jitted = isinstance(f, CPUDispatcher)
    args = check_args(args, jitted)
    arr = np.asarray(x)
    if arr.dtype == object or arr.dtype == bool or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        raise TypeError(f"x must be a real numeric array, got dtype {arr.dtype}")
    if arr.size == 0:
        raise ValueError("x must have at least one element")
    # A private float64 copy: the caller's array is never perturbed.
    work = np.array(arr, dtype=np.float64, order="C", copy=True)
    if not np.all(np.isfinite(work)):
        raise ValueError("x contains NaN or Inf")
    return jitted, work, args


class _Checked:
    """``f`` for the reference loop: every value checked, with the index it belongs to.

    The loop evaluates ``x + h e_p`` then ``x - h e_p`` for ``p`` in
    ``np.ndindex`` order, so call ``k`` belongs to index ``k // 2``.
    """

    def __init__(self, f, shape):
        self.f, self.shape, self.calls = f, shape, 0

    def __call__(self, point, *args):
        k, self.calls = self.calls, self.calls + 1
        index = np.unravel_index(k // 2, self.shape) if self.shape else ()
        where = point_name(tuple(int(i) for i in index), +1 if k % 2 == 0 else -1)
        return evaluate(self.f, point, args, where)


def _explain_nonfinite(f, work, args, grad, h):
    """Raise the error for the first non-finite gradient entry of a jitted ``f``."""
    p = int(np.flatnonzero(~np.isfinite(grad))[0])
    index = tuple(int(i) for i in np.unravel_index(p, work.shape))
    point = work.copy()
    flat = point.reshape(-1)
    for sign in (+1, -1):
        flat[p] = work.reshape(-1)[p] + sign * h
        evaluate(f, point, args, point_name(index, sign))
    raise ValueError(f"the central difference at index {index} overflowed: f(x + h*e) and "
                     f"f(x - h*e) are finite but their difference over 2h is not")


def numerical_gradient(f, x, h=1e-4, threads=None, args=(), *, client=None, chunk_size=None):
    """Central-difference gradient of a scalar function ``f`` at ``x``.

    A plain Python callable runs the reference loop; a Numba ``@njit``
    function runs the compiled loop in parallel, each thread perturbing its own
    copy. Both return the same values up to rounding.

    Parameters
    ----------
    f : callable
        ``f(x, *args) -> float`` for a float64 array ``x``.
    x : array_like of real numbers
        Point of evaluation; never modified.
    h : float
        Step size, positive and finite.
    threads : int, optional
        Threads of the compiled loop; default ``$FASTGRAD_THREADS`` or all cores.
    args : tuple
        Extra arguments of ``f``: for a jitted ``f`` arrays, numbers, strings
        and tuples of them, passed to the kernel as arguments (never compiled in
        as constants). Arrays are passed read-only: ``f`` cannot modify them.
    client : dask.distributed.Client, optional
        Evaluate on this Dask cluster (the ``distributed`` extra): the indices
        of ``x`` are split into chunks, one task each, every entry by the
        book's loop (a jitted ``f`` called once per evaluation; ``threads`` is
        not used). Bitwise the same result for any workers and chunk size.
        ``f`` and ``args`` must pickle (cloudpickle). See :mod:`fastgrad.distributed`.
    chunk_size : int, optional
        Indices per task with a ``client``; default about one second of calls,
        from one evaluation of ``f`` timed here.

    Returns
    -------
    ndarray of float64
        Shaped like ``x``.
    """
    jitted, work, args = prepare(f, x, args)
    h = inputs.check_h(h)
    threads = inputs.check_threads(threads)
    if client is not None:
        return _cluster_gradient(client, chunk_size, f, work, args, h, jitted)
    evaluate(f, work, args)  # type errors and compile errors before the long loop
    # A 0-d array cannot be reshaped inside a kernel: one element needs no threads.
    if not jitted or work.ndim == 0:
        return reference.numerical_gradient(_Checked(f, work.shape), work, h, args)
    leaves, call = flatten_args(args)
    try:
        with numba_threads(threads):
            flat = generic_gradient(f, work.reshape(-1), work.shape, h,
                                    config.n_chunks(threads, work.size), leaves, call)
    except NumbaError as exc:
        raise _compile_error(f, work, args, exc) from None
    if not np.all(np.isfinite(flat)):
        _explain_nonfinite(f, work, args, flat, h)
    return flat.reshape(work.shape)


# --- array-valued f: values, stencils, the Jacobian --------------------------------


def as_values(value, where, shape=None):
    """``value`` as a flat float64 array, checked: real, finite, of ``shape`` if given.

    ``shape`` is ``()`` for a scalar ``f``; ``None`` accepts any shape (the first
    evaluation, which fixes it).
    """
    if isinstance(value, np.ma.MaskedArray):
        raise TypeError(f"f must return a plain array or a scalar, got a masked array at "
                        f"{where}")
    arr = value if isinstance(value, np.ndarray) else None
    if arr is None:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Number):
            raise TypeError(f"f must return a real scalar or array, got "
                            f"{type(value).__name__} at {where}")
        arr = np.asarray(value)
    if arr.dtype.kind == "c":
        raise TypeError(f"f must return real values, got complex ({arr.dtype}) at {where}")
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"f must return a real scalar or array, got dtype {arr.dtype} at "
                        f"{where}")
    if shape is not None and arr.shape != shape:
        raise ValueError(f"f must return the same shape at every point: {shape} at x, "
                         f"got {arr.shape} at {where}")
    out = np.asarray(arr, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(out)):
        raise ValueError(f"f must return a finite value, got "
                         f"{out[~np.isfinite(out)][0]} at {where}")
    return out


def output_of(f, work, args):
    """``(shape, values, eps)`` of ``f`` at ``x``: the output's shape (``()`` for a
    scalar), its values raveled, and the machine epsilon of its dtype (float64 if
    it is not a floating type)."""
    try:
        value = f(work, *args)
    except (NumbaError, TypeError) as exc:
        if not isinstance(f, CPUDispatcher):
            raise
        raise _compile_error(f, work, args, exc) from None
    values = as_values(value, "x")
    dtype = np.asarray(value).dtype
    eps = float(np.finfo(dtype).eps) if dtype.kind == "f" else float(np.finfo(np.float64).eps)
    return np.shape(value), values, max(eps, float(np.finfo(np.float64).eps))


def _offset_name(c, index, direction):
    sign = "+" if c > 0 else "-"
    step = "h" if abs(c) == 1 else f"{abs(c):g}h"
    return f"x {sign} {step}*{'v' if direction else 'e'}[{index}]"


def _checked(values, sizes, m, out_shape, where):
    """Raise the error of the first slot whose value was of the wrong size or not finite."""
    bad = np.flatnonzero(sizes != m)
    if bad.size:
        q = int(bad[0])
        raise ValueError(f"f must return the same shape at every point: {out_shape} at x, "
                         f"got {int(sizes[q])} values at {where(q)}")
    finite = np.isfinite(values).all(axis=1)
    if not finite.all():
        q = int(np.flatnonzero(~finite)[0])
        raise ValueError(f"f must return a finite value, got "
                         f"{values[q][~np.isfinite(values[q])][0]} at {where(q)}")


def column_values(f, work, args, h, offsets, threads, out_shape, jitted):
    """``f(x + c h e_p)`` raveled, as an array ``(x.size, len(offsets), m)``.

    Compiled and parallel over ``p`` for a jitted ``f`` (bitwise the same for any
    thread count), else a loop over a private copy of ``x``.
    """
    offsets = np.asarray(offsets, dtype=np.float64)
    n, k = work.size, offsets.size
    m = int(np.prod(out_shape, dtype=np.int64))

    def where(q):
        p, j = divmod(q, k)
        index = tuple(int(i) for i in np.unravel_index(p, work.shape))
        return _offset_name(offsets[j], index, False)

    if jitted and work.ndim > 0:
        leaves, call = flatten_args(args)
        try:
            with numba_threads(threads):
                values, sizes = stencil.column_stencil(
                    f, work.reshape(-1), work.shape, h, offsets, m,
                    config.n_chunks(threads, n), leaves, call, vector=out_shape != ())
        except NumbaError as exc:
            raise _compile_error(f, work, args, exc) from None
        _checked(values, sizes, m, out_shape, where)
        return values.reshape(n, k, m)
    return column_values_loop(f, work, args, h, offsets, out_shape, 0, n, where)


def column_values_loop(f, work, args, h, offsets, out_shape, start, stop, where=None):
    """Rows ``start:stop`` of :func:`column_values` by a loop over a private copy of ``x``.

    The same points, in the same order, as the whole loop: a Dask task
    (:mod:`fastgrad.distributed`) computes a chunk of the rows with it.
    """
    offsets = np.asarray(offsets, dtype=np.float64)
    k = offsets.size
    m = int(np.prod(out_shape, dtype=np.int64))
    if where is None:
        def where(q):
            p, j = divmod(q, k)
            index = tuple(int(i) for i in np.unravel_index(p, work.shape))
            return _offset_name(offsets[j], index, False)

    values = np.empty((stop - start, k, m))
    point = work.copy()
    flat = point.reshape(-1)
    for p in range(start, stop):
        original = flat[p]
        for j in range(k):
            flat[p] = original + offsets[j] * h
            values[p - start, j] = as_values(f(point, *args), where(p * k + j), out_shape)
        flat[p] = original
    return values


def direction_values(f, work, args, h, offsets, threads, out_shape, jitted, signs, tasks):
    """``f(x + c h s_t)`` raveled, as an array ``(len(tasks), len(offsets), m)``.

    ``tasks`` is ``(rows, lo, hi, scales)``: task ``t`` moves the coordinates
    ``lo[t] <= i < hi[t]`` by ``signs[rows[t], i] * scales[t]`` times ``c h``
    (formed as ``x_i + (s_i h) c`` by both engines), the others not at all.
    """
    offsets = np.asarray(offsets, dtype=np.float64)
    rows, lo, hi, scales = (np.ascontiguousarray(a, dtype=d) for a, d in
                            zip(tasks, (np.int64, np.int64, np.int64, np.float64), strict=True))
    n_tasks, k = rows.size, offsets.size
    m = int(np.prod(out_shape, dtype=np.int64))

    def where(q):
        t, j = divmod(q, k)
        return _offset_name(offsets[j], int(t), True)

    if jitted and work.ndim > 0:
        leaves, call = flatten_args(args)
        try:
            with numba_threads(threads):
                values, sizes = stencil.direction_stencil(
                    f, work.reshape(-1), work.shape, h, offsets, m, signs, rows, lo, hi, scales,
                    config.n_chunks(threads, n_tasks), leaves, call, vector=out_shape != ())
        except NumbaError as exc:
            raise _compile_error(f, work, args, exc) from None
        _checked(values, sizes, m, out_shape, where)
        return values.reshape(n_tasks, k, m)
    values = np.empty((n_tasks, k, m))
    base = work.reshape(-1)
    point = work.copy()
    flat = point.reshape(-1)
    for t in range(n_tasks):
        a, b = lo[t], hi[t]
        step = signs[rows[t], a:b].astype(np.float64) * scales[t]
        step *= h
        for j in range(k):
            np.add(base[a:b], step * offsets[j], out=flat[a:b])
            values[t, j] = as_values(f(point, *args), where(t * k + j), out_shape)
        flat[a:b] = base[a:b]
    return values


def jacobian(f, x, *, args=(), h=1e-4, threads=None):
    """Central-difference Jacobian of ``f`` at ``x``.

    Column ``p`` is ``(f(x + h e_p) - f(x - h e_p)) / 2h`` for the flat index
    ``p`` of ``x``. A Numba ``@njit`` function runs compiled and in parallel over
    the columns, each thread perturbing its own copy of ``x`` (bitwise the same
    result for any thread count); any other callable runs the reference loop
    (perturb, evaluate, restore, on a private copy). ``x`` is never modified.

    Parameters
    ----------
    f : callable
        ``f(x, *args)`` returning a real array of a fixed shape (or a scalar,
        a Jacobian of one row).
    x : array_like of real numbers
        Point of evaluation, any shape.
    args : tuple
        Extra arguments of ``f``, passed read-only (see
        :func:`fastgrad.numerical_gradient`).
    h : float
        Step size, positive and finite (default 1e-4).
    threads : int, optional
        Threads of the compiled loop; default ``$FASTGRAD_THREADS`` or all cores.

    Returns
    -------
    ndarray of float64, shape ``(m, n)``
        ``m`` = size of ``f``'s output (rows in its raveled order), ``n`` = size
        of ``x`` (columns in its raveled order).

    Raises
    ------
    TypeError
        ``f`` is not callable, returns complex or non-numeric values, or does
        not compile.
    ValueError
        ``f`` returns a non-finite value or changes its output's shape (the
        message names the point), or ``x``/``h`` is invalid.

    Examples
    --------
    >>> import numpy as np
    >>> from numba import njit
    >>> import fastgrad
    >>> f = njit(lambda x: np.array([x[0] * x[1], np.sin(x[1])]))
    >>> np.round(fastgrad.jacobian(f, np.array([2.0, 0.0])), 6)
    array([[0., 2.],
           [0., 1.]])
    """
    jitted, work, args = prepare(f, x, args)
    h = inputs.check_h(h)
    threads = inputs.check_threads(threads)
    out_shape, _, _ = output_of(f, work, args)
    values = column_values(f, work, args, h, (1.0, -1.0), threads, out_shape, jitted)
    with np.errstate(over="ignore", invalid="ignore"):
        jac = (values[:, 0, :] - values[:, 1, :]) / (2.0 * h)
    if not np.all(np.isfinite(jac)):
        raise ValueError("a column of the Jacobian overflowed: f(x + h*e) and f(x - h*e) are "
                         "finite but their difference over 2h is not")
    return np.ascontiguousarray(jac.T)

def _cluster_gradient(client, chunk_size, f, work, args, h, jitted):
    """:func:`numerical_gradient` on a Dask client (see :mod:`fastgrad.distributed`)."""
    from fastgrad import distributed

    return distributed.function_gradient(client, f, work, args, h, jitted,
                                         chunk_size=chunk_size)
