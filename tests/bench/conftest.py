"""Fixtures of the benchmark tests: a tiny workload and a quick saved report.

The CLI runs on tiny nets (784-5-10, a few digits) so the reference takes a
fraction of a second; the real benchmark suite lives in the checkout's ``bench/``.
"""

from __future__ import annotations

import pytest

from fastgrad.bench.validation import compute_reference
from fastgrad.bench.workload import load_workload
from fastgrad.cli import main
from tests.bench.helpers import TINY


@pytest.fixture(scope="session")
def tiny():
    """784-3-10 on 2 synthetic digits and its full reference gradient."""
    w = load_workload(3, 2, synthetic=True)
    return w, compute_reference(w).grad


@pytest.fixture(scope="session")
def quick_report(tmp_path_factory):
    """``fastgrad bench --quick`` on the tiny net, saved as JSON and PNG: ``(status, folder)``."""
    d = tmp_path_factory.mktemp("bench")
    rc = main(["bench", "--quick", *TINY, "--no-compile", "--json", str(d / "r.json"),
               "--plot", str(d / "r.png")])
    return rc, d
