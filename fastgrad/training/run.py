"""``train``: set a run up (fresh or resumed) and hand it to the loop."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from fastgrad import checkpoint as ckpt_io
from fastgrad import data as data_io
from fastgrad import inputs
from fastgrad.arch import Arch
from fastgrad.checkpoint import History
from fastgrad.convarch import check_conv_params, check_input_dim, make_conv_arch
from fastgrad.convnet import SimpleConvNet
from fastgrad.network import MultiLayerNet
from fastgrad.standard import architecture
from fastgrad.training import settings
from fastgrad.training.commit import Committed, Record
from fastgrad.training.datasets import check_data, fingerprint
from fastgrad.training.loop import Loop
from fastgrad.training.model import ConvModel, DenseModel
from fastgrad.training.schedule import EvalSchedule


def _path(value, name):
    try:
        return Path(os.fspath(value))
    except TypeError:
        raise TypeError(f"{name} must be a path, got {type(value).__name__}") from None


def _paths(checkpoint, checkpoint_every, resume):
    checkpoint_every = settings.optional(settings.integer("checkpoint_every"))(
        checkpoint_every)
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
    return checkpoint, checkpoint_every, resume


def _check_target(checkpoint, resume, overwrite):
    if checkpoint is None:
        return
    if checkpoint.is_dir():
        raise IsADirectoryError(f"checkpoint: {checkpoint} is a directory")
    same = resume is not None and checkpoint.exists() and os.path.samefile(resume, checkpoint)
    if checkpoint.exists() and not (same or overwrite):
        raise FileExistsError(f"checkpoint: {checkpoint} already exists; resume it or "
                              f"allow overwriting it")


def _input_dim(config, given, data, ckpt):
    """The convnet's ``(C, H, W)``: given, else the data's 4-d shape, the checkpoint's, or square.

    ``data`` is the arrays as passed (before flattening); None for the fully connected net.
    """
    features = config["input_size"]
    if config["net"] != "convnet":
        if given is not None:
            raise ValueError("input_dim is for net='convnet'; the fully connected net reads "
                             "flat rows")
        return None
    if given is not None:
        dims = check_input_dim(given)
    elif np.ndim(data[0][0]) == 4:
        dims = check_input_dim(np.shape(data[0][0])[1:])
    elif ckpt is not None:
        dims = check_input_dim(ckpt.config["input_dim"])
    else:
        side = int(round(features ** 0.5))
        if side * side != features:
            raise ValueError(f"input_dim: give (channels, height, width) of the {features} "
                             f"features of each sample (only a square one-channel image is "
                             f"assumed)")
        dims = (1, side, side)
    if int(np.prod(dims)) != features:
        raise ValueError(f"input_dim {dims} has {int(np.prod(dims))} values but the data has "
                         f"{features} features per sample")
    return list(dims)


def _describe(config, n_train, n_test):
    net = architecture(config)
    hyper = ", ".join(f"{k} {v:g}" for k, v in {"lr": config["lr"],
                                                 **config["optimizer_options"]}.items())
    decay, init = config["weight_decay_lambda"], config["weight_init_std"]
    init = init if isinstance(init, str) else f"std {init:g}"
    return (f"{net} on {config['dataset']} "
            f"({n_train} train / {n_test} test), {config['optimizer']} ({hyper})"
            f"{f', weight decay {decay:g}' if decay else ''}, initial weights {init}")


def train(data=None, *, dataset=None, data_dir=None, iters=None, batch_size=None, lr=None,
          hidden_size=None, hidden_size_list=None, output_size=None, activation=None,
          net=None, conv_param=None, input_dim=None,
          weight_init_std=None, weight_decay_lambda=None, optimizer=None,
          optimizer_options=None, method=None, seed=None, threads=None, eval_every=None,
          h=None, checkpoint=None, checkpoint_every=None, resume=None, overwrite=False,
          progress=False, log=None, callback=None) -> History:
    """Train a net by minibatches, as in the book's chapters 4, 6 and 7.

    Settings left ``None`` take the checkpoint's value when resuming, else the
    book's chapter-4 run (:data:`~fastgrad.training.settings.DEFAULTS`: 784-50-10
    sigmoid, std 0.01, SGD with lr 0.1, batch 100, 10,000 iterations); for
    ``net='convnet'`` chapter 7's ``train_convnet.py``
    (:data:`~fastgrad.training.settings.CONVNET_DEFAULTS`: 30 filters of 5x5,
    hidden 100, std 0.01, Adam with lr 0.001, batch 100).

    Parameters
    ----------
    data : ((x_train, t_train), (x_test, t_test)), optional
        Arrays to train on (integer or one-hot labels); else ``dataset`` is loaded.
    dataset : {'mnist', 'fashion'}
        Loaded with :func:`fastgrad.data.load_mnist` from ``data_dir``.
    iters : int
        Total steps (a resumed run continues up to this count).
    batch_size, output_size, h
        Minibatch size, number of classes, finite-difference step.
    hidden_size : int
        One hidden layer of this width (chapter 4's ``TwoLayerNet``); or
    hidden_size_list : list of int
        The hidden widths of a ``MultiLayerNet`` (chapter 6), e.g. ``[100] * 4``.
    activation : {'sigmoid', 'relu'}
    net : {'mlp', 'convnet'}
        The fully connected nets of chapters 4-6 (default), or chapter 7's
        ``SimpleConvNet`` (ReLU, no weight decay, one hidden width given as
        ``hidden_size``), on the images as ``(N, C, H, W)``.
    conv_param : dict, optional
        The convnet's ``filter_num``, ``filter_size``, ``pad``, ``stride``, as
        the book's ``SimpleConvNet`` takes them.
    input_dim : tuple of int, optional
        The convnet's ``(C, H, W)``; default the shape of 4-d ``data``, else a
        square one-channel image (``(1, 28, 28)`` for MNIST's 784 features).
    weight_init_std : float or {'relu', 'he', 'sigmoid', 'xavier'}
        Initial weight scale, or He / Xavier by name. Default: 0.01 with one
        hidden layer (chapter 4's ``TwoLayerNet``); with several, He for ReLU
        and Xavier for sigmoid (chapter 6's ``MultiLayerNet``), as std 0.01
        leaves a deep net at chance.
    weight_decay_lambda : float
        L2 strength; the loss adds ``0.5 * lambda * sum(W ** 2)``.
    optimizer : {'sgd', 'momentum', 'nesterov', 'adagrad', 'rmsprop', 'adam'}
        The book's optimizers (:mod:`fastgrad.optimizers`).
    lr : float
        Learning rate; default the optimizer's book default, or 0.1 when
        ``optimizer`` is not given either (chapter 4).
    optimizer_options : dict, optional
        Other hyper-parameters, e.g. ``{'momentum': 0.95}``.
    method : {'incremental', 'jit', 'reference', 'backprop'}
        Gradient method (see :data:`fastgrad.methods.METHODS`).
    seed : int
        Seeds the weights and the minibatch draws (default 0): same seed, same
        initial weights and minibatches, whatever the optimizer.
    threads : int, optional
        Numba threads; results are bitwise the same for any value.
    eval_every : int, optional
        Measure accuracies every this many steps instead of once per epoch.
    checkpoint : path, optional
        Checkpoint file, written atomically every ``checkpoint_every`` steps, on
        Ctrl-C and at the end. An existing file is refused unless it is the one
        resumed or ``overwrite`` is true.
    resume : path or True, optional
        Checkpoint to continue from (True: ``checkpoint``); it must be of the
        same network, optimizer and configuration.
    progress : bool
        Show a tqdm bar with ETA and the current loss.
    log : callable, optional
        Receives human-readable lines (start, each epoch's accuracies).
    callback : callable, optional
        Called with a :class:`Step` after every committed step.

    Returns
    -------
    History
        Its ``notes`` hold a line if the training accuracy was still at chance
        at the first measurement after one epoch (also given to ``callback`` as
        :attr:`Step.note`), with the likely cause.

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
    if hidden_size is not None:
        if hidden_size_list is not None:
            raise ValueError("give hidden_size or hidden_size_list, not both")
        hidden_size_list = [settings.integer("hidden_size")(hidden_size)]
    given = {"iters": iters, "batch_size": batch_size, "lr": lr,
             "hidden_size_list": hidden_size_list, "output_size": output_size,
             "activation": activation, "weight_init_std": weight_init_std,
             "weight_decay_lambda": weight_decay_lambda, "optimizer": optimizer,
             "optimizer_options": optimizer_options, "method": method, "h": h, "seed": seed,
             "dataset": dataset, "eval_every": eval_every, "net": net,
             "conv_param": conv_param}
    threads = inputs.check_threads(threads)
    for name, fn in (("log", log), ("callback", callback)):
        if fn is not None and not callable(fn):
            raise TypeError(f"{name} must be callable, got {type(fn).__name__}")
    checkpoint, checkpoint_every, resume = _paths(checkpoint, checkpoint_every, resume)
    ckpt = ckpt_io.load(resume) if resume is not None else None

    if data is not None:
        if dataset not in (None, "custom"):
            raise ValueError("give data or dataset, not both")
        given["dataset"] = "custom"
    config, opt = settings.resolve(given, ckpt, resume)
    if data is None and config["dataset"] == "custom":
        raise ValueError("dataset: 'custom' (the checkpoint's) means arrays: pass them as data")
    if data is None:
        data = data_io.load_mnist(dataset=config["dataset"], data_dir=data_dir,
                                  progress=progress)
    arrays = check_data(data, config["output_size"])
    n_train = len(arrays[0])
    config["input_size"] = arrays[0].shape[1]
    config["input_dim"] = _input_dim(config, input_dim, data, ckpt)
    config["data_sha256"] = fingerprint(arrays)
    if config["batch_size"] > n_train:
        raise ValueError(f"batch_size={config['batch_size']} is larger than the training set "
                         f"({n_train} samples)")
    if ckpt is not None:
        for name, what in (("input_size", "features"), ("data_sha256", "data")):
            if config[name] != ckpt.config[name]:
                raise ValueError(f"data: its {what} ({config[name]}) differ from the "
                                 f"checkpoint's ({ckpt.config[name]})")
        if config["input_dim"] != ckpt.config["input_dim"]:
            raise ValueError(f"input_dim={config['input_dim']} differs from the checkpoint's "
                             f"input_dim={ckpt.config['input_dim']}")
        if config["iters"] < ckpt.iteration:
            raise ValueError(f"iters={config['iters']} is below the checkpoint's iteration "
                             f"{ckpt.iteration}")
    _check_target(checkpoint, resume, overwrite)

    arch = Arch(config["activation"], config["weight_decay_lambda"])
    if ckpt is None:
        # one stream for the weights, one for the minibatches: the same seed gives the same
        # start and the same minibatch sequence whatever the optimizer
        init, batches = np.random.SeedSequence(config["seed"]).spawn(2)
        if config["net"] == "convnet":
            model = SimpleConvNet(tuple(config["input_dim"]), config["conv_param"],
                                  config["hidden_size_list"][0], config["output_size"],
                                  weight_init_std=config["weight_init_std"],
                                  seed=np.random.default_rng(init))
        else:
            model = MultiLayerNet(config["input_size"], config["hidden_size_list"],
                                  config["output_size"], activation=arch.activation,
                                  weight_init_std=config["weight_init_std"],
                                  weight_decay_lambda=arch.weight_decay,
                                  seed=np.random.default_rng(init))
        params, rng = model.params, np.random.default_rng(batches)
        record = Record(config)
        opt_state = opt.init_state(params)
    else:
        params, rng = ckpt.params, np.random.default_rng()
        rng.bit_generator.state = ckpt.rng_state
        record = Record(config, ckpt.losses.tolist(), ckpt.epochs, ckpt.timing, ckpt.iteration)
        opt_state = ckpt.optimizer_state
    record.timing["threads"] = threads
    schedule = EvalSchedule(n_train, config["batch_size"], config["eval_every"])
    if log is not None:
        start = record.start
        log(f"{'resuming ' + str(resume) + ' at' if ckpt else 'training from'} iteration "
            f"{start}: {_describe(config, n_train, len(arrays[2]))}, "
            f"{config['method']} gradient, {threads} threads, batch {config['batch_size']}, "
            f"seed {config['seed']}, {config['iters']} iterations "
            f"({schedule.per_epoch:g} per epoch)")
    if config["net"] == "convnet":
        conv = make_conv_arch(config["conv_param"]["stride"], config["conv_param"]["pad"])
        model, params = (ConvModel(config["method"], conv, config["input_dim"]),
                         check_conv_params(params))
    else:
        model, params = DenseModel(config["method"], arch), inputs.check_params(params)
    loop = Loop(model, opt, arrays, schedule, config["batch_size"], config["h"], threads,
                config["iters"])
    state = Committed(record.start, params, opt_state, rng.bit_generator.state)
    return loop.run(state, rng, record, checkpoint=checkpoint,
                    checkpoint_every=checkpoint_every, progress=progress, log=log,
                    callback=callback)
