"""A run on disk: checkpoints, the history and result files, all written atomically.

A checkpoint is one ``.npz`` file holding the parameters, the optimizer's
state arrays (``opt_<slot>_<param>``), the loss and accuracy history as
arrays, and a JSON text ``meta`` with the configuration (network, optimizer and
its hyper-parameters), the iteration count, the optimizer's update count, the
minibatch RNG state and the timings. Nothing is pickled, so loading
(``allow_pickle=False``) cannot run code, and every field is checked before a
run trusts it. Format 1 (chapter-4 runs before the optimizers) still loads, as
the two-layer sigmoid net trained by SGD. A fully connected run's config has
``net`` ``'mlp'`` (a checkpoint without ``net`` is one); chapter 7's
convolutional net has ``net`` ``'convnet'``, its ``conv_param`` and
``input_dim`` ``[C, H, W]``, and its one hidden width in ``hidden_size_list``.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from fastgrad import inputs
from fastgrad.files import atomic_write
from fastgrad.optimizers import OPTIMIZERS, OptimizerState
from fastgrad.reference import param_names

__all__ = ["Checkpoint", "CheckpointError", "EpochRecord", "History", "invalid",
           "load", "save"]

FORMAT = 2
#: Configuration keys every checkpoint carries (see :func:`fastgrad.training.train`).
CONFIG_KEYS = ("input_size", "hidden_size_list", "output_size", "activation",
               "weight_init_std", "weight_decay_lambda", "optimizer", "lr",
               "optimizer_options", "batch_size", "method", "h", "seed", "dataset",
               "data_sha256", "eval_every", "iters")
_EPOCH_FIELDS = ("epoch", "iteration", "train_acc", "test_acc")
_ARRAY_KEYS = ("format", "meta", "losses", *(f"epochs_{name}" for name in _EPOCH_FIELDS))
#: What format 1 (the chapter-4 loop: TwoLayerNet, sigmoid, SGD) implied
_FORMAT1 = {"activation": "sigmoid", "weight_decay_lambda": 0.0, "optimizer": "sgd",
            "optimizer_options": {}}
#: What a config without a network kind (a fully connected run's, before the convnet) means
_FULLY_CONNECTED = {"net": "mlp", "conv_param": None, "input_dim": None}


class CheckpointError(ValueError):
    """A checkpoint file that is unreadable, incomplete or inconsistent."""


@dataclass(frozen=True)
class EpochRecord:
    """Accuracy on the full train and test sets, measured once per epoch.

    ``iteration`` counts the SGD steps taken when it was measured; ``epoch``
    is the book's ``i / iter_per_epoch`` at that point (0 for the first).
    """

    epoch: float
    iteration: int
    train_acc: float
    test_acc: float


@dataclass
class Checkpoint:
    """Everything needed to continue a run bitwise where it stopped."""

    params: dict
    iteration: int
    rng_state: dict
    config: dict
    losses: np.ndarray
    epochs: list = field(default_factory=list)
    timing: dict = field(default_factory=dict)  # not part of the run's identity
    optimizer_state: OptimizerState | None = None  # None: no state yet (iteration 0)


@dataclass
class History:
    """Result of :func:`fastgrad.training.train`.

    ``losses[n - 1]`` is the minibatch loss after step ``n``; ``epochs`` the
    accuracy records; ``params`` the final parameters; ``timing`` seconds
    (``wall_time`` of the training loops, ``grad_time`` over ``grad_calls``
    gradients, ``eval_time``, ``warmup_time`` of JIT loading), summed over
    resumed sessions. Timings are not part of a run's reproducible identity.
    """

    config: dict
    params: dict
    losses: np.ndarray
    epochs: list
    final_train_acc: float | None
    final_test_acc: float | None
    timing: dict
    start_iteration: int = 0
    #: Warnings about the run, one line each: its training accuracy still at chance
    #: after an epoch, with the likely cause (:mod:`fastgrad.training.diagnosis`).
    notes: list = field(default_factory=list)

    @property
    def iterations(self) -> int:
        return len(self.losses)

    @property
    def wall_time(self) -> float:
        return self.timing["wall_time"]

    @property
    def time_per_gradient(self) -> float:
        calls = self.timing["grad_calls"]
        return self.timing["grad_time"] / calls if calls else float("nan")

    @property
    def step_overhead(self) -> float:
        """Seconds per iteration outside the gradient and the accuracy checks.

        The minibatch gather, the update, the loss after it and the bookkeeping:
        work between the gradient's calls, which the threads speed up little.
        """
        calls = self.timing["grad_calls"]
        if not calls:
            return float("nan")
        t = self.timing
        return max(t["wall_time"] - t["grad_time"] - t["eval_time"], 0.0) / calls

    @property
    def step_overhead_share(self) -> float:
        """:attr:`step_overhead` as a share of a whole iteration (accuracy checks left out)."""
        step = self.time_per_gradient + self.step_overhead
        return self.step_overhead / step if step > 0 else float("nan")

    def to_dict(self) -> dict:
        """JSON-ready summary, losses and epoch records (parameters left out)."""
        measured = bool(self.timing["grad_calls"])
        summary = {"iterations": self.iterations, "final_train_acc": self.final_train_acc,
                   "final_test_acc": self.final_test_acc,
                   "time_per_gradient": self.time_per_gradient if measured else None,
                   "step_overhead": self.step_overhead if measured else None,
                   "step_overhead_share": self.step_overhead_share if measured else None,
                   **self.timing}
        return {"config": self.config, "summary": summary, "notes": list(self.notes),
                "losses": self.losses.tolist(), "epochs": [asdict(r) for r in self.epochs]}

    def save(self, out_dir) -> list:
        """Write ``metrics.json``, ``metrics.csv`` and ``params.npz`` into ``out_dir``.

        The CSV has one row per iteration (``iteration,loss``) with the epoch
        columns filled where the accuracies were measured. Each file is
        written atomically. Returns the paths.
        """
        out = Path(out_dir)
        text = json.dumps(self.to_dict(), indent=1, allow_nan=False)
        rows = io.StringIO()
        writer = csv.writer(rows, lineterminator="\n")
        writer.writerow(["iteration", "loss", "epoch", "train_acc", "test_acc"])
        at = {r.iteration: r for r in self.epochs}
        for n, loss in enumerate(self.losses.tolist(), start=1):
            r = at.get(n)
            writer.writerow([n, repr(loss)] + ([repr(r.epoch), repr(r.train_acc),
                                                repr(r.test_acc)] if r else ["", "", ""]))
        table = rows.getvalue().encode()
        return [
            atomic_write(out / "metrics.json", lambda fh: fh.write(text.encode())),
            atomic_write(out / "metrics.csv", lambda fh: fh.write(table)),
            atomic_write(out / "params.npz", lambda fh: np.savez(fh, **self.params)),
        ]


def save(path, ckpt: Checkpoint):
    """Write ``ckpt`` to ``path`` atomically; return the path."""
    state = ckpt.optimizer_state or OptimizerState(int(ckpt.iteration), {})
    meta = {"format": FORMAT, "iteration": int(ckpt.iteration), "config": ckpt.config,
            "optimizer_iter": int(state.iter), "rng_state": ckpt.rng_state,
            "timing": ckpt.timing}
    arrays = {name: np.ascontiguousarray(ckpt.params[name], dtype=np.float64)
              for name in param_names(ckpt.params)}
    for slot, values in state.slots.items():
        for name, value in values.items():
            arrays[f"opt_{slot}_{name}"] = np.ascontiguousarray(value, dtype=np.float64)
    arrays["losses"] = np.asarray(ckpt.losses, dtype=np.float64)
    for name, dtype in zip(_EPOCH_FIELDS, (np.float64, np.int64, np.float64, np.float64),
                           strict=True):
        arrays[f"epochs_{name}"] = np.array([getattr(r, name) for r in ckpt.epochs],
                                            dtype=dtype)
    text = np.array(json.dumps(meta, allow_nan=False))  # a unicode array, not an object

    def write(fh):
        np.savez(fh, format=np.array(FORMAT), meta=text, **arrays)

    return atomic_write(path, write)


def invalid(path, detail, what="resume") -> CheckpointError:
    """The error for the checkpoint at ``path`` that fails a check (``detail``: which)."""
    message = f"{what}: {path} is not a valid fastgrad checkpoint"
    return CheckpointError(message if detail is None else f"{message}: {detail}")


def load(path, what="resume"):
    """Read and check the checkpoint at ``path``.

    Raises
    ------
    FileNotFoundError
        No such file.
    CheckpointError
        Anything else wrong with it; the message starts with ``what``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what}: checkpoint {path} does not exist")
    bad = str(invalid(path, None, what))
    try:
        # our own handle: np.load leaks the one it opens when the zip is damaged
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:
            missing = [key for key in _ARRAY_KEYS if key not in z.files]
            if missing:
                raise CheckpointError(f"{bad}: missing {', '.join(missing)}")
            raw = {key: z[key] for key in z.files}
    except CheckpointError:
        raise
    except Exception as exc:  # zipfile, zlib, numpy format errors: all mean "corrupt"
        raise CheckpointError(f"{bad}: {type(exc).__name__}: {exc}") from exc
    try:
        return _parse(raw)
    except (ValueError, TypeError, KeyError) as exc:
        raise CheckpointError(f"{bad}: {exc}") from exc


