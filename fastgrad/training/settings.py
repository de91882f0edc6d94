"""A run's configuration: the book's defaults, argument checks, and resuming's identity rule."""

from __future__ import annotations

import math
import numbers
import operator

from fastgrad import checkpoint as ckpt_io
from fastgrad import data as data_io
from fastgrad import inputs, methods, optimizers
from fastgrad.arch import check_activation, check_weight_decay
from fastgrad.convnet import DEFAULT_CONV_PARAM, check_conv_param
from fastgrad.network import INIT_GAINS, default_weight_init

#: The book's chapter-4 run (``train_neuralnet.py``), used for anything not given (but the
#: initial weights of a net with several hidden layers: see :func:`default`).
DEFAULTS = {"iters": 10_000, "batch_size": 100, "hidden_size_list": [50], "output_size": 10,
            "activation": "sigmoid", "weight_init_std": 0.01, "weight_decay_lambda": 0.0,
            "method": methods.DEFAULT_METHOD, "h": 1e-4, "seed": 0, "dataset": "mnist",
            "eval_every": None, "optimizer": "sgd", "net": "mlp", "conv_param": None}
#: SGD's learning rate when no optimizer is named: the chapter-4 loop's (TwoLayerNet's 0.1);
#: a named optimizer takes the book's ``common/optimizer.py`` default instead.
CHAPTER4_LR = 0.1


#: Chapter 7's run (``ch07/train_convnet.py``), used for anything not given when the net is
#: the convolutional one: its SimpleConvNet (ReLU, no weight decay), Adam with lr 0.001.
CONVNET_DEFAULTS = {"hidden_size_list": [100], "activation": "relu", "weight_init_std": 0.01,
                    "weight_decay_lambda": 0.0, "optimizer": "adam",
                    "conv_param": DEFAULT_CONV_PARAM}


def default(name, config):
    """What a fresh run takes for ``name`` when it is not given.

    For ``net='convnet'`` the value of :data:`CONVNET_DEFAULTS`; else the
    chapter-4 value of :data:`DEFAULTS`, except for ``weight_init_std`` of
    a net with several hidden layers (``config`` holds the checked
    ``hidden_size_list`` and ``activation``): He for ReLU, Xavier for sigmoid,
    as the book's ``MultiLayerNet`` (std 0.01 leaves a deep net at chance).
    """
    if config.get("net") == "convnet" and name in CONVNET_DEFAULTS:
        return CONVNET_DEFAULTS[name]
    if name == "weight_init_std":
        return default_weight_init(config["activation"], len(config["hidden_size_list"]))
    return DEFAULTS[name]


def integer(name, minimum=1):
    """A check that a value is an integer >= ``minimum``."""
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


def optional(check):
    """``check`` that lets None through."""
    return lambda value: None if value is None else check(value)


def _dataset(value):
    # "custom": arrays passed as ``data``
    if value not in data_io.DATASETS + ("custom",):
        raise ValueError(f"dataset must be one of {data_io.DATASETS}, got {value!r}")
    return value


def _hidden_list(value):
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise TypeError(f"hidden_size_list must be a list of integers, "
                        f"got {type(value).__name__}")
    if not value:
        raise ValueError("hidden_size_list must not be empty: give at least one hidden layer")
    return [integer(f"hidden_size_list[{i}]")(v) for i, v in enumerate(value)]


def _weight_init(value):
    if isinstance(value, str):
        if value.lower() not in INIT_GAINS:
            raise ValueError(f"weight_init_std must be a number or one of {tuple(INIT_GAINS)}, "
                             f"got {value!r}")
        return value.lower()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"weight_init_std must be a real number or one of {tuple(INIT_GAINS)}, "
                        f"got {type(value).__name__}")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"weight_init_std must be >= 0 and finite, got {value!r}")
    return value


#: Network kinds: the fully connected nets of chapters 4-6, chapter 7's convolutional net.
NETS = ("mlp", "convnet")


def _net(value):
    if value not in NETS:
        raise ValueError(f"net must be one of {NETS}, got {value!r}")
    return value


