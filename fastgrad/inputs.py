"""Validation and conversion of user inputs, shared by every public entry point.

Each function returns a clean value (C-contiguous float64 arrays, int64
labels, a positive float ``h``, a thread count) or raises a ``ValueError`` /
``TypeError`` that names the argument and what was expected.
"""

from __future__ import annotations

import numbers
import operator

import numpy as np

from fastgrad import config


def _as_float_array(value, name, allow_bool=False):
    if isinstance(value, np.ma.MaskedArray):
        raise TypeError(f"{name} must be a plain array: masked arrays would silently "
                        "lose their mask (fill or compress them first)")
    if isinstance(value, str):
        raise TypeError(f"{name} must be a numeric array, got str")
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name} must be a numeric array: {exc}") from None
    numeric = np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    if not (numeric or (allow_bool and arr.dtype == bool)):
        raise TypeError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or Inf")
    return arr


#: Steps the network methods accept. Above 1 a step is no derivative estimate
#: for this network (and ``expm1(h z)`` could overflow); below 1e-300 the
#: ``1 / 2h`` of the difference quotient would overflow.
NET_H_RANGE = (1e-300, 1.0)


def check_h(h, valid_range=None):
    """Return ``h`` as a positive finite float, within ``valid_range`` if given."""
    if isinstance(h, bool) or not isinstance(h, numbers.Real):
        raise TypeError(f"h must be a real number, got {type(h).__name__}")
    h = float(h)
    if not np.isfinite(h) or h <= 0.0:
        raise ValueError(f"h must be positive and finite, got {h!r}")
    if valid_range is not None and not valid_range[0] <= h <= valid_range[1]:
        raise ValueError(f"h must lie in [{valid_range[0]:g}, {valid_range[1]:g}] for the "
                         f"network's gradient, got {h!r}")
    return h


def check_threads(threads):
    """Return a thread count in ``[1, max_threads]``; ``None`` means the default."""
    if threads is None:
        return config.default_threads()
    if isinstance(threads, bool):
        raise TypeError("threads must be an integer or None, got bool")
    try:
        n = operator.index(threads)
    except TypeError:
        raise TypeError(f"threads must be an integer or None, got {type(threads).__name__}") \
            from None
    limit = config.max_threads()
    if n < 1 or n > limit:
        raise ValueError(f"threads must be between 1 and {limit} (NUMBA_NUM_THREADS), got {n}")
    return n


def check_params(params):
    """Return ``{W1, b1, ..., W{L+1}, b{L+1}}`` as C-contiguous float64 arrays, shapes chained.

    ``W_l`` is ``(n_{l-1}, n_l)`` and ``b_l`` is ``(n_l,)``; ``W{l+1}`` must take
    ``W_l``'s outputs. Arrays already in that form are returned as they are (not
    copied): the kernels only read them and the reference perturbs a copy of its own.
    """
    if not hasattr(params, "keys"):
        raise TypeError(f"params must be a dict of arrays, got {type(params).__name__}")
    count = 0
    while f"W{count + 1}" in params:
        count += 1
    if count < 2:  # at least one hidden layer: W1, b1, W2, b2
        missing = [name for name in ("W1", "b1", "W2", "b2") if name not in params]
        raise ValueError(f"params is missing {', '.join(missing)}")
    names = [name for i in range(1, count + 1) for name in (f"W{i}", f"b{i}")]
    missing = [name for name in names if name not in params]
    if missing:
        raise ValueError(f"params is missing {', '.join(missing)}")
    extra = sorted(set(params) - set(names))
    if extra:
        raise ValueError(f"params has unexpected entries {', '.join(map(str, extra))}: expected "
                         f"{', '.join(names)}")
    out = {}
    for name in names:
        arr = _as_float_array(params[name], f"params[{name!r}]")
        ndim = 2 if name.startswith("W") else 1
        if arr.ndim != ndim:
            what = "(inputs, outputs)" if ndim == 2 else "(outputs,)"
            raise ValueError(f"params[{name!r}] must have shape {what}, got {arr.shape}")
        if arr.size == 0:
            raise ValueError(f"params[{name!r}] must be non-empty, got shape {arr.shape}")
        out[name] = arr  # kernels only read; the reference works on its own copy
    for i in range(1, count + 1):
        W, b = f"W{i}", f"b{i}"
        if out[b].shape != (out[W].shape[1],):
            raise ValueError(f"params[{b!r}] must have shape ({out[W].shape[1]},) to match "
                             f"params[{W!r}] {out[W].shape}, got {out[b].shape}")
        if i > 1 and out[W].shape[0] != out[f"W{i - 1}"].shape[1]:
            raise ValueError(f"params[{W!r}] must have {out[f'W{i - 1}'].shape[1]} rows to "
                             f"take the outputs of params['W{i - 1}'] "
                             f"{out[f'W{i - 1}'].shape}, got shape {out[W].shape}")
    return out


def output_size(params) -> int:
    """Width of the last layer of checked ``params``."""
    count = len(params) // 2
    return params[f"W{count}"].shape[1]


def check_x(x, n_in):
    """Return the batch as a C-contiguous float64 ``(batch, n_in)`` array."""
    arr = _as_float_array(x, "x")
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2:
        raise ValueError(f"x must have shape (batch, {n_in}), got {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError("x is an empty batch: need at least one sample")
    if arr.shape[1] != n_in:
        raise ValueError(f"x must have shape (batch, {n_in}) to match W1, got {arr.shape}")
    return arr


def check_labels(t, batch, n_out):
    """Return integer labels ``(batch,)`` from one-hot rows or integer(-valued) labels."""
    arr = _as_float_array(t, "t", allow_bool=True)
    if arr.ndim == 2 and arr.shape == (batch, n_out) and not (n_out == 1 and batch == 1):
        if not np.all((arr == 0.0) | (arr == 1.0)) or not np.all(arr.sum(axis=1) == 1.0):
            raise ValueError("t given as rows must be one-hot: each row exactly one 1, rest 0")
        return np.ascontiguousarray(arr.argmax(axis=1), dtype=np.int64)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr.reshape(-1)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1 or arr.shape[0] != batch:
        raise ValueError(f"t must be {batch} integer labels or one-hot rows of shape "
                         f"({batch}, {n_out}) to match x, got shape {arr.shape}")
    if not np.all(arr == np.round(arr)):
        raise ValueError("t must hold integer labels (got non-integer values)")
    if arr.min() < 0 or arr.max() >= n_out:
        raise ValueError(f"t labels must lie in [0, {n_out}), got values in "
                         f"[{arr.min():g}, {arr.max():g}]")
    return arr.astype(np.int64)


def check_batch(params, x, t):
    """Validate a (params, x, t) triple; return converted arrays."""
    params = check_params(params)
    n_in = params["W1"].shape[0]
    n_out = output_size(params)
    x = check_x(x, n_in)
    labels = check_labels(t, x.shape[0], n_out)
    return params, x, labels