def _array(raw, key):
    if key not in raw:
        raise ValueError(f"missing {key}")
    return raw[key]


def _upgrade(config, meta, iteration):
    """A format-1 config (TwoLayerNet, sigmoid, SGD) in today's terms."""
    if not isinstance(config, dict) or "hidden_size" not in config:
        return config
    config = {**_FORMAT1, **config}
    config["hidden_size_list"] = [config.pop("hidden_size")]
    meta.setdefault("optimizer_iter", iteration)
    return config


def _conv_params(raw, config):
    """The convnet's parameters, checked against the shapes its config gives."""
    from fastgrad.convnet import SimpleConvNet  # the net kinds need not load with this module

    hidden = config["hidden_size_list"]
    if not isinstance(hidden, list) or len(hidden) != 1:
        raise ValueError(f"config hidden_size_list of a convnet must hold one width, "
                         f"got {hidden!r}")
    try:
        expected = SimpleConvNet(config["input_dim"], config["conv_param"], hidden[0],
                                 config["output_size"], weight_init_std=0.0).params
    except (TypeError, ValueError) as exc:
        raise ValueError(f"config of the convnet: {exc}") from None
    params = {}
    for name, zeros in expected.items():
        value = _array(raw, name)
        if value.dtype != np.float64 or value.shape != zeros.shape:
            raise ValueError(f"{name} must be float64 of shape {zeros.shape} for the config's "
                             f"convnet, got {value.dtype} {value.shape}")
        if not np.all(np.isfinite(value)):
            raise ValueError(f"{name} contains NaN or Inf")
        params[name] = np.ascontiguousarray(value)
    return params


