"""``fastgrad train``: the book's SGD training run, with checkpoints and plots."""

from __future__ import annotations

import sys
from pathlib import Path

DATASETS = ("mnist", "fashion")  # fastgrad.data.DATASETS, without importing it at start-up
CHECKPOINT = "checkpoint.npz"
DEFAULT_CHECKPOINT_EVERY = 1000


def register(subparsers):
    """Add the ``train`` subcommand to ``subparsers``."""
    p = subparsers.add_parser(
        "train", help="train the TwoLayerNet by minibatch SGD (book chapter 4)",
        description="Train the TwoLayerNet by minibatch SGD as in the book's "
                    "train_neuralnet.py. Options left out take the book's values (784-50-10, "
                    "10000 iterations, batch 100, lr 0.1) or, with --resume, the checkpoint's.")
    p.add_argument("--iters", type=int, metavar="N",
                   help="total SGD iterations (default 10000; resuming: the checkpoint's target)")
    p.add_argument("--batch-size", type=int, metavar="N", help="minibatch size (default 100)")
    p.add_argument("--lr", type=float, help="learning rate (default 0.1)")
    p.add_argument("--hidden", type=int, metavar="N", dest="hidden_size",
                   help="hidden units (default 50)")
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
                        "when given without a value")
    p.add_argument("--overwrite", action="store_true",
                   help=f"start afresh even if --out already holds a {CHECKPOINT}")
    p.add_argument("--eval-every", type=int, metavar="N",
                   help="measure accuracies every N iterations instead of once per epoch")
    p.add_argument("--no-progress", action="store_false", dest="progress",
                   help="no progress bar")
    p.set_defaults(func=run)


def _paths(args):
    """The checkpoint to write and the one to resume from."""
    out = Path(args.out) if args.out else None
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
    return out, checkpoint, resume, every


def run(args) -> int:
    """Train, write the outputs, print a summary. Returns the exit status."""
    # imported on use: training brings in the data module (requests, urllib3), which
    # `fastgrad --help` need not load (numba comes with `import fastgrad` anyway)
    from tqdm import tqdm

    from fastgrad import plots
    from fastgrad.training import TrainingDiverged, TrainingInterrupted, train

    out, checkpoint, resume, every = _paths(args)
    try:
        history = train(
            dataset=args.dataset, data_dir=args.data_dir, iters=args.iters,
            batch_size=args.batch_size, lr=args.lr, hidden_size=args.hidden_size,
            method=args.method, seed=args.seed, threads=args.threads,
            eval_every=args.eval_every, checkpoint=checkpoint, checkpoint_every=every,
            resume=resume, overwrite=args.overwrite, progress=args.progress, log=tqdm.write)
    except TrainingInterrupted as exc:
        print(f"fastgrad train: {exc}", file=sys.stderr)
        if exc.checkpoint is not None:
            again = f"--out {out} --resume" if out else f"--resume {exc.checkpoint}"
            print(f"continue with: fastgrad train {again}", file=sys.stderr)
        return 130
    except TrainingDiverged as exc:
        print(f"fastgrad train: error: {exc}", file=sys.stderr)
        if checkpoint is not None and checkpoint.exists():
            print(f"the last good checkpoint is {checkpoint}", file=sys.stderr)
        return 1

    timing = history.timing
    print(f"done: {history.iterations} iterations; training loop {timing['wall_time']:.1f} s "
          f"(gradients {timing['grad_time']:.1f} s, accuracy {timing['eval_time']:.1f} s, "
          f"kernel load {timing['warmup_time']:.1f} s)")
    print(f"time per gradient: {history.time_per_gradient * 1e3:.3f} ms "
          f"({history.config['method']}, {timing['threads']} threads, "
          f"batch {history.config['batch_size']})")
    print(f"final accuracy: train {history.final_train_acc:.4f}, "
          f"test {history.final_test_acc:.4f}")
    if out is None:
        return 0
    written = history.save(out)
    try:
        written.append(plots.plot_history(history, out / "training.png"))
    except ImportError as exc:
        print(f"plot skipped: matplotlib is not available ({exc}); "
              "install it with: pip install 'fastgrad[plot]'")
    if checkpoint is not None:
        written.append(checkpoint)
    print(f"wrote {', '.join(str(p) for p in written)}")
    return 0