# in this order: every default reads the checked net, and that of weight_init_std the
# checked hidden_size_list and activation
CHECKS = {
    "net": _net, "conv_param": optional(check_conv_param),
    "iters": integer("iters"), "batch_size": integer("batch_size"),
    "hidden_size_list": _hidden_list, "output_size": integer("output_size", minimum=2),
    "activation": check_activation, "weight_init_std": _weight_init,
    "weight_decay_lambda": lambda v: check_weight_decay(v, "weight_decay_lambda"),
    "method": lambda v: methods.check_method(v).name,
    "h": lambda v: inputs.check_h(v, inputs.NET_H_RANGE),  # as compute_gradient checks it
    "seed": integer("seed", minimum=0), "dataset": _dataset,
    "eval_every": optional(integer("eval_every")), "optimizer": optimizers.check_name,
}
# must equal the checkpoint's when resuming; everything else may change
IDENTITY = ("net", "conv_param", "batch_size", "hidden_size_list", "output_size", "activation",
            "weight_init_std", "weight_decay_lambda", "method", "h", "seed", "dataset",
            "eval_every", "optimizer")


def _differs(name, value, saved):
    return ValueError(f"{name}={value!r} differs from the checkpoint's {name}={saved!r}: a "
                      f"resumed run must keep its network, optimizer and configuration")


def _options(value):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError(f"optimizer_options must be a dict, got {type(value).__name__}")
    return dict(value)


def _resolve_optimizer(config, given, ckpt, resume):
    """Set ``config['lr']`` and ``config['optimizer_options']``; return the optimizer."""
    lr, options = given["lr"], _options(given["optimizer_options"])
    if "lr" in options:
        raise ValueError("optimizer_options: give the learning rate as lr")
    if ckpt is None:
        if lr is None and given["optimizer"] is None and config["net"] == "mlp":
            lr = CHAPTER4_LR
        optimizer = optimizers.make_optimizer(config["optimizer"], lr=lr, **options)
    else:
        saved = ckpt.config
        for key, check in (("lr", optimizers.check_lr),
                           ("optimizer_options", _options)):
            try:
                check(saved[key])
            except (TypeError, ValueError) as exc:
                raise ckpt_io.invalid(resume, f"config {key}={saved[key]!r}: {exc}") from None
        try:
            optimizer = optimizers.make_optimizer(
                config["optimizer"], lr=saved["lr"], **saved["optimizer_options"])
        except (TypeError, ValueError) as exc:
            raise ckpt_io.invalid(resume, f"config optimizer_options="
                                          f"{saved['optimizer_options']!r}: {exc}") from None
        # the given values pass the same checks, then must match
        wanted = optimizers.make_optimizer(config["optimizer"], **{**optimizer.hyper,
                                                                   "lr": lr, **options}).hyper
        for key in ("lr", *options):
            if key == "lr" and lr is None:
                continue
            if wanted[key] != optimizer.hyper[key]:
                raise _differs(key, wanted[key], optimizer.hyper[key])
    hyper = optimizer.hyper
    config["lr"] = hyper.pop("lr")
    config["optimizer_options"] = hyper
    return optimizer


def resolve(given, ckpt, resume=None):
    """The run's configuration and optimizer: given values, else the checkpoint's, else the book's.

    The checkpoint's values pass the same checks as the arguments: one that
    fails means the checkpoint ``resume`` is damaged (``CheckpointError``).
    """
    config = {}
    for name, check in CHECKS.items():
        value = given[name]
        if ckpt is None:
            config[name] = check(default(name, config) if value is None else value)
            continue
        try:
            saved = check(ckpt.config[name])
        except (TypeError, ValueError) as exc:
            raise ckpt_io.invalid(resume, f"config {name}={ckpt.config[name]!r}: {exc}") \
                from None
        config[name] = saved if value is None else check(value)
        if name in IDENTITY and config[name] != saved:
            raise _differs(name, config[name], saved)
    _check_net(config)
    optimizer = _resolve_optimizer(config, given, ckpt, resume)
    return config, optimizer


def _check_net(config):
    """Refuse settings the net kind has no use for (the convnet is the book's as it stands)."""
    if config["net"] == "mlp":
        if config["conv_param"] is not None:
            raise ValueError("conv_param is for net='convnet'; the fully connected net has "
                             "no convolution")
        return
    hidden = config["hidden_size_list"]
    if len(hidden) != 1:
        raise ValueError(f"hidden_size_list: net='convnet' has one hidden layer: give one "
                         f"width, got {len(hidden)}")
    if config["activation"] != "relu":
        raise ValueError(f"activation: net='convnet' is the book's SimpleConvNet, with ReLU, "
                         f"got {config['activation']!r}")
    if config["weight_decay_lambda"]:
        raise ValueError(f"weight_decay_lambda: net='convnet' has no weight decay (the "
                         f"book's SimpleConvNet), got {config['weight_decay_lambda']!r}")
    if isinstance(config["weight_init_std"], str):
        raise ValueError(f"weight_init_std: net='convnet' takes a number (the book's "
                         f"SimpleConvNet), got {config['weight_init_std']!r}")
