"""Seeded test cases shared by the test modules."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def run_with_four_threads(script, timeout=600):
    """Run ``script`` in a process whose Numba starts 4 threads (more than CI's cores);
    it must print ``ok`` (its asserts compare results across thread counts)."""
    env = {**os.environ, "NUMBA_NUM_THREADS": "4"}
    out = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ok"


def make_case(n_in, n_hidden, n_out, batch, seed, density=0.3, std=0.5):
    """Seeded params, MNIST-like sparse inputs in [0, 1] and integer labels.

    ``std`` larger than the book's 0.01 makes the gradients large enough for
    an error to show.
    """
    rng = np.random.default_rng(seed)
    params = {
        "W1": std * rng.standard_normal((n_in, n_hidden)),
        "b1": 0.1 * rng.standard_normal(n_hidden),
        "W2": std * rng.standard_normal((n_hidden, n_out)),
        "b2": 0.1 * rng.standard_normal(n_out),
    }
    x = rng.random((batch, n_in)) * (rng.random((batch, n_in)) < density)
    t = rng.integers(0, n_out, size=batch)
    return params, x.astype(np.float32), t
