"""What a run commits after each step, and how it is saved and reported.

Everything a run depends on (parameters, optimizer state, RNG state) is one
:class:`Committed` value, replaced by a single assignment after a whole step,
so Ctrl-C anywhere leaves a consistent state behind, and a run resumed from
its checkpoint ends bitwise where an uninterrupted run ends.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from fastgrad import checkpoint as ckpt_io
from fastgrad.checkpoint import Checkpoint, History
from fastgrad.optimizers import OptimizerState


class Committed(NamedTuple):
    """The state after ``iteration`` whole steps."""

    iteration: int
    params: dict
    optimizer_state: OptimizerState
    rng_state: dict


def timing_from(saved):
    """Timings from a checkpoint; a missing or odd entry just restarts at zero."""
    out = {"wall_time": 0.0, "grad_time": 0.0, "grad_calls": 0, "eval_time": 0.0,
           "warmup_time": 0.0}
    for key, zero in out.items():
        value = saved.get(key, zero)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
            out[key] = type(zero)(value)
    return out


class Record:
    """The run's history so far: losses, accuracy records and timings."""

    def __init__(self, config, losses=(), epochs=(), timing=None, start=0):
        self.config = config
        self.losses, self.epochs = list(losses), list(epochs)
        self.timing = timing_from(timing or {})
        self.start = start
        self.notes = []  # warnings about the run (fastgrad.training.diagnosis), one line each

    def _upto(self, n):
        return (np.array(self.losses[:n], dtype=np.float64),
                [r for r in self.epochs if r.iteration <= n])

    def history(self, n, params, final=(None, None)) -> History:
        """The :class:`History` of the first ``n`` steps ending at ``params``."""
        losses, epochs = self._upto(n)
        return History(dict(self.config), params, losses, epochs, *final, dict(self.timing),
                       self.start, list(self.notes))

    def snapshot(self, state: Committed) -> Checkpoint:
        """The checkpoint of ``state``."""
        losses, epochs = self._upto(state.iteration)
        return Checkpoint(state.params, state.iteration, state.rng_state, self.config, losses,
                          epochs, self.timing, state.optimizer_state)

    def save(self, path, state: Committed):
        """Write ``state`` to ``path`` atomically; return the path."""
        return ckpt_io.save(path, self.snapshot(state))
