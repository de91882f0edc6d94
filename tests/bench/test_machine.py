"""fastgrad.bench.machine: what a timing depends on, and BLAS held at a thread count."""

from __future__ import annotations

import json

from fastgrad.bench.machine import blas_limits, blas_threads, cpu_model, environment


def test_environment_reports_cpu_threads_and_blas():
    env = environment()
    for key in ("cpu", "logical_cpus", "numba_threads", "threading_layer", "blas", "numpy"):
        assert env[key] not in (None, ""), key
    assert all({"internal_api", "num_threads"} <= set(b) for b in env["blas"])
    assert env["cpu"] == cpu_model()
    json.dumps(env)  # goes into the report as is


def test_blas_limits_holds_and_restores_the_thread_count():
    before = blas_threads()  # the test session holds BLAS at one thread
    with blas_limits(None) as n:  # None leaves BLAS as it is
        assert n == before
    with blas_limits(2) as n:
        assert n == blas_threads() and 1 <= n <= 2
        with blas_limits(1) as inner:
            assert inner == blas_threads() == 1
        assert blas_threads() == n
    assert blas_threads() == before
