"""Where a gradient's time goes: its phases, the serial share, and Amdahl's projection.

Every compiled method runs as a short sequence of phases (compiled parallel
regions and the serial work between them), each marked ``parallel`` or
``serial``. :class:`PhaseTimer` records them; the serial fraction ``s`` of a
one-thread call bounds the speed-up on ``N`` cores by Amdahl's law,
``1 / (s + (1 - s) / N)``: a projection from a measurement, not a measurement.
"""

from __future__ import annotations

import math
import statistics
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field

#: Core counts of the projection.
PROJECT_CORES = (4, 8, 16, 64)


class PhaseTimer:
    """Records ``(name, kind, seconds, items)`` of each phase entered through it.

    ``items`` is the number of ``prange`` iterations of a parallel phase (its
    granularity: 50 hidden units cannot keep 64 cores busy).
    """

    def __init__(self):
        self.records = []

    @contextmanager
    def __call__(self, name, kind, items=None):
        if kind not in ("serial", "parallel"):
            raise ValueError(f"kind must be 'serial' or 'parallel', got {kind!r}")
        start = time.perf_counter()
        try:
            yield
        finally:
            self.records.append((name, kind, time.perf_counter() - start, items))


def no_timer(name, kind, items=None):
    """The timer of an ordinary call: records nothing."""
    return nullcontext()


def amdahl(serial_fraction, cores):
    """Amdahl's speed-up on ``cores`` for a given serial fraction."""
    if not 0.0 <= serial_fraction <= 1.0:
        raise ValueError(f"serial_fraction must lie in [0, 1], got {serial_fraction!r}")
    if cores < 1:
        raise ValueError(f"cores must be at least 1, got {cores!r}")
    return 1.0 / (serial_fraction + (1.0 - serial_fraction) / cores)


@dataclass
class PhaseProfile:
    """Median one-thread time of each phase of a method over several calls."""

    method: str
    phases: list = field(default_factory=list)  # (name, kind, median seconds, items)

    @property
    def total(self) -> float:
        return sum(p[2] for p in self.phases)

    @property
    def serial(self) -> float:
        return sum(p[2] for p in self.phases if p[1] == "serial")

    @property
    def serial_fraction(self) -> float:
        return self.serial / self.total if self.total > 0 else 0.0

    def projection(self, cores=PROJECT_CORES):
        """``{cores: projected speed-up}`` from the serial fraction (Amdahl)."""
        return {n: amdahl(self.serial_fraction, n) for n in cores}

    def granular_projection(self, cores=PROJECT_CORES):
        """``{cores: projected speed-up}`` also counting each parallel phase's granularity.

        A phase of ``items`` equal iterations on ``n`` cores takes
        ``ceil(items / n) / items`` of its one-thread time (load imbalance);
        still a projection, and still optimistic (no memory-bandwidth limit).
        """
        out = {}
        for n in cores:
            if n < 1:
                raise ValueError(f"cores must be at least 1, got {n!r}")
            t = 0.0
            for _, kind, seconds, items in self.phases:
                if kind == "serial":
                    t += seconds
                elif items:
                    t += seconds * math.ceil(items / n) / items
                else:
                    t += seconds / n
            out[n] = self.total / t if t > 0 else float(n)
        return out

    def as_dict(self):
        return {"method": self.method, "serial_fraction": self.serial_fraction,
                "total_s": self.total,
                "phases": [{"name": n, "kind": k, "seconds": s, "items": i}
                           for n, k, s, i in self.phases],
                "projection": {str(n): v for n, v in self.projection().items()},
                "granular_projection": {str(n): v
                                        for n, v in self.granular_projection().items()}}


def profile(func, args, repeats=5, method="?"):
    """Run ``func(*args, timer=...)`` ``repeats`` times; median seconds per phase.

    Call it with the work pinned to one thread (the serial fraction of a
    one-thread call is what Amdahl's law takes).
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats!r}")
    runs = []
    for _ in range(repeats):
        timer = PhaseTimer()
        func(*args, timer=timer)
        runs.append(timer.records)
    names = [(name, kind, items) for name, kind, _, items in runs[0]]
    if any([(n, k, i) for n, k, _, i in r] != names for r in runs):
        raise RuntimeError(f"{method}: phases differ between calls")
    return PhaseProfile(method, [
        (name, kind, statistics.median(r[i][2] for r in runs), items)
        for i, (name, kind, items) in enumerate(names)])
