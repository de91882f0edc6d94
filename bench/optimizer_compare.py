"""The book's optimizer comparison (chapter 6, Figure 6-9), timed: incremental vs backprop.

The two training rows of the issue-8 targets table (see
:mod:`fastgrad.benchtraining`), with the loss curves of both gradients in one
plot and everything in a JSON report. ``fastgrad bench --targets --training``
measures the same rows with the rest of the table.

Usage::

    python bench/optimizer_compare.py --json runs/optimizers.json --plot runs/optimizers.png
"""

from __future__ import annotations

import argparse
import json

from fastgrad import benchtraining as bt


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
    args = p.parse_args(argv)
    data, described = bt.load_data(args.data, args.train)
    rows, histories, details = bt.run_comparison(
        data, described=described, iters=args.iters, batch=args.batch, threads=args.threads,
        seed=args.seed, say=lambda s: print(s, flush=True))
    print()
    for r in rows:
        print(f"{r['workload']}: {r['figure']:.2f} {r['unit']} (must <= {r['must']:g}, "
              f"stretch <= {r['stretch']:g}): {r['met']}\n  {r['note']}")
    if args.plot:
        print(f"plot: {bt.plot_methods(histories, args.plot)}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"rows": rows, **details}, fh, indent=1)
    return 0 if all(r["met"] != "MISSED" for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
