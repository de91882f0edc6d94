"""``fastgrad bench``: validate every gradient method, then time it."""

from __future__ import annotations

import argparse
import shlex
import sys
from contextlib import nullcontext
from pathlib import Path

from fastgrad.commands import cluster
from fastgrad.commands.args import (
    add_net_kind_arguments,
    add_network_arguments,
    conv_param,
    hidden_widths,
    sample_arg,
)
from fastgrad.methods import METHODS
from fastgrad.standard import DATA_CHOICES

#: ``--targets`` without a file: the checkout's targets file (not a string, so a FILE
#: spelled like the default is still the user's own). Its path, for the help:
#: fastgrad.bench.targets.DEFAULT_FILE (imported when a run starts, not with the CLI).
_CHECKOUT_TARGETS = object()
_CHECKOUT_TARGETS_TEXT = "bench/targets.toml"


def register(subparsers):
    """Add the ``bench`` subcommand to ``subparsers``."""
    p = subparsers.add_parser(
        "bench", help="validate and time the gradient methods",
        description="Check every method against the NumPy reference (max |error| <= 1e-9; "
                    "1e-5 for analytic backprop), then time it and print time per gradient, "
                    "speed-up vs the reference, cost vs backprop, thread scaling against "
                    "the machine's own ceiling (thread counts interleaved) and "
                    "the 1-thread phase profile (serial fraction, Amdahl projection) and "
                    "start-up (compile) time. Exit status 1 if a method fails validation "
                    "or, with --compare, regresses by more than 25% beyond the noise of "
                    "its rounds. --net convnet times chapter 7's SimpleConvNet: the book's "
                    "loop on every conv parameter and --sample entries per other tensor, "
                    "scaled to every parameter; jit, which cannot be sampled, on a net of "
                    "4 filters and hidden width 10 when the given one has over 20,000 "
                    "parameters.")
    add_net_kind_arguments(p)
    p.add_argument("--methods", nargs="+", choices=list(METHODS), metavar="METHOD",
                   help="methods to run (default: all); reference and backprop, the baselines "
                        f"of the ratios, always run. Choices: {', '.join(METHODS)}")
    p.add_argument("--threads", nargs="+", type=int, metavar="N",
                   help="Numba thread counts for jit and incremental (default: 1, 2, 4, ... "
                        "all cores); the largest is used in the method table")
    p.add_argument("--batch", type=int, default=100, help="samples (default: %(default)s)")
    add_network_arguments(p)
    p.add_argument("--data", default="mnist", choices=DATA_CHOICES,
                   help="input images: mnist (MNIST test digits, ~19%% non-zero), fashion "
                        "(Fashion-MNIST test images, ~50%%) or dense (the Fashion-MNIST test "
                        "images, MNIST's without Fashion, standardised per pixel by the mean "
                        "and std of the whole test set: negatives, ~98%% non-zero); seeded "
                        "synthetic stand-ins when the files are absent (default: mnist)")
    p.add_argument("--sample", type=sample_arg, default="auto", metavar="N|all|auto",
                   help="reference on N seeded entries per tensor, its time scaled to every "
                        "entry and labelled 'sampled, scaled'; 'all' runs the full loop; "
                        "'auto' (default) samples 32 per tensor above 50,000 parameters, "
                        "where the book's loop takes minutes")
    p.add_argument("--targets", nargs="?", const=_CHECKOUT_TARGETS, metavar="FILE",
                   help="measure the rows of the MultiLayerNet targets table instead "
                        "(784-[100]x4-10 ReLU/sigmoid at batch 128, jit, 784-50-10 against "
                        "the saved baseline) on MNIST and judge each against the thresholds "
                        f"in FILE (default: {_CHECKOUT_TARGETS_TEXT} under the current directory, "
                        "the checkout's root); ignores the network, --data and method flags")
    p.add_argument("--jit-batch", type=int, default=None, metavar="N",
                   help="with --targets: batch of the jit row (default 2: a full jit gradient "
                        "of the deep net at batch 128 takes minutes; 128 measures it as is)")
    p.add_argument("--training", action="store_true",
                   help="with --targets: also train the book's optimizer comparison (sgd, "
                        "momentum, adagrad, adam; 2,000 iterations each, incremental and "
                        "backprop) for its two rows: about a quarter of an hour on 2 cores")
    p.add_argument("--baseline", metavar="BASELINE.json",
                   help="with --targets: the saved 784-50-10 report of the baseline row "
                        "(default: the newest 784-50-10 report in bench/results/ under the "
                        "current directory)")
    p.add_argument("--no-phases", dest="phases", action="store_false",
                   help="skip the 1-thread phase profile (serial fraction, Amdahl projection)")
    p.add_argument("--repeats", type=int, metavar="N",
                   help="timed rounds per row (default: up to 5 within ~20 s per row)")
    p.add_argument("--quick", action="store_true",
                   help="fewer rounds; the reference is timed once (its validation run)")
    p.add_argument("--verify-only", action="store_true",
                   help="validate every method at every thread count, time nothing")
    p.add_argument("--no-compile", dest="compile_time", action="store_false",
                   help="skip the cold/warm start-up measurement (subprocesses)")
    p.add_argument("--blas-threads", type=_blas_arg, default=_DEFAULT, metavar="N|auto",
                   help="BLAS threads of the NumPy methods (default: auto, the BLAS's own "
                        "choice, as a user runs the reference; on a busy machine 1 is steadier "
                        "but slower; --targets defaults to 1); Numba methods always run "
                        "with 1")
    p.add_argument("--data-dir", metavar="DIR",
                   help="folder with t10k-images/labels-idx*-ubyte.gz (default: the "
                        "fastgrad download cache, then $FASTGRAD_SHARED_DATA or, when that is "
                        "unset, ../shared/data/mnist beside the checkout; else synthetic "
                        "digits)")
    p.add_argument("--synthetic", action="store_true",
                   help="use seeded MNIST-like synthetic digits even if MNIST is available")
    cluster.add_cluster_arguments(
        p, journal=False, what="also time the reference and jit, whole gradients split in "
                               "chunks over the workers (validated like the others),")
    p.add_argument("--json", metavar="PATH", help="save the report as JSON")
    p.add_argument("--plot", metavar="PNG", help="save a PNG of methods and thread scaling")
    p.add_argument("--compare", metavar="BASELINE.json",
                   help="compare with a saved --json report of the same workload (net, "
                        "size and data). By default each time is taken relative "
                        "to the anchors of its own run (reference and backprop) and thread "
                        "efficiency relative to the machine ceiling, which a different or "
                        "busier machine largely cancels; a ratio worse by >25%% whose "
                        "rounds' spread stays past 25%% fails")
    p.add_argument("--compare-absolute", action="store_true",
                   help="with --compare: compare absolute times instead (meaningful on the "
                        "baseline's machine only; a different CPU, core count, BLAS or Numba "
                        "is shown as a WARNING)")
    p.set_defaults(func=run)


