"""The machine a timing ran on, and the BLAS threads it ran with.

:func:`environment` records everything a time depends on (CPU, usable cores,
Numba's threads and threading layer, the BLAS libraries and their threads,
versions, the relevant environment variables) as plain JSON-ready data, so a
saved report says where it was measured. :func:`blas_limits` holds BLAS at a
thread count for a block and restores it afterwards.
"""

from __future__ import annotations

import os
import platform
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from fastgrad import config


def _cpuinfo():
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        out.setdefault(key.strip(), value.strip())
    return out


def cpu_model():
    """CPU model name from /proc/cpuinfo, else what :mod:`platform` knows."""
    return (_cpuinfo().get("model name") or platform.processor() or platform.machine()
            or "unknown")


def blas_info():
    """The BLAS libraries NumPy loaded, as threadpoolctl sees them."""
    from threadpoolctl import threadpool_info

    keys = ("internal_api", "version", "num_threads", "threading_layer", "architecture")
    return [{k: lib.get(k) for k in keys} for lib in threadpool_info()
            if lib.get("user_api") == "blas"]


def blas_threads():
    """Threads of the BLAS in use (the largest if several), or None."""
    counts = [lib["num_threads"] for lib in blas_info() if lib["num_threads"]]
    return max(counts) if counts else None


@contextmanager
def blas_limits(threads):
    """Limit BLAS to ``threads`` threads in the body (None: leave as is); yields the count."""
    if threads is None:
        yield blas_threads()
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads, user_api="blas"):
        yield blas_threads()


def environment():
    """What a timing depends on: CPU, cores, threads, threading layer, BLAS, versions."""
    import numba

    flags = set(_cpuinfo().get("flags", "").split())
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count()
    env_keys = ("OPENBLAS", "OMP_", "MKL_", "NUMBA_", "FASTGRAD_")
    return {
        "cpu": cpu_model(),
        "simd": [f for f in ("avx2", "avx512f", "avx512_vnni", "neon") if f in flags],
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "numba_threads": config.max_threads(),
        "default_threads": config.default_threads(),
        "threading_layer": config.threading_layer(),
        "blas": blas_info(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "platform": platform.platform(),
        "env": {k: v for k, v in sorted(os.environ.items()) if k.startswith(env_keys)},
    }
