"""``fastgrad train``: the book's training runs (chapters 4, 6, 7), with checkpoints and plots."""

from __future__ import annotations

import sys
from pathlib import Path

from fastgrad.commands.args import CONVNET_DEFAULTS, add_net_kind_arguments

DATASETS = ("mnist", "fashion")  # fastgrad.data.DATASETS, without importing it at start-up
# fastgrad.optimizers.OPTIMIZERS, likewise
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")
CHECKPOINT = "checkpoint.npz"
COMPARISON = "optimizers.png"
DEFAULT_CHECKPOINT_EVERY = 1000


def _weight_init(text):
    try:
        return float(text)
    except ValueError:
        return text  # a name (he, xavier, ...): train() checks it


def register(subparsers):
    """Add the ``train`` subcommand to ``subparsers``."""
    p = subparsers.add_parser(
        "train", help="train a network by minibatches (book chapters 4, 6 and 7)",
        description="Train a network by minibatches as in the book's train_neuralnet.py "
                    "(chapter 4), optimizer_compare_mnist.py (chapter 6) and train_convnet.py "
                    "(chapter 7, --net convnet). "
                    "Options left out take the chapter-4 values (784-50-10 sigmoid, std 0.01, "
                    "SGD lr 0.1, batch 100, 10000 iterations) or, with --resume, the "
                    "checkpoint's; a net with several --hidden layers starts from He weights "
                    "(relu) or Xavier weights (sigmoid), as the book's MultiLayerNet. A named "
                    "--optimizer takes the book's default learning rate "
                    "(sgd/momentum/nesterov/adagrad/rmsprop 0.01, adam 0.001) unless --lr. "
                    "With --net convnet it trains chapter 7's SimpleConvNet as the book's "
                    "train_convnet.py: 30 filters of 5x5, pad 0, stride 1, --hidden 100, "
                    "weights std 0.01, Adam lr 0.001, batch 100 (the book runs 20 epochs, "
                    "12000 iterations; the default here stays 10000). "
                    "A run whose training accuracy is still at chance after one epoch says "
                    "so on stderr, with the likely cause.")
    p.add_argument("--iters", type=int, metavar="N",
                   help="total iterations (default 10000; resuming: the checkpoint's target)")
    p.add_argument("--batch-size", type=int, metavar="N", help="minibatch size (default 100)")
    p.add_argument("--hidden", type=int, nargs="+", metavar="N", dest="hidden_size_list",
                   help="hidden layer widths, e.g. --hidden 100 100 100 100 (default 50; "
                        "--net convnet: one width, default 100)")
    p.add_argument("--activation", metavar="NAME",
                   help="hidden activation: sigmoid (default) or relu")
    p.add_argument("--weight-init", type=_weight_init, metavar="STD|NAME",
                   dest="weight_init_std",
                   help="initial weight std, or he/relu (sqrt(2/fan_in)) or xavier/sigmoid "
                        "(sqrt(1/fan_in)) (default: 0.01 with one hidden layer, as the book's "
                        "TwoLayerNet; with several, he for relu and xavier for sigmoid, as its "
                        "MultiLayerNet)")
    p.add_argument("--weight-decay", type=float, metavar="LAMBDA", dest="weight_decay_lambda",
                   help="L2 weight decay lambda (default 0)")
    p.add_argument("--optimizer", nargs="+", metavar="NAME",
                   help=f"one or more of {', '.join(OPTIMIZERS)} (default sgd, lr 0.1; --net "
                        "convnet: adam, lr 0.001); "
                        "several run one after the other on the same seed and minibatches, "
                        f"each into --out/NAME/, with a comparison plot --out/{COMPARISON}")
    p.add_argument("--lr", type=float, help="learning rate (default: see above)")
    p.add_argument("--method", metavar="NAME",
                   help="gradient: incremental (default), jit, reference (very slow) or backprop")
    p.add_argument("--threads", type=int, metavar="N",
                   help="Numba threads (default $FASTGRAD_THREADS or all cores)")
    p.add_argument("--seed", type=int, help="seed of weights and minibatches (default 0)")
    p.add_argument("--dataset", choices=DATASETS,
                   help="data set (default mnist)")
    p.add_argument("--data-dir", metavar="DIR", help="folder with the IDX files")
    p.add_argument("--out", metavar="DIR",
                   help="write metrics.json, metrics.csv, params.npz, training.png and "
                        f"{CHECKPOINT} here")
    p.add_argument("--checkpoint-every", type=int, metavar="N",
                   help=f"checkpoint every N iterations (default {DEFAULT_CHECKPOINT_EVERY} "
                        "with --out); always on Ctrl-C and at the end")
    p.add_argument("--resume", nargs="?", const=True, metavar="CHECKPOINT",
                   help=f"continue a stopped run: from CHECKPOINT, or --out/{CHECKPOINT} "
                        f"(--out/NAME/{CHECKPOINT} for several optimizers) without a value")
    p.add_argument("--overwrite", action="store_true",
                   help=f"start afresh even if --out already holds a {CHECKPOINT}")
    p.add_argument("--eval-every", type=int, metavar="N",
                   help="measure accuracies every N iterations instead of once per epoch")
    p.add_argument("--no-progress", action="store_false", dest="progress",
                   help="no progress bar")
    add_net_kind_arguments(p)
    # left out, they take the checkpoint's when resuming (the help's defaults otherwise)
    p.set_defaults(func=run, net=None, filters=None, filter_size=None, pad=None, stride=None)


