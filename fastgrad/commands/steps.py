"""``fastgrad steps``: the step-size study of chapter 4 on the network."""

from __future__ import annotations

import json
import sys

import numpy as np

from fastgrad import plots, steps
from fastgrad.files import atomic_write
from fastgrad.standard import standard_workload


def register(subparsers):
    p = subparsers.add_parser(
        "steps",
        help="error of the numerical gradient against the exact one, for h from 1e-1 down",
        description="On the seeded 784-50-10 net and its batch (real test digits when present "
                    "locally, else labelled synthetic data), compare the central difference "
                    "with the exact analytic gradient of the same loss for every h on a log "
                    "grid: the book's loop on a seeded sample of parameters, the incremental "
                    "method on all of them, and the book's loop in float32.",
    )
    p.add_argument("--batch", type=int, default=100, help="batch size (default 100)")
    p.add_argument("--hidden", type=int, default=50, help="hidden units (default 50)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the weights and of the sampled parameters (default 0)")
    p.add_argument("--sample", type=int, default=steps.DEFAULT_SAMPLE,
                   help=f"parameters sampled for the book's loops "
                        f"(default {steps.DEFAULT_SAMPLE})")
    p.add_argument("--h-max", type=float, default=1e-1, help="largest step (default 1e-1)")
    p.add_argument("--h-min", type=float, default=1e-12, help="smallest step (default 1e-12)")
    p.add_argument("--per-decade", type=int, default=3, help="steps per decade (default 3)")
    p.add_argument("--no-float32", action="store_true", help="skip the float32 curve")
    p.add_argument("--threads", type=int, default=None, help="Numba threads (default: all)")
    p.add_argument("--dataset", default="mnist", choices=["mnist", "fashion"])
    p.add_argument("--data-dir", default=None, help="folder with the test files")
    p.add_argument("--synthetic", action="store_true", help="use synthetic data")
    p.add_argument("--json", metavar="PATH", help="save the curves as JSON")
    p.add_argument("--plot", metavar="PATH", help="draw the log-log plot into a PNG "
                                                  "(needs the plot extra: matplotlib)")
    p.add_argument("--taylor", action="store_true",
                   help="instead of the sweep, the step-free Taylor test of the exact gradient: "
                        "slope of |f(x + t v) - f(x) - t v.g| against t (2 = right, 1 = wrong) "
                        "along random directions; --plot draws the residuals")
    p.add_argument("--directions", type=int, default=3,
                   help="directions of the Taylor test (default 3)")
    p.set_defaults(func=run)


def grid(h_max, h_min, per_decade):
    """Log grid from ``h_max`` down to ``h_min`` with ``per_decade`` steps per decade."""
    if not (h_max > 0 and h_min > 0 and np.isfinite(h_max) and np.isfinite(h_min)):
        raise ValueError(f"--h-max and --h-min must be positive, got {h_max!r}, {h_min!r}")
    if h_min >= h_max:
        raise ValueError(f"--h-min ({h_min:g}) must be below --h-max ({h_max:g})")
    if per_decade < 1:
        raise ValueError(f"--per-decade must be at least 1, got {per_decade}")
    decades = np.log10(h_max / h_min)
    return np.logspace(np.log10(h_max), np.log10(h_min), int(round(decades * per_decade)) + 1)


def run(args) -> int:
    step_grid = grid(args.h_max, args.h_min, args.per_decade)
    if args.plot:  # fail before the work, not after it
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print("fastgrad steps: error: --plot needs matplotlib: "
                  "pip install 'fastgrad[plot]'", file=sys.stderr)
            return 2
    work = standard_workload(args.batch, args.hidden, args.seed, args.dataset, args.data_dir,
                             synthetic=args.synthetic)
    print(f"network 784-{args.hidden}-10 (seed {args.seed}), batch {args.batch}: {work.source}")
    if args.taylor:
        return _taylor(args, work, step_grid)
    print(f"{len(step_grid)} steps from {step_grid[0]:.0e} to {step_grid[-1]:.0e} ...",
          flush=True)
    sweep = steps.step_sweep(work.net, work.x, work.t, steps=step_grid, sample=args.sample,
                             seed=args.seed, threads=args.threads, float32=not args.no_float32,
                             source=work.source)
    print(f"done in {sweep.seconds:.1f} s; error = max |numerical - exact analytic|, "
          f"* = best h\n")
    print(sweep.table())
    if args.json:
        text = json.dumps(sweep.as_dict(), indent=2).encode()
        atomic_write(args.json, lambda fh: fh.write(text))
        print(f"\ncurves saved to {args.json}")
    if args.plot:
        plots.plot_sweep(sweep, args.plot)
        print(f"plot saved to {args.plot}")
    return 0


def _taylor(args, work, step_grid):
    """``--taylor``: the step-free test on the network, its text, JSON and plot."""
    from fastgrad import plots

    report = steps.taylor_net(work.net, work.x, work.t, directions=args.directions,
                              seed=args.seed, steps=step_grid)
    print(report)
    if args.json:
        text = json.dumps(report.as_dict(), indent=2).encode()
        atomic_write(args.json, lambda fh: fh.write(text))
        print(f"\nresiduals saved to {args.json}")
    if args.plot:
        plots.plot_taylor(report.slopes, args.plot)
        print(f"plot saved to {args.plot}")
    return 0 if report.ok else 1
