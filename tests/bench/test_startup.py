"""fastgrad.bench.startup: import and first gradient, timed in a fresh process."""

from __future__ import annotations

import numpy as np
import pytest

from fastgrad.bench.startup import measure_startup
from fastgrad.bench.validation import TOL, check_gradient, compute_reference
from fastgrad.bench.workload import load_workload


def test_startup_is_measured_in_a_subprocess(tmp_path, monkeypatch):
    # without PYTHONPATH the child still imports this very copy of fastgrad
    monkeypatch.delenv("PYTHONPATH", raising=False)
    out = measure_startup("incremental", hidden=3, save_to=tmp_path / "g.npz")
    assert {"wait_s", "import_s", "first_call_s", "run_s", "compile_s"} <= set(out)
    assert out["wait_s"] >= out["import_s"] > 0 and out["first_call_s"] >= out["compile_s"] >= 0
    with np.load(tmp_path / "g.npz") as z:
        grad = {k: z[k] for k in z.files}
    w = load_workload(3, 1, synthetic=True)
    assert check_gradient("incremental", grad, compute_reference(w, sample=8), w).max_abs <= TOL


def test_startup_of_an_unknown_method_fails_before_starting_a_process():
    with pytest.raises(ValueError, match="unknown method"):
        measure_startup("nope")