def _params(raw, config):
    if config["net"] == "convnet":
        return _conv_params(raw, config)
    for key in ("input_size", "output_size"):
        size = config[key]
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"config {key} must be a positive integer, got {size!r}")
    hidden = config["hidden_size_list"]
    if (not isinstance(hidden, list) or not hidden
            or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in hidden)):
        raise ValueError(f"config hidden_size_list must be a non-empty list of positive "
                         f"integers, got {hidden!r}")
    sizes = [config["input_size"], *hidden, config["output_size"]]
    names = param_names(len(sizes) - 1)
    params = inputs.check_params({name: _array(raw, name) for name in names})
    got = [params["W1"].shape[0]] + [params[f"W{i}"].shape[1] for i in range(1, len(sizes))]
    if got != sizes:
        raise ValueError(f"parameters of shape {'-'.join(map(str, got))} do not match the "
                         f"config {'-'.join(map(str, sizes))}")
    return params


def _optimizer_state(raw, meta, config, params):
    name = config["optimizer"]
    if not isinstance(name, str) or name not in OPTIMIZERS:
        raise ValueError(f"config optimizer must be one of {tuple(OPTIMIZERS)}, got {name!r}")
    count = meta.get("optimizer_iter")
    if isinstance(count, bool) or not isinstance(count, int) or count != meta["iteration"]:
        raise ValueError(f"optimizer_iter must equal the iteration {meta['iteration']}, "
                         f"got {count!r}")
    slots = {}
    for slot in OPTIMIZERS[name].slot_names:
        slots[slot] = {}
        for key, p in params.items():
            value = _array(raw, f"opt_{slot}_{key}")
            if value.dtype != np.float64 or value.shape != p.shape:
                raise ValueError(f"opt_{slot}_{key} must be float64 of shape {p.shape}, "
                                 f"got {value.dtype} {value.shape}")
            if not np.all(np.isfinite(value)):
                raise ValueError(f"opt_{slot}_{key} contains NaN or Inf")
            slots[slot][key] = np.array(value)
    return OptimizerState(count, slots)