def _conv_param(args):
    """The book's ``conv_param`` from the flags given, the book's values for the others.

    None when no convolution flag is given: a resumed run keeps its own.
    """
    given = {"filter_num": args.filters, "filter_size": args.filter_size, "pad": args.pad,
             "stride": args.stride}
    if all(value is None for value in given.values()):
        return None
    return {key: CONVNET_DEFAULTS[key] if value is None else value
            for key, value in given.items()}


def _names(args):
    """The optimizers to run: ``[None]`` (chapter 4's SGD) when none is named."""
    names = args.optimizer or [None]
    lowered = [n.lower() if n is not None else None for n in names]
    if len(set(lowered)) != len(lowered):
        raise ValueError(f"--optimizer names an optimizer twice: {' '.join(names)}")
    if len(names) > 1 and args.resume not in (None, True):
        raise ValueError("several optimizers resume from --out/NAME/: give --resume "
                         "without a path")
    return names


def _paths(args, out):
    """The checkpoint to write and the one to resume from."""
    resume = args.resume
    if resume is True:
        if out is None:
            raise ValueError("--resume without a path needs --out (it resumes "
                             f"--out/{CHECKPOINT})")
        resume = out / CHECKPOINT
    # resuming a file without --out keeps writing to that file
    checkpoint = out / CHECKPOINT if out else (Path(resume) if resume else None)
    every = args.checkpoint_every
    if every is None and checkpoint is not None:
        every = DEFAULT_CHECKPOINT_EVERY
    if every is not None and checkpoint is None:
        raise ValueError("--checkpoint-every needs --out")
    return checkpoint, resume, every


def _warn(step):
    """Print a warning the loop raised (fastgrad.training.Step.note) on stderr."""
    if step.note:
        from tqdm import tqdm

        tqdm.write(f"fastgrad train: warning: {step.note}", file=sys.stderr)


def _train_one(args, name, out, log, several):
    from fastgrad.training import train

    checkpoint, resume, every = _paths(args, out)
    if several and args.resume is True and not resume.exists():
        resume = None  # stopped before this optimizer began: it starts now, with the flags
    return train(
        dataset=args.dataset, data_dir=args.data_dir, iters=args.iters,
        batch_size=args.batch_size, lr=args.lr, hidden_size_list=args.hidden_size_list,
        activation=args.activation, weight_init_std=args.weight_init_std,
        weight_decay_lambda=args.weight_decay_lambda, optimizer=name, method=args.method,
        net=args.net, conv_param=_conv_param(args),
        seed=args.seed, threads=args.threads, eval_every=args.eval_every,
        checkpoint=checkpoint, checkpoint_every=every, resume=resume,
        overwrite=args.overwrite, progress=args.progress, log=log, callback=_warn)


