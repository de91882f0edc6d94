"""Training overhead: time per iteration outside the gradient, chapter-4 net.

``fastgrad.train`` on the book's 784-50-10 sigmoid net (batch 100, h = 1e-4),
``--rounds`` runs of ``--iters`` iterations per optimizer, each reporting the
gradient's time per iteration, the time outside it (minibatch, update, the
loss after the update, bookkeeping; accuracy checks excluded) and that share of
an iteration. The worst share is judged against ``training-overhead-share`` in
bench/targets.toml (or ``--targets FILE``). Rounds and optimizers alternate, so
a neighbour's burst shows as spread.

``--probe`` first measures what any per-step work pays on the machine: a
NumPy call of a few microseconds (the minibatch draw) timed right after a gap
of unrelated Python busy work, and again at once. On a shared VM the first
call's time grows with the gap, as other tenants evict the caches meanwhile.

Usage::

    python bench/training_overhead.py --data mnist fashion --optimizer sgd adam --rounds 2
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import fastgrad
from fastgrad.bench.targets import MISSED, judge, load_targets, thresholds_text
from fastgrad.bench.training import load_data

#: The repository's targets, and the figure of this script in them (in percent).
TARGETS = Path(__file__).with_name("targets.toml")
FIGURE = "training-overhead-share"


def measure(data, optimizer, iters, threads, seed=0):
    """One run: ``(gradient s/iteration, outside s/iteration, share of an iteration)``."""
    h = fastgrad.train(data, iters=iters, threads=threads, optimizer=optimizer, seed=seed,
                       eval_every=iters)
    return h.time_per_gradient, h.step_overhead, h.step_overhead_share


def probe(gaps_ms=(0.05, 1, 2, 4, 8), repeats=300):
    """``{gap ms: (median first call s, median second call s)}`` of ``rng.integers``."""
    rng, clock, out = np.random.default_rng(0), time.perf_counter, {}
    for gap in gaps_ms:
        first, second = [], []
        for _ in range(repeats):
            until = clock() + gap * 1e-3
            while clock() < until:
                pass
            t0 = clock()
            rng.integers(0, 8000, 100)
            t1 = clock()
            rng.integers(0, 8000, 100)
            first.append(t1 - t0)
            second.append(clock() - t1)
        out[gap] = (float(np.median(first)), float(np.median(second)))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", nargs="+", choices=("mnist", "fashion"), default=["mnist"])
    p.add_argument("--optimizer", nargs="+", default=["sgd"])
    p.add_argument("--iters", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default=None)
    p.add_argument("--targets", default=TARGETS, metavar="FILE",
                   help=f"the targets file holding {FIGURE} (default: bench/targets.toml)")
    p.add_argument("--probe", action="store_true",
                   help="first time a small NumPy call after gaps of 0.05-8 ms of other work")
    args = p.parse_args(argv)
    targets = load_targets(args.targets)  # a bad file fails before minutes of training
    if FIGURE not in targets.targets:
        p.error(f"{args.targets} has no [targets.{FIGURE}]")
    target = targets.targets[FIGURE]
    probed = None
    if args.probe:
        probed = probe()
        for gap, (first, second) in probed.items():
            print(f"after {gap:g} ms of other work: the draw took {1e6 * first:.1f} us, "
                  f"at once again {1e6 * second:.1f} us")
    sets = {name: load_data(name) for name in args.data}
    for data, _ in sets.values():  # load the kernels outside the timings
        for opt in args.optimizer:
            fastgrad.train(data, iters=2, threads=args.threads, optimizer=opt)
    runs = []
    for rnd in range(args.rounds):
        for name, (data, _) in sets.items():
            for opt in args.optimizer:
                grad, outside, share = measure(data, opt, args.iters, args.threads)
                runs.append({"round": rnd + 1, "data": name, "optimizer": opt,
                             "gradient_s": grad, "outside_s": outside, "share": share})
                print(f"round {rnd + 1}  {name:8s} {opt:9s} gradient {1e3 * grad:6.2f} ms  "
                      f"outside {1e3 * outside:6.3f} ms  = {share:6.1%} of an iteration",
                      flush=True)
    worst = max(r["share"] for r in runs)
    level = judge(100 * worst, target, targets.levels)
    goals = thresholds_text(target, targets.levels)
    print(f"\n784-50-10 sigmoid, batch 100, {args.iters:,} iterations, {args.threads} threads; "
          f"data: {'; '.join(d for _, d in sets.values())}")
    print(f"worst share outside the gradient {worst:.1%} ({goals}): {level}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"runs": runs, "worst_share": worst, "met": level,
                       "probe": probed and {str(k): v for k, v in probed.items()}}, fh,
                      indent=1)
    return 0 if level != MISSED else 1


if __name__ == "__main__":
    raise SystemExit(main())