#: --blas-threads not given (auto, except 1 for --targets).
_DEFAULT = object()  # not a string: argparse leaves it unconverted


def _blas_arg(text):
    if text == "auto":
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'auto', got {text!r}")
    return value


def run(args) -> int:
    """Run the benchmark described by ``args``; return the exit status."""
    from fastgrad import plots
    from fastgrad.bench.compare import compare, format_comparison
    from fastgrad.bench.report import check_output_path, format_report, load_json, save_json
    from fastgrad.bench.run import run_benchmark

    for name in ("batch", "repeats", "jit_batch"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    args.hidden = hidden_widths(args)
    if args.net == "convnet":
        return _run_convnet(args)
    if any(v < 1 for v in args.hidden):
        raise ValueError(f"--hidden widths must be at least 1, got {args.hidden}")
    if args.targets is None and (args.jit_batch is not None or args.baseline or args.training):
        raise ValueError("--jit-batch, --baseline and --training go with --targets")
    if args.targets is not None:
        return _run_targets(args)
    if args.verify_only and (args.compare or args.plot):
        raise ValueError("--compare and --plot need timings: drop --verify-only")
    if args.compare_absolute and not args.compare:
        raise ValueError("--compare-absolute needs --compare BASELINE.json")
    # fail before minutes of measuring, not after (run_benchmark checks the baseline
    # against the workload as soon as the data is loaded)
    baseline = load_json(args.compare) if args.compare else None
    for flag, path in (("--json", args.json), ("--plot", args.plot)):
        if path:
            check_output_path(path, flag)

    # the cluster is opened (and checked) before anything is measured, closed after
    with (cluster.connect_cli(args.cluster) if args.cluster else nullcontext()) as client:
        report = run_benchmark(
            args.methods, args.threads, hidden=args.hidden, batch=args.batch,
            repeats=args.repeats, quick=args.quick, verify_only=args.verify_only,
            compile_time=args.compile_time, data=args.data, data_dir=args.data_dir,
            synthetic=args.synthetic, baseline=baseline,
            blas_threads=None if args.blas_threads is _DEFAULT else args.blas_threads,
            activation=args.activation, weight_init=args.weight_init,
            weight_decay=args.weight_decay, sample=args.sample, phase_profile=args.phases,
            client=client, cluster=args.cluster,
            log=lambda msg: print(msg, file=sys.stderr, flush=True))
    print(format_report(report))
    status = 0 if report["ok"] else 1
    if args.json:
        save_json(with_command(report, args), args.json)
        print(f"report saved to {args.json}")
    if args.plot:
        try:
            plots.plot_benchmark(report, args.plot)
        except ImportError:
            print("plot skipped: matplotlib is not installed (pip install 'fastgrad[plot]')")
        else:
            print(f"plot saved to {args.plot}")
    if baseline is not None:
        comparison = compare(report, baseline, absolute=args.compare_absolute)
        print()
        print(format_comparison(comparison, args.compare, report, baseline))
        if any(r["regression"] for r in comparison["rows"]):
            status = 1
    return status


def _run_convnet(args):
    from fastgrad.bench.report import check_output_path, format_report, save_json
    from fastgrad.bench.run import run_benchmark

    unsupported = {"targets": None, "compare": None, "plot": None, "cluster": None,
                   "activation": "sigmoid",
                   "weight_init": None, "weight_decay": 0.0, "jit_batch": None,
                   "baseline": None, "training": False}
    for name, default in unsupported.items():
        if getattr(args, name) != default:
            raise ValueError(f"--{name.replace('_', '-')} is not available with --net convnet")
    if args.data == "dense":
        raise ValueError("--data dense is not available with --net convnet: mnist or fashion")
    if args.json:
        check_output_path(args.json, "--json")
    report = run_benchmark(
        args.methods, args.threads, hidden=args.hidden, batch=args.batch, repeats=args.repeats,
        quick=args.quick, verify_only=args.verify_only, compile_time=False, data=args.data,
        data_dir=args.data_dir, synthetic=args.synthetic,
        blas_threads=None if args.blas_threads is _DEFAULT else args.blas_threads,
        sample=args.sample, phase_profile=args.phases, net="convnet",
        conv_param=conv_param(args), log=lambda msg: print(msg, file=sys.stderr, flush=True))
    print(format_report(report))
    if args.json:
        save_json(with_command(report, args), args.json)
        print(f"report saved to {args.json}")
    return 0 if report["ok"] else 1


def _run_targets(args):
    from fastgrad.bench.report import check_output_path, newest_report, save_json
    from fastgrad.bench.targets import DEFAULT_FILE, default_file, load_targets
    from fastgrad.bench.targets_run import format_targets, run_targets

    if args.compare or args.verify_only or args.plot or args.cluster:
        raise ValueError("--targets takes neither --compare, --verify-only, --plot nor "
                         "--cluster")
    path = default_file() if args.targets is _CHECKOUT_TARGETS else args.targets
    if path is None:
        raise FileNotFoundError(f"--targets: no FILE given and no {DEFAULT_FILE.as_posix()} "
                                f"under the current directory ({Path.cwd()}): run from the "
                                "checkout's root or pass the targets file")
    thresholds = load_targets(path)  # a bad file fails now, not after minutes
    # the baseline row is the standard 784-50-10 net's: its newest saved report
    baseline = args.baseline or newest_report(layers=[784, 50, 10])
    if args.json:
        check_output_path(args.json, "--json")
    report = run_targets(
        thresholds, threads=max(args.threads) if args.threads else None, jit_batch=args.jit_batch,
        baseline=baseline, quick=args.quick, repeats=args.repeats, data_dir=args.data_dir,
        synthetic=args.synthetic,
        # one BLAS thread: with two, the book's loop on a shared 2-core VM swung 10x between
        # calls (OpenBLAS and Numba workers competing), which inflates every ratio vs it
        blas_threads=1 if args.blas_threads is _DEFAULT else args.blas_threads,
        training=args.training, log=lambda msg: print(msg, file=sys.stderr, flush=True))
    print(format_targets(report))
    if args.json:
        save_json(with_command(report, args), args.json)
        print(f"report saved to {args.json}")
    return 0 if report["ok"] else 1


def with_command(report, args):
    """``report`` with the command line that made it (``fastgrad bench ...``)."""
    argv = getattr(args, "argv", None)
    if argv is not None:
        report["command"] = shlex.join(["fastgrad", *argv])
    return report
