"""Shared fixtures: seeded small networks and real MNIST digits from the shared folder."""

from __future__ import annotations

import pytest

from fastgrad.workload import default_real_data_dir, real_batch


@pytest.fixture(scope="session")
def mnist_batch():
    """The first 100 real MNIST test digits (skipped when the shared folder is absent)."""
    folder = default_real_data_dir()
    if folder is None or not (folder / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip("real MNIST test files not found (../shared/data/mnist or "
                    "$FASTGRAD_SHARED_DATA)")
    x, t, _source = real_batch(100, "mnist", folder)
    return x, t
