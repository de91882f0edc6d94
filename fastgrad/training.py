"""``train``: the book's chapter-4 minibatch SGD loop, with checkpoints.

Each iteration draws ``batch_size`` random training samples (with replacement,
like the book's ``np.random.choice``) from a seeded ``numpy.random.Generator``,
takes the gradient by the chosen method, and moves every parameter by
``-lr * grad``. As in the book's ``train_neuralnet.py`` the recorded loss is
that of the minibatch *after* its update, and the full train and test
accuracies are measured at iterations ``i = 0, iter_per_epoch, ...`` (after
that iteration's update), with ``iter_per_epoch = max(train_size / batch_size, 1)``.

Everything a run depends on (parameters, RNG state, history) is committed at
once after each iteration, so a run stopped by Ctrl-C and resumed from its
checkpoint ends bitwise where an uninterrupted run ends.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import numbers
import operator
import os
import signal
import threading
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from threadpoolctl import ThreadpoolController
from tqdm import tqdm

from fastgrad import checkpoint as ckpt_io
from fastgrad import data as data_io
from fastgrad import inputs, methods, reference
from fastgrad.checkpoint import Checkpoint, EpochRecord, History
from fastgrad.interrupts import is_interrupt
from fastgrad.network import TwoLayerNet
from fastgrad.reference import PARAM_NAMES

__all__ = ["DEFAULTS", "EpochRecord", "History", "Step", "TrainingDiverged",
           "TrainingInterrupted", "train"]

#: The book's settings (chapter 4), used for anything not given.
DEFAULTS = {"iters": 10_000, "batch_size": 100, "lr": 0.1, "hidden_size": 50, "output_size": 10,
            "weight_init_std": 0.01, "method": methods.DEFAULT_METHOD, "h": 1e-4, "seed": 0,
            "dataset": "mnist", "eval_every": None}
EVAL_CHUNK = 10_000  # rows per accuracy matmul: bounds memory on the 60k training set


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

    iteration: int  # SGD steps done
    iters: int  # target
    loss: float
    epoch: EpochRecord | None  # set when accuracies were measured at this step


# --- argument checking -------------------------------------------------------------


def _integer(name, minimum=1):
    def check(value):
        if isinstance(value, bool):
            raise TypeError(f"{name} must be an integer, got bool")
        try:
            value = operator.index(value)
        except TypeError:
            raise TypeError(f"{name} must be an integer, got {type(value).__name__}") from None
        if value < minimum:
            raise ValueError(f"{name} must be at least {minimum}, got {value}")
        return int(value)
    return check


def _real(name, positive=True):
    def check(value):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
        value = float(value)
        if not math.isfinite(value) or value < 0 or (positive and value == 0):
            raise ValueError(f"{name} must be {'positive' if positive else '>= 0'} and finite, "
                             f"got {value!r}")
        return value
    return check


def _optional(check):
    return lambda value: None if value is None else check(value)


def _dataset(value):
    # "custom" labels arrays passed as ``data``
    if value not in data_io.DATASETS + ("custom",):
        raise ValueError(f"dataset must be one of {data_io.DATASETS}, got {value!r}")
    return value


CHECKS = {
    "iters": _integer("iters"), "batch_size": _integer("batch_size"), "lr": _real("lr"),
    "hidden_size": _integer("hidden_size"), "output_size": _integer("output_size", minimum=2),
    "weight_init_std": _real("weight_init_std", positive=False),
    "method": lambda v: methods.check_method(v).name,
    "h": lambda v: inputs.check_h(v, inputs.NET_H_RANGE),  # as compute_gradient checks it
    "seed": _integer("seed", minimum=0), "dataset": _dataset,
    "eval_every": _optional(_integer("eval_every")),
}
# must equal the checkpoint's when resuming; everything else may change
IDENTITY = ("batch_size", "lr", "hidden_size", "output_size", "weight_init_std", "method", "h",
            "seed", "dataset", "eval_every")


def _resolve(given, ckpt, resume=None):
    """The run's configuration: given values, else the checkpoint's, else the book's.

    The checkpoint's values pass the same checks as the arguments: one that
    fails means the checkpoint ``resume`` is damaged (``CheckpointError``).
    """
    config = {}
    for name, check in CHECKS.items():
        value = given[name]
        if ckpt is None:
            config[name] = check(DEFAULTS[name] if value is None else value)
            continue
        try:
            saved = check(ckpt.config[name])
        except (TypeError, ValueError) as exc:
            raise ckpt_io.invalid(resume, f"config {name}={ckpt.config[name]!r}: {exc}") \
                from None
        config[name] = saved if value is None else check(value)
        if name in IDENTITY and config[name] != saved:
            raise ValueError(f"{name}={config[name]!r} differs from the checkpoint's "
                             f"{name}={saved!r}: a resumed run must keep its configuration")
    return config


def _path(value, name):
    try:
        return Path(os.fspath(value))
    except TypeError:
        raise TypeError(f"{name} must be a path, got {type(value).__name__}") from None


def _images(x, name):
    x = np.asarray(x)
    if x.dtype == bool or x.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be a real numeric array, got dtype {x.dtype}")
    if x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"{name} must have shape (samples, features) with samples >= 1, "
                         f"got {x.shape}")
    x = x.reshape(len(x), -1)  # (N, 1, 28, 28) from flatten=False is fine too
    if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or Inf")
    return x


def _labels(t, n, n_out, name):
    try:
        return inputs.check_labels(t, n, n_out)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{name}: {exc}") from None


def _check_data(data, n_out):
    try:
        (x_train, t_train), (x_test, t_test) = data
    except (TypeError, ValueError):
        raise TypeError("data must be ((x_train, t_train), (x_test, t_test))") from None
    x_train, x_test = _images(x_train, "x_train"), _images(x_test, "x_test")
    if x_test.shape[1] != x_train.shape[1]:
        raise ValueError(f"x_test has {x_test.shape[1]} features but x_train has "
                         f"{x_train.shape[1]}")
    return (x_train, _labels(t_train, len(x_train), n_out, "t_train"),
            x_test, _labels(t_test, len(x_test), n_out, "t_test"))


def _fingerprint(arrays):
    """SHA-256 of the values (as float64), so a resumed run provably sees the same data."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(repr(a.shape).encode())
        for start in range(0, len(a), EVAL_CHUNK):
            h.update(np.ascontiguousarray(a[start:start + EVAL_CHUNK], dtype=np.float64).data)
    return h.hexdigest()


