"""The training loop: minibatch, gradient, optimizer update, record, commit; Ctrl-C and NaN."""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from dataclasses import dataclass
from functools import partial

import numpy as np
from threadpoolctl import ThreadpoolController
from tqdm import tqdm

from fastgrad.checkpoint import EpochRecord
from fastgrad.interrupts import is_interrupt
from fastgrad.methods import numba_threads
from fastgrad.training import diagnosis
from fastgrad.training import schedule as schedule_mod
from fastgrad.training.commit import Committed


class TrainingDiverged(RuntimeError):
    """The loss or the parameters became NaN/Inf; ``history`` ends before that step."""

    def __init__(self, message, *, iteration, loss, history):
        super().__init__(message)
        self.iteration, self.loss, self.history = iteration, loss, history


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training; ``checkpoint`` is where the run was saved (or None)."""

    def __init__(self, message, *, history, checkpoint):
        super().__init__(message)
        self.history, self.checkpoint = history, checkpoint


@dataclass(frozen=True)
class Step:
    """What a ``callback`` sees after each committed iteration."""

    iteration: int  # steps done
    iters: int  # target
    loss: float
    epoch: EpochRecord | None  # set when accuracies were measured at this step
    note: str | None = None  # a warning raised at this step (see History.notes)


class _CtrlC:
    """Turn the first Ctrl-C into a request to stop after the current step.

    A KeyboardInterrupt raised while a Numba kernel runs surfaces as a
    ``SystemError``, and one raised anywhere mid-step wastes the step, so the
    loop stops at the next step boundary instead. A second Ctrl-C interrupts
    at once. Only the main thread's default handler is replaced, and only
    while the loop runs.
    """

    def __init__(self, log):
        self.requested, self._log, self._previous = False, log, None

    def __enter__(self):
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc_info):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        if self._log is not None:
            self._log("Ctrl-C: stopping after this iteration (press again to stop at once)")


@dataclass
class Loop:
    """One run's fixed ingredients; :meth:`run` takes it from a committed state to ``iters``.

    Every input of the gradient is checked once by the caller, not on each
    step: ``x_train`` has no NaN/Inf and as many features as the net reads,
    ``t_train`` holds int64 labels in range, ``h`` and ``threads`` are checked,
    and each new set of parameters is checked for NaN/Inf here.
    """

    model: object  # fastgrad.training.model: DenseModel or ConvModel
    optimizer: object  # fastgrad.optimizers.Optimizer
    data: tuple  # x_train, t_train, x_test, t_test
    schedule: schedule_mod.EvalSchedule
    batch_size: int
    h: float
    threads: int
    iters: int

    def _evaluate(self, params):
        x_train, t_train, x_test, t_test = self.data
        return (self.model.accuracy(params, x_train, t_train, self.threads),
                self.model.accuracy(params, x_test, t_test, self.threads))

    def _warm_up(self, params, timing):
        """Load or compile the kernels outside the timings.

        Returns the BLAS limiter and the model's minibatch sampler.
        """
        x_train, t_train = self.data[:2]
        if not self.model.method.compiled:
            # the NumPy methods keep BLAS's own threads
            return contextlib.nullcontext, self.model.sampler(x_train, self.threads)
        t0 = time.perf_counter()
        sample = self.model.sampler(x_train, self.threads)
        batch = sample(np.zeros(1, dtype=np.int64))
        self.model.gradient(params, batch, t_train[:1], self.h, self.threads)
        self.model.loss(params, batch, t_train[:1], self.threads)
        # compiled methods: Numba threads do the work, and BLAS threads (busy after an
        # accuracy check) would only steal their cores; created after the warm-up, as
        # loading the kernels can load another BLAS (SciPy's)
        blas = ThreadpoolController()
        timing["warmup_time"] += time.perf_counter() - t0
        return partial(blas.limit, limits=1, user_api="blas"), sample

    def _step(self, state, rng, sample, timing):
        """One minibatch step from ``state``.

        Returns ``(loss, new params, new optimizer state, whether both are finite)``.
        """
        pick = rng.integers(0, len(self.data[0]), size=self.batch_size)
        tb = self.data[1][pick]
        batch = sample(pick)
        t0 = time.perf_counter()
        grad = self.model.gradient(state.params, batch, tb, self.h, self.threads)
        timing["grad_time"] += time.perf_counter() - t0
        timing["grad_calls"] += 1
        new, opt_state, finite = self.optimizer.update_checked(state.params, grad,
                                                               state.optimizer_state)
        # the book records the minibatch's loss after its update
        loss = self.model.loss(new, batch, tb, self.threads)
        return loss, new, opt_state, finite

    def run(self, state: Committed, rng, record, *, checkpoint=None, checkpoint_every=None,
            progress=False, log=None, callback=None):
        """Train from ``state`` to ``iters`` steps; return the :class:`History`."""
        timing, n_iters = record.timing, self.iters
        chance = diagnosis.chance_level(self.data[1], record.config["output_size"])
        # a resumed run past its first epoch has been judged already: judged again, not told
        checked = any(r.epoch >= 1 for r in record.epochs)
        note = diagnosis.chance_note(record.epochs, chance, record.config)
        record.notes = [note] if note else []
        began = time.perf_counter()
        bar = tqdm(total=n_iters, initial=state.iteration,
                   desc=f"train ({self.model.method.name})",
                   unit="it", disable=not progress, dynamic_ncols=True, mininterval=0.25)
        # exp overflow in sigmoid is harmless (gives 0 or 1); real trouble shows as NaN/Inf
        with bar, _CtrlC(log) as ctrl_c, np.errstate(over="ignore", under="ignore",
                                                     invalid="ignore", divide="ignore"), \
                contextlib.ExitStack() as blas_limit:
            try:
                sample = None
                if state.iteration < n_iters:
                    limiter, sample = self._warm_up(state.params, timing)
                    # once for the whole loop: entering a limit per step costs ~0.1 ms,
                    # and setting Numba's threads per call ~5 us
                    blas_limit.enter_context(limiter())
                    blas_limit.enter_context(numba_threads(self.threads))
                    began = time.perf_counter()
                for i in range(state.iteration, n_iters):
                    if ctrl_c.requested:
                        raise KeyboardInterrupt
                    loss, new, opt_state, finite = self._step(state, rng, sample, timing)
                    if not (math.isfinite(loss) and finite):
                        raise TrainingDiverged(
                            f"training diverged at iteration {i + 1}: loss {loss}, non-finite "
                            f"parameters, optimizer state or gradient (lr="
                            f"{self.optimizer.lr:g} too large?); stopped and that step "
                            f"discarded: history and parameters end at iteration {i}",
                            iteration=i + 1, loss=loss, history=record.history(i, state.params))
                    record.losses.append(loss)
                    measured = note = None
                    if self.schedule.due(i, len(record.epochs)):
                        t0 = time.perf_counter()
                        measured = EpochRecord(self.schedule.epoch(i), i + 1,
                                               *self._evaluate(new))
                        timing["eval_time"] += time.perf_counter() - t0
                        record.epochs.append(measured)
                        if not checked and measured.epoch >= 1:
                            checked = True
                            note = diagnosis.chance_note([measured], chance, record.config)
                            if note:
                                record.notes.append(note)
                    state = Committed(i + 1, new, opt_state, rng.bit_generator.state)
                    timing["wall_time"] += time.perf_counter() - began
                    began = time.perf_counter()
                    if checkpoint is not None and checkpoint_every and \
                            (i + 1) % checkpoint_every == 0:
                        record.save(checkpoint, state)
                    bar.update(1)
                    bar.set_postfix_str(f"loss={loss:.4f}", refresh=False)
                    if measured is not None and log is not None:
                        log(f"epoch {measured.epoch:6.2f}  iter {i + 1:6d}  loss {loss:.4f}  "
                            f"train acc {measured.train_acc:.4f}  "
                            f"test acc {measured.test_acc:.4f}")
                    if callback is not None:
                        callback(Step(i + 1, n_iters, loss, measured, note))
            except (KeyboardInterrupt, SystemError) as exc:
                if not is_interrupt(exc):
                    raise
                timing["wall_time"] += time.perf_counter() - began
                saved = record.save(checkpoint, state) if checkpoint else None
                where = f"saved to {saved}" if saved else "not saved (no checkpoint path)"
                raise TrainingInterrupted(
                    f"interrupted after iteration {state.iteration} of {n_iters}; {where}",
                    history=record.history(state.iteration, state.params),
                    checkpoint=saved) from None

            t0 = time.perf_counter()
            last = record.epochs[-1] if record.epochs else None
            if last is not None and last.iteration == n_iters:
                final = (last.train_acc, last.test_acc)  # measured at the last step already
            else:
                final = self._evaluate(state.params)
            timing["eval_time"] += time.perf_counter() - t0
            timing["wall_time"] += time.perf_counter() - began
        if checkpoint is not None:
            record.save(checkpoint, state)
        return record.history(n_iters, state.params, final)