def _summary(history):
    timing, config = history.timing, history.config
    print(f"done: {history.iterations} iterations; training loop {timing['wall_time']:.1f} s "
          f"(gradients {timing['grad_time']:.1f} s, accuracy {timing['eval_time']:.1f} s, "
          f"kernel load {timing['warmup_time']:.1f} s)")
    print(f"time per gradient: {history.time_per_gradient * 1e3:.3f} ms "
          f"({config['method']}, {timing['threads']} threads, batch {config['batch_size']})")
    if timing["grad_calls"]:
        print(f"per iteration outside the gradient (minibatch, update, loss): "
              f"{history.step_overhead * 1e3:.3f} ms, {history.step_overhead_share:.1%} of "
              "an iteration")
    print(f"final accuracy: train {history.final_train_acc:.4f}, "
          f"test {history.final_test_acc:.4f}")


def _write(history, out, plots):
    written = history.save(out)
    try:
        written.append(plots.plot_history(history, out / "training.png"))
    except ImportError as exc:
        print(f"plot skipped: matplotlib is not available ({exc}); "
              "install it with: pip install 'fastgrad[plot]'")
    if (out / CHECKPOINT).exists():
        written.append(out / CHECKPOINT)
    return written


def run(args) -> int:
    """Train, write the outputs, print a summary. Returns the exit status."""
    # imported on use: training brings in the data module (requests, urllib3), which
    # `fastgrad --help` need not load (numba comes with `import fastgrad` anyway)
    from tqdm import tqdm

    from fastgrad import plots
    from fastgrad.training import TrainingDiverged, TrainingInterrupted

    names = _names(args)
    out = Path(args.out) if args.out else None
    several = len(names) > 1
    histories, failed = {}, []
    for name in names:
        run_out = out / name.lower() if several and out else out
        if several:
            print(f"== {name} ==")
        try:
            history = _train_one(args, name, run_out, tqdm.write, several)
        except TrainingInterrupted as exc:
            print(f"fastgrad train: {exc}", file=sys.stderr)
            if exc.checkpoint is not None and several:
                print("continue with the same command and --resume: the optimizers with a "
                      f"checkpoint in {out}/NAME/ resume, the others start", file=sys.stderr)
            elif exc.checkpoint is not None:
                again = f"--out {out} --resume" if out else f"--resume {exc.checkpoint}"
                print(f"continue with: fastgrad train {again}", file=sys.stderr)
            return 130
        except TrainingDiverged as exc:
            print(f"fastgrad train: error: {exc}", file=sys.stderr)
            last = run_out / CHECKPOINT if run_out else None
            if last is not None and last.exists():
                print(f"the last good checkpoint is {last}", file=sys.stderr)
            failed.append(name)
            continue
        _summary(history)
        histories[history.config["optimizer"]] = history
        if run_out is not None:
            written = _write(history, run_out, plots)
            print(f"wrote {', '.join(str(p) for p in written)}")
    if several:
        print("optimizer  final test acc  training loop")
        for name, history in histories.items():
            print(f"{name:<10} {history.final_test_acc:14.4f}  "
                  f"{history.timing['wall_time']:11.1f} s")
        for name in failed:
            print(f"{name:<10} {'diverged':>14}")
        if out is not None and histories:
            try:
                print(f"wrote {plots.plot_comparison(histories, out / COMPARISON)}")
            except ImportError as exc:
                print(f"comparison plot skipped: matplotlib is not available ({exc})")
    return 1 if failed else 0