def _parse(raw):
    if raw["format"].shape != () or int(raw["format"]) not in (1, FORMAT):
        raise ValueError(f"format {raw['format']!r}, expected {FORMAT}")
    if raw["meta"].shape != () or raw["meta"].dtype.kind != "U":
        raise ValueError("meta is not a JSON text")
    try:
        meta = json.loads(str(raw["meta"]))
    except json.JSONDecodeError as exc:
        raise ValueError(f"meta is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise ValueError("meta is not a JSON object")
    for key in ("iteration", "config", "rng_state", "timing"):
        if key not in meta:
            raise ValueError(f"meta has no {key!r}")
    config, iteration = meta["config"], meta["iteration"]
    if isinstance(iteration, bool) or not isinstance(iteration, int) or iteration < 0:
        raise ValueError(f"iteration must be a non-negative integer, got {iteration!r}")
    if int(raw["format"]) == 1:
        config = _upgrade(config, meta, iteration)
    if not isinstance(config, dict) or any(key not in config for key in CONFIG_KEYS):
        missing = [k for k in CONFIG_KEYS if not isinstance(config, dict) or k not in config]
        raise ValueError(f"config is missing {', '.join(missing)}")
    config = {**_FULLY_CONNECTED, **config}
    if config["net"] not in ("mlp", "convnet"):
        raise ValueError(f"config net must be 'mlp' or 'convnet', got {config['net']!r}")
    # the rest of the config is checked like the arguments by fastgrad.training.train
    if not isinstance(config["data_sha256"], str):
        raise ValueError(f"config data_sha256 must be a text, got {config['data_sha256']!r}")
    params = _params(raw, config)
    optimizer_state = _optimizer_state(raw, meta, config, params)

    losses = raw["losses"]
    if losses.dtype != np.float64 or losses.shape != (iteration,):
        raise ValueError(f"losses must be {iteration} float64 values (one per iteration), "
                         f"got {losses.dtype} {losses.shape}")
    if not np.all(np.isfinite(losses)):
        raise ValueError("losses contain NaN or Inf")
    columns = [raw[f"epochs_{name}"] for name in _EPOCH_FIELDS]
    n_epochs = columns[0].shape
    if any(c.ndim != 1 or c.shape != n_epochs or c.dtype.kind not in "fi" for c in columns):
        raise ValueError("epoch records must be four 1-d numeric arrays of one length")
    if np.any(columns[1] < 1) or np.any(columns[1] > iteration):
        raise ValueError(f"epoch records must lie within iterations 1..{iteration}")
    epochs = [EpochRecord(float(e), int(i), float(a), float(b))
              for e, i, a, b in zip(*columns, strict=True)]

    rng_state = meta["rng_state"]
    probe = np.random.PCG64()
    if not isinstance(rng_state, dict) or rng_state.get("bit_generator") != "PCG64":
        raise ValueError("rng_state is not a PCG64 state")
    try:
        probe.state = rng_state  # raises if a field is missing or malformed
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"rng_state is not a valid PCG64 state ({exc!r})") from None
    timing = meta["timing"] if isinstance(meta["timing"], dict) else {}
    return Checkpoint(params=params, iteration=iteration, rng_state=rng_state, config=config,
                      losses=np.array(losses), epochs=epochs, timing=timing,
                      optimizer_state=optimizer_state)
