"""Shared fixtures: seeded small networks and real MNIST digits from the shared folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from threadpoolctl import threadpool_limits

from fastgrad.standard import default_real_data_dir, real_batch

# The shared MNIST files sit beside the repository (never inside it); point the
# library at them whatever way fastgrad was installed.
_SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
if _SHARED.is_dir():
    os.environ.setdefault("FASTGRAD_SHARED_DATA", str(_SHARED))


@pytest.fixture(scope="session", autouse=True)
def one_blas_thread():
    """BLAS at one thread for the NumPy reference: nothing here is timed, and on a busy
    2-core machine BLAS's own threads made the book's loop 15x slower (16 ms against
    1.1 ms per loss of 784-50-10 on 100 digits)."""
    with threadpool_limits(1, user_api="blas"):
        yield


@pytest.fixture(scope="session")
def mnist_batch():
    """The first 100 real MNIST test digits (skipped when the shared folder is absent)."""
    folder = default_real_data_dir()
    if folder is None or not (folder / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip("real MNIST test files not found (../shared/data/mnist or "
                    "$FASTGRAD_SHARED_DATA)")
    x, t, _source = real_batch(100, "mnist", folder)
    return x, t
