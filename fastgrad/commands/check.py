"""``fastgrad check``: validate every method against the reference (and backprop)."""

from __future__ import annotations

import time

from fastgrad import config
from fastgrad.commands import cluster
from fastgrad.commands.args import (
    add_net_kind_arguments,
    add_network_arguments,
    conv_param,
    hidden_widths,
    sample_arg,
)
from fastgrad.compare import REL_FLOOR
from fastgrad.methods import METHODS, jit_first_layer
from fastgrad.standard import describe, standard_workload
from fastgrad.validate import BACKPROP_TOL, DEFAULT_TOL, validate


def register(subparsers):
    p = subparsers.add_parser(
        "check",
        help="validate the JIT methods against the NumPy reference",
        description="Build the seeded net (784-50-10 sigmoid unless --hidden/--activation "
                    "say otherwise), take a batch (real test digits when present locally, "
                    "else labelled synthetic data), compute the gradient with every method "
                    "and compare each with the reference, and the reference with backprop. "
                    "Exit status 1 if a method is off. --net convnet checks chapter 7's "
                    "SimpleConvNet: the book's loop runs on every conv parameter (W1, b1) "
                    "and --sample entries of each other tensor; jit (a full forward pass "
                    "per parameter, which cannot be sampled) runs only on nets of at most "
                    "20,000 parameters: skipped by default above, refused with --methods jit.",
    )
    add_net_kind_arguments(p)
    p.add_argument("--batch", type=int, default=100, help="batch size (default 100)")
    add_network_arguments(p)
    p.add_argument("--seed", type=int, default=0, help="seed of the weights (default 0)")
    p.add_argument("--methods", nargs="+", default=None,
                   choices=[m for m, e in METHODS.items() if e.numerical and e.compiled],
                   help="methods to check (default: all JIT methods): " + "; ".join(
                       f"{m}: {e.summary}" for m, e in METHODS.items()
                       if e.numerical and e.compiled))
    p.add_argument("--sample", type=sample_arg, default="auto", metavar="N|all|auto",
                   help="run the reference on N seeded indices per tensor, on all ('all'), "
                        "or all up to 50,000 parameters and 32 per tensor above (default "
                        "auto); --net convnet: every conv parameter and N (auto: 32) per "
                        "other tensor, 'all' takes hours on the book's net")
    p.add_argument("--tol", type=float, default=DEFAULT_TOL,
                   help=f"max abs error vs the reference (default {DEFAULT_TOL:g})")
    p.add_argument("--backprop-tol", type=float, default=BACKPROP_TOL,
                   help="max abs error of the reference vs the analytic gradient of the "
                        f"same loss (default {BACKPROP_TOL:g})")
    p.add_argument("--h", type=float, default=1e-4, help="step size (default 1e-4)")
    p.add_argument("--threads", type=int, default=None, help="Numba threads (default: all)")
    p.add_argument("--dataset", default="mnist", choices=["mnist", "fashion"])
    p.add_argument("--data-dir", default=None, help="folder with the test files")
    p.add_argument("--synthetic", action="store_true", help="use synthetic data")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="also say which kernels the methods picked for this batch, and why")
    cluster.add_cluster_arguments(p)
    p.set_defaults(func=run)


def run(args) -> int:
    if args.net == "convnet":
        return run_convnet(args)
    work = standard_workload(args.batch, hidden_widths(args), args.seed, args.dataset,
                             args.data_dir, synthetic=args.synthetic, activation=args.activation,
                             weight_init=args.weight_init, weight_decay=args.weight_decay)
    net = work.net
    n_params = sum(v.size for v in net.params.values())
    print(f"network {describe(net)} (seed {args.seed}, {n_params:,} parameters), "
          f"batch {args.batch}: {work.source}")
    if args.verbose and "jit" in (args.methods or ["jit"]):
        print(f"jit: {jit_first_layer(work.x)[1]}")
    print(f"threads {args.threads or config.default_threads()}, h = {args.h:g}; "
          f"computing the reference (the book's loop; slow) ...", flush=True)
    start = time.perf_counter()
    reference, ref_seconds = (cluster.cluster_reference(args, net.params, work.x, work.t,
                                                            net.arch) or (None, None))
    reports = validate(net.params, work.x, work.t, methods=args.methods, tol=args.tol,
                       h=args.h, threads=args.threads, backprop_tol=args.backprop_tol,
                       activation=net.arch.activation, weight_decay=net.arch.weight_decay,
                       sample=args.sample, seed=args.seed, reference=reference,
                       reference_seconds=ref_seconds)
    compared = reports[-1].compared
    scope = ("every parameter" if compared == n_params else
             f"a seeded sample of {compared:,} of the {n_params:,} parameters (the book's loop "
             f"on those entries only; --sample all for every one)")
    print(f"layer {config.threading_layer()}; done in {time.perf_counter() - start:.1f} s; "
          f"compared on {scope}\n")
    return _print_table(reports)


