"""The book's optimizer comparison (chapter 6, Figure 6-9), timed: incremental vs backprop.

The two training figures of the targets table (see
:mod:`fastgrad.bench.training`), judged against bench/targets.toml (or
``--targets FILE``), with the loss curves of both gradients in one plot and
everything in a JSON report. ``fastgrad bench --targets --training`` measures
the same figures with the rest of the table.

Usage::

    python bench/optimizer_compare.py --json runs/optimizers.json --plot runs/optimizers.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fastgrad import plots
from fastgrad.bench import training as bt
from fastgrad.bench.targets import MISSED, judge_row, load_targets, thresholds_text

#: The repository's targets.
TARGETS = Path(__file__).with_name("targets.toml")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", choices=("mnist", "fashion"), default="mnist",
                   help="MNIST (its test digits split when the training set is absent) or "
                        "Fashion-MNIST")
    p.add_argument("--train", type=int, default=bt.SPLIT,
                   help="test digits to train on when MNIST's training set is absent")
    p.add_argument("--iters", type=int, default=bt.ITERS)
    p.add_argument("--batch", type=int, default=bt.BATCH)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None)
    p.add_argument("--plot", default=None, help="PNG of both gradients' loss curves")
    p.add_argument("--targets", default=TARGETS, metavar="FILE",
                   help="the targets file the figures are judged by (default: "
                        "bench/targets.toml)")
    args = p.parse_args(argv)
    targets = load_targets(args.targets)  # a bad file fails before minutes of training
    data, described = bt.load_data(args.data, args.train)
    figures, histories, details = bt.run_comparison(
        data, described=described, iters=args.iters, batch=args.batch, threads=args.threads,
        seed=args.seed, say=lambda s: print(s, flush=True))
    rows = [judge_row(f, targets) for f in figures]
    print()
    for r in rows:
        goals = thresholds_text(r, targets.levels)
        print(f"{r['workload']}: {r['figure']:.2f} {r['unit']} ({goals}): {r['met']}\n"
              f"  {r['note']}")
    if args.plot:
        print(f"plot: {plots.plot_method_comparison(histories, args.plot)}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"rows": rows, **details}, fh, indent=1)
    return 0 if all(r["met"] != MISSED for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
