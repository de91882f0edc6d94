"""``fastgrad check``: validate every method against the reference (and backprop)."""

from __future__ import annotations

import time

from fastgrad import config, distributed
from fastgrad.commands.args import add_network_arguments, hidden_widths, sample_arg
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
                    "Exit status 1 if a method is off.",
    )
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
                        "or all up to 50,000 parameters and 32 per tensor above (default auto)")
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
    distributed.add_cluster_arguments(p)
    p.set_defaults(func=run)


def run(args) -> int:
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
    reference = distributed.cluster_reference(args, net.params, work.x, work.t, net.arch)
    reports = validate(net.params, work.x, work.t, methods=args.methods, tol=args.tol,
                       h=args.h, threads=args.threads, backprop_tol=args.backprop_tol,
                       activation=net.arch.activation, weight_decay=net.arch.weight_decay,
                       sample=args.sample, seed=args.seed, reference=reference)
    compared = reports[-1].compared
    scope = ("every parameter" if compared == n_params else
             f"a seeded sample of {compared:,} of the {n_params:,} parameters (the book's loop "
             f"on those entries only; --sample all for every one)")
    print(f"layer {config.threading_layer()}; done in {time.perf_counter() - start:.1f} s; "
          f"compared on {scope}\n")
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
        elif rep.min_share < 1.0:
            verdict = (f"{'ok' if rep.ok else 'FAIL'} ({rep.share_within:.1%} within tol "
                       f"{rep.tol:g}, at least {rep.min_share:.0%} needed: steps that cross a "
                       f"ReLU kink differ from the derivative; {rep.seconds:.3g} s)")
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
