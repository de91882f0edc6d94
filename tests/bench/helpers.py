"""Constants the benchmark tests share: the tiny CLI net, the real MNIST files, matplotlib."""

from __future__ import annotations

from pathlib import Path

import pytest

from fastgrad.standard import default_real_data_dir

#: Network and batch flags of the CLI runs: 784-5-10 on 3 digits, the reference in a blink.
TINY = ["--hidden", "5", "--batch", "3"]
FIRST_TEST_LABELS = [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
MNIST_TEST = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
#: The checkout's root, its targets file and its saved reports.
REPO = Path(__file__).resolve().parents[2]
REPO_TARGETS = REPO / "bench" / "targets.toml"
RESULTS = REPO / "bench" / "results"


def _shared_mnist() -> Path | None:
    folder = default_real_data_dir()  # where the workload itself looks
    return folder if folder is not None and all((folder / f).is_file()
                                                for f in MNIST_TEST) else None


SHARED = _shared_mnist()
needs_shared = pytest.mark.skipif(SHARED is None, reason="real MNIST test files not found "
                                  "(../shared/data/mnist or $FASTGRAD_SHARED_DATA)")
try:
    import matplotlib  # noqa: F401

    HAVE_MPL = True
except ImportError:  # the [test] extra brings matplotlib; a bare install may not have it
    HAVE_MPL = False