def _accuracy(params, x, labels):
    correct = 0
    for s in range(0, len(x), EVAL_CHUNK):
        y = reference.predict(params, x[s:s + EVAL_CHUNK])
        correct += int(np.count_nonzero(np.argmax(y, axis=1) == labels[s:s + EVAL_CHUNK]))
    return correct / len(x)


def _timing(saved):
    """Timings from a checkpoint; a missing or odd entry just restarts at zero."""
    out = {"wall_time": 0.0, "grad_time": 0.0, "grad_calls": 0, "eval_time": 0.0,
           "warmup_time": 0.0}
    for key, zero in out.items():
        value = saved.get(key, zero)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
            out[key] = type(zero)(value)
    return out


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


# --- the loop ------------------------------------------------------------------------


def train(data=None, *, dataset=None, data_dir=None, iters=None, batch_size=None, lr=None,
          hidden_size=None, output_size=None, method=None, seed=None, threads=None,
          eval_every=None, weight_init_std=None, h=None, checkpoint=None,
          checkpoint_every=None, resume=None, overwrite=False, progress=False, log=None,
          callback=None) -> History:
    """Train a ``TwoLayerNet`` by minibatch SGD, as in the book's ``train_neuralnet.py``.

    Settings left ``None`` take the checkpoint's value when resuming, else the
    book's (:data:`DEFAULTS`: 10,000 iterations, batch 100, lr 0.1, 784-50-10).

    Parameters
    ----------
    data : ((x_train, t_train), (x_test, t_test)), optional
        Arrays to train on (integer or one-hot labels); else ``dataset`` is loaded.
    dataset : {'mnist', 'fashion'}
        Loaded with :func:`fastgrad.data.load_mnist` from ``data_dir``.
    iters : int
        Total SGD steps (a resumed run continues up to this count).
    batch_size, lr, hidden_size, output_size, weight_init_std, h
        Minibatch size, learning rate, widths, initial weight scale, finite-difference step.
    method : {'incremental', 'jit', 'reference', 'backprop'}
        Gradient method (see :data:`fastgrad.methods.METHODS`).
    seed : int
        Seeds the weights and the minibatch draws (default 0): same seed, same run.
    threads : int, optional
        Numba threads; results are bitwise the same for any value.
    eval_every : int, optional
        Measure accuracies every this many steps instead of once per epoch.
    checkpoint : path, optional
        Checkpoint file, written atomically every ``checkpoint_every`` steps, on
        Ctrl-C and at the end. An existing file is refused unless it is the one
        resumed or ``overwrite`` is true.
    resume : path or True, optional
        Checkpoint to continue from (True: ``checkpoint``).
    progress : bool
        Show a tqdm bar with ETA and the current loss.
    log : callable, optional
        Receives human-readable lines (start, each epoch's accuracies).
    callback : callable, optional
        Called with a :class:`Step` after every committed step.

    Returns
    -------
    History

    Raises
    ------
    fastgrad.checkpoint.CheckpointError
        The checkpoint to resume is unreadable, or a value in it is invalid.
    TrainingDiverged
        NaN/Inf loss or parameters; nothing of the bad step is kept or saved.
    TrainingInterrupted
        Ctrl-C (the first one lets the current step finish); the last completed
        step was saved to ``checkpoint`` if given.
    """
    given = {"iters": iters, "batch_size": batch_size, "lr": lr, "hidden_size": hidden_size,
             "output_size": output_size, "weight_init_std": weight_init_std,
             "method": method, "h": h, "seed": seed, "dataset": dataset,
             "eval_every": eval_every}
    threads = inputs.check_threads(threads)
    checkpoint_every = _optional(_integer("checkpoint_every"))(checkpoint_every)
    for name, fn in (("log", log), ("callback", callback)):
        if fn is not None and not callable(fn):
            raise TypeError(f"{name} must be callable, got {type(fn).__name__}")
    checkpoint = None if checkpoint is None else _path(checkpoint, "checkpoint")
    if checkpoint_every is not None and checkpoint is None:
        raise ValueError("checkpoint_every needs a checkpoint path")
    if resume is True:
        if checkpoint is None:
            raise ValueError("resume=True needs a checkpoint path")
        resume = checkpoint
    elif resume is False:
        resume = None
    resume = None if resume is None else _path(resume, "resume")
    ckpt = ckpt_io.load(resume) if resume is not None else None

    if data is not None:
        if dataset not in (None, "custom"):
            raise ValueError("give data or dataset, not both")
        given["dataset"] = "custom"
    config = _resolve(given, ckpt, resume)
    if data is None and config["dataset"] == "custom":
        raise ValueError("dataset: 'custom' (the checkpoint's) means arrays: pass them as data")
    if data is None:
        data = data_io.load_mnist(dataset=config["dataset"], data_dir=data_dir,
                                  progress=progress)
    x_train, t_train, x_test, t_test = _check_data(data, config["output_size"])
    n_train = len(x_train)
    config["input_size"] = x_train.shape[1]
    config["data_sha256"] = _fingerprint((x_train, t_train, x_test, t_test))
    if config["batch_size"] > n_train:
        raise ValueError(f"batch_size={config['batch_size']} is larger than the training set "
                         f"({n_train} samples)")
    if ckpt is not None:
        for name, what in (("input_size", "features"), ("data_sha256", "data")):
            if config[name] != ckpt.config[name]:
                raise ValueError(f"data: its {what} ({config[name]}) differ from the "
                                 f"checkpoint's ({ckpt.config[name]})")
        if config["iters"] < ckpt.iteration:
            raise ValueError(f"iters={config['iters']} is below the checkpoint's iteration "
                             f"{ckpt.iteration}")
    if checkpoint is not None:
        if checkpoint.is_dir():
            raise IsADirectoryError(f"checkpoint: {checkpoint} is a directory")
        same = resume is not None and checkpoint.exists() and os.path.samefile(resume, checkpoint)
        if checkpoint.exists() and not (same or overwrite):
            raise FileExistsError(f"checkpoint: {checkpoint} already exists; resume it or "
                                  f"allow overwriting it")

    if ckpt is None:
        init, batches = np.random.SeedSequence(config["seed"]).spawn(2)
        net = TwoLayerNet(config["input_size"], config["hidden_size"], config["output_size"],
                          config["weight_init_std"], seed=np.random.default_rng(init))
        params, rng = net.params, np.random.default_rng(batches)
        losses, epochs, timing = [], [], _timing({})
    else:
        params, rng = ckpt.params, np.random.default_rng()
        rng.bit_generator.state = ckpt.rng_state
        losses, epochs, timing = ckpt.losses.tolist(), list(ckpt.epochs), _timing(ckpt.timing)
    timing["threads"] = threads
    start, n_iters = len(losses), config["iters"]
    per_epoch = max(n_train / config["batch_size"], 1)
    if log is not None:
        c = config
        log(f"{'resuming ' + str(resume) + ' at' if ckpt else 'training from'} iteration {start}:"
            f" {c['input_size']}-{c['hidden_size']}-{c['output_size']} net on {c['dataset']}"
            f" ({n_train} train / {len(x_test)} test), {c['method']} gradient, {threads} "
            f"threads, batch {c['batch_size']}, lr {c['lr']:g}, seed {c['seed']}, "
            f"{n_iters} iterations ({per_epoch:g} per epoch)")

    def history(n, params, final=(None, None)):
        kept = [r for r in epochs if r.iteration <= n]
        return History(dict(config), params, np.array(losses[:n], dtype=np.float64), kept,
                       *final, dict(timing), start)

    def snapshot(n, params, rng_state):
        return Checkpoint(params, n, rng_state, config, np.array(losses[:n], dtype=np.float64),
                          [r for r in epochs if r.iteration <= n], timing)

    lr, batch_size, grad_method, fd_step = (config[k] for k in ("lr", "batch_size", "method",
                                                                    "h"))
    # every input of the gradient is checked once here, not on each step: x_train has no
    # NaN/Inf and as many features as W1 has rows, t_train holds int64 labels in range,
    # h and threads are checked, and each new set of parameters is checked for NaN/Inf
    gradient, compiled = methods.METHODS[grad_method].func, methods.METHODS[grad_method].compiled
    params = inputs.check_params(params)  # float64, C-contiguous (no copy if already so)
    # compiled methods: Numba threads do the work, and idle BLAS threads would only steal
    # their cores; the NumPy methods keep BLAS's own threads
    limit_blas = contextlib.nullcontext
    # (steps done, params, RNG state): replaced by a single assignment, so Ctrl-C
    # anywhere leaves a consistent state behind
    committed = (start, params, rng.bit_generator.state)
    began = time.perf_counter()
    bar = tqdm(total=n_iters, initial=start, desc=f"train ({grad_method})", unit="it",
               disable=not progress, dynamic_ncols=True, mininterval=0.25)
    # exp overflow in sigmoid is harmless (gives 0 or 1); real trouble shows as NaN/Inf below
    with bar, _CtrlC(log) as ctrl_c, np.errstate(over="ignore", under="ignore",
                                                 invalid="ignore", divide="ignore"):
        try:
            if start < n_iters and compiled:
                t0 = time.perf_counter()  # load or compile the kernels outside the timings
                gradient(params, np.ascontiguousarray(x_train[:1], dtype=np.float64),
                         t_train[:1], fd_step, threads)
                # after the warm-up: loading the kernels can load another BLAS (SciPy's)
                blas = ThreadpoolController()
                limit_blas = partial(blas.limit, limits=1, user_api="blas")
                timing["warmup_time"] += time.perf_counter() - t0
                began = time.perf_counter()
            for i in range(start, n_iters):
                if ctrl_c.requested:
                    raise KeyboardInterrupt
                params = committed[1]
                pick = rng.integers(0, n_train, size=batch_size)
                # fancy indexing copies: both come out C-contiguous
                xb = np.ascontiguousarray(x_train[pick], dtype=np.float64)
                tb = t_train[pick]
                with limit_blas():
                    t0 = time.perf_counter()
                    grad = gradient(params, xb, tb, fd_step, threads)
                    timing["grad_time"] += time.perf_counter() - t0
                    timing["grad_calls"] += 1
                    new = {k: params[k] - lr * grad[k] for k in PARAM_NAMES}
                    loss = float(reference.loss(new, xb, tb))
                if not (math.isfinite(loss) and all(np.isfinite(v).all() for v in new.values())):
                    raise TrainingDiverged(
                        f"training diverged at iteration {i + 1}: loss {loss}, non-finite "
                        f"parameters or gradient (lr={lr:g} too large?); stopped and that "
                        f"step discarded: history and parameters end at iteration {i}",
                        iteration=i + 1, loss=loss, history=history(i, params))
                losses.append(loss)
                due = (i % config["eval_every"] == 0 if config["eval_every"]
                       else i >= len(epochs) * per_epoch)
                record = None
                if due:
                    t0 = time.perf_counter()
                    record = EpochRecord(i / per_epoch, i + 1, _accuracy(new, x_train, t_train),
                                         _accuracy(new, x_test, t_test))
                    timing["eval_time"] += time.perf_counter() - t0
                    epochs.append(record)
                committed = (i + 1, new, rng.bit_generator.state)
                timing["wall_time"] += time.perf_counter() - began
                began = time.perf_counter()
                if checkpoint is not None and checkpoint_every and (i + 1) % checkpoint_every == 0:
                    ckpt_io.save(checkpoint, snapshot(*committed))
                bar.update(1)
                bar.set_postfix_str(f"loss={loss:.4f}", refresh=False)
                if record is not None and log is not None:
                    log(f"epoch {record.epoch:6.2f}  iter {i + 1:6d}  loss {loss:.4f}  "
                        f"train acc {record.train_acc:.4f}  test acc {record.test_acc:.4f}")
                if callback is not None:
                    callback(Step(i + 1, n_iters, loss, record))
        except (KeyboardInterrupt, SystemError) as exc:
            if not is_interrupt(exc):
                raise
            n, params, _ = committed
            timing["wall_time"] += time.perf_counter() - began
            saved = ckpt_io.save(checkpoint, snapshot(*committed)) if checkpoint else None
            where = f"saved to {saved}" if saved else "not saved (no checkpoint path)"
            raise TrainingInterrupted(f"interrupted after iteration {n} of {n_iters}; {where}",
                                      history=history(n, params), checkpoint=saved) from None

        params = committed[1]
        t0 = time.perf_counter()
        last = epochs[-1] if epochs else None
        if last is not None and last.iteration == n_iters:
            final = (last.train_acc, last.test_acc)
        else:
            final = (_accuracy(params, x_train, t_train), _accuracy(params, x_test, t_test))
        timing["eval_time"] += time.perf_counter() - t0
        timing["wall_time"] += time.perf_counter() - began
    if checkpoint is not None:
        ckpt_io.save(checkpoint, snapshot(*committed))
    return history(n_iters, params, final)
