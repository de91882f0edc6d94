"""The arrays a run trains on: checked once up front, and fingerprinted for resuming."""

from __future__ import annotations

import hashlib

import numpy as np

from fastgrad import inputs

CHUNK = 10_000  # rows hashed at a time: bounds memory on the 60k training set


def _images(x, name):
    x = np.asarray(x)
    if x.dtype == bool or x.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be a real numeric array, got dtype {x.dtype}")
    if x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"{name} must have shape (samples, features) with samples >= 1, "
                         f"got {x.shape}")
    x = x.reshape(len(x), -1)  # (N, 1, 28, 28) from flatten=False is fine too
    if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or Inf")
    if x.dtype.itemsize < 4 and x.dtype.kind == "f":  # Numba has no float16: widen, exactly
        x = x.astype(np.float32)
    return x


def _labels(t, n, n_out, name):
    try:
        return inputs.check_labels(t, n, n_out)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{name}: {exc}") from None


def check_data(data, n_out):
    """``(x_train, t_train, x_test, t_test)`` as 2-d images and int64 labels, or an error."""
    try:
        (x_train, t_train), (x_test, t_test) = data
    except (TypeError, ValueError):
        raise TypeError("data must be ((x_train, t_train), (x_test, t_test))") from None
    x_train, x_test = _images(x_train, "x_train"), _images(x_test, "x_test")
    if x_test.shape[1] != x_train.shape[1]:
        raise ValueError(f"x_test has {x_test.shape[1]} features but x_train has "
                         f"{x_train.shape[1]}")
    return (x_train, _labels(t_train, len(x_train), n_out, "t_train"),
            x_test, _labels(t_test, len(x_test), n_out, "t_test"))


def fingerprint(arrays):
    """SHA-256 of the values (as float64), so a resumed run provably sees the same data."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(repr(a.shape).encode())
        for start in range(0, len(a), CHUNK):
            h.update(np.ascontiguousarray(a[start:start + CHUNK], dtype=np.float64).data)
    return h.hexdigest()