def _print_table(reports):
    """The per-tensor table of every comparison and the verdict; the exit status."""
    # say what the numbers are: "max rel" of a near-zero gradient would otherwise look alarming
    print("per tensor, a = the method's gradient, b = the one it is checked against (vs):\n"
          f"  max abs = max |a - b|,  max rel = max |a - b| / max(|a|, |b|, {REL_FLOOR:g})\n")
    header = f"{'method':<12} {'vs':<10} {'tensor':<6} {'max abs':>10} {'max rel':>10}  worst"
    print(header)
    print("-" * len(header))
    for rep in reports:
        for t in rep.tensors:
            print(f"{rep.method:<12} {rep.against:<10} {t.name:<6} {t.max_abs:>10.2e} "
                  f"{t.max_rel:>10.2e}  {t.worst_index}")
        if rep.tol == float("inf"):
            verdict = "info: the book's backprop drops the 1e-7 in the log"
        elif rep.excusable:
            verdict = (f"{'ok' if rep.ok else 'FAIL'} (tol {rep.tol:g}; {rep.excused} entries "
                       f"beyond it excused: steps that cross a ReLU kink, or differences within "
                       f"the finite difference's own error; {rep.seconds:.3g} s)")
        else:
            verdict = f"{'ok' if rep.ok else 'FAIL'} (tol {rep.tol:g}, {rep.seconds:.3g} s)"
        print(f"{'':<12} {'':<10} {'all':<6} {rep.max_abs:>10.2e} {'':>10}  {verdict}")
    failed = [r for r in reports if not r.ok]
    if failed:
        names = ", ".join(f"{r.method} vs {r.against}" for r in failed)
        print(f"\nFAILED: {names}")
        return 1
    print("\nall methods within tolerance")
    return 0


def run_convnet(args) -> int:
    """``check --net convnet``: chapter 7's SimpleConvNet, the reference on a sample."""
    from fastgrad.standard import describe_conv, standard_conv_workload
    from fastgrad.validate_conv import describe_sample, resolve_conv_sample, validate_conv

    mlp_only = {"activation": "sigmoid", "weight_init": None, "weight_decay": 0.0}
    for flag, default in mlp_only.items():
        if getattr(args, flag) != default:
            raise ValueError(f"--{flag.replace('_', '-')} is for --net mlp: the convnet is "
                             "the book's (ReLU, weight std 0.01, no weight decay)")
    work = standard_conv_workload(args.batch, hidden_widths(args), conv_param(args), args.seed,
                                  args.dataset, args.data_dir, synthetic=args.synthetic)
    net = work.net
    n_params = sum(v.size for v in net.params.values())
    print(f"network {describe_conv(net)} (seed {args.seed}, {n_params:,} parameters), "
          f"batch {args.batch}: {work.source}")
    print(f"threads {args.threads or config.default_threads()}, h = {args.h:g}; "
          f"computing the reference (the book's loop; slow) ...", flush=True)
    start = time.perf_counter()
    reference, ref_seconds = (cluster.cluster_reference(args, net.params, work.x, work.t,
                                                            conv=net.conv) or (None, None))
    reports, skipped = validate_conv(
        net.params, work.x, work.t, methods=args.methods, tol=args.tol, h=args.h,
        threads=args.threads, backprop_tol=args.backprop_tol, stride=net.conv.stride,
        pad=net.conv.pad, sample=args.sample, seed=args.seed, reference=reference,
        reference_seconds=ref_seconds)
    compared = reports[-1].compared
    print(f"layer {config.threading_layer()}; done in {time.perf_counter() - start:.1f} s; "
          f"compared on {describe_sample(compared, n_params, resolve_conv_sample(args.sample))}")
    for method, why in skipped.items():
        print(f"{method} skipped: {why} (e.g. --filters 4 --hidden 10)")
    print()
    return _print_table(reports)
