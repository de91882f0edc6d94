"""Scaling of fastgrad.distributed on this machine: 2 workers vs 1, overhead per chunk.

Measures, in one run:

1. the machine's own 2-process ceiling: a pure-arithmetic task, the same total
   work on 1 and on 2 processes (``ceiling = t1 / t2``, at most 2);
2. the reference gradient of a net (default 784-100-10 sigmoid, batch 300:
   minutes on one core; ``--batch 100`` is about 100 s) in this process on one
   core and on a ``LocalCluster`` of 1 single-threaded worker, in turn
   ``--rounds`` times (the best of each kept), then on 2 workers, with the
   default chunk size; the efficiency of 2 workers is ``(t_1worker / t_2workers) /
   ceiling`` (target >= 0.9) and the scheduling overhead per chunk is
   ``(t_1worker - t_here) / n_chunks`` as a share of a chunk's compute
   ``t_here / n_chunks`` (target <= 5%);
3. the scheduler's cost per task (no-op tasks on the 2-worker cluster), and from
   these a projection to 16 and 64 workers (:func:`project`);
4. a plain-Python ``f`` (the 784-50-10 loss of the flat parameters, batch 100)
   by ``fastgrad.numerical_gradient(client=)`` on ``local:2`` against SciPy's
   ``approx_derivative(method='3-point', workers=)`` on a 2-process pool
   (target: fastgrad at least as fast).

Every figure lands in a JSON file with the date, the CPU (``lscpu``) and the
command. Timings need a quiet machine; ``--smoke`` runs small sizes in seconds
to check that the script works.

Usage::

    python bench/distributed_scaling.py
    python bench/distributed_scaling.py --smoke --out /tmp/scaling.json
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import multiprocessing
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

import fastgrad
from fastgrad import distributed, reference

TARGET_EFFICIENCY = 0.9
TARGET_OVERHEAD_SHARE = 0.05
TARGET_F_SPEEDUP = 1.0
RESULTS = Path(__file__).resolve().parent / "results"


def cpu_model():
    """``Model name`` of ``lscpu`` (else /proc/cpuinfo, else :mod:`platform`)."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in text.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.processor() or platform.machine() or "unknown"


def arithmetic(n):
    """Pure-Python arithmetic, no memory traffic: the ceiling's unit of work."""
    total = 0.0
    for i in range(n):
        total += (i % 7) * 0.5 - (i % 3) * 0.25
    return total


def ceiling(n_tasks, per_task, rounds=3):
    """``(t on 1 process, t on 2 processes)`` of ``n_tasks`` arithmetic tasks: medians of
    ``rounds`` rounds taken in turn (1, 2, 1, 2, ...), since a VM's second core comes and
    goes and one round of each can read a ceiling above 2."""
    ctx = multiprocessing.get_context("spawn")
    times = {1: [], 2: []}
    with ctx.Pool(1) as one, ctx.Pool(2) as two:
        for pool, processes in ((one, 1), (two, 2)):
            pool.map(arithmetic, [1000] * processes)  # started and warm
        for _ in range(rounds):
            for pool, processes in ((one, 1), (two, 2)):
                start = time.perf_counter()
                pool.map(arithmetic, [per_task] * n_tasks, chunksize=1)
                times[processes].append(time.perf_counter() - start)
    return statistics.median(times[1]), statistics.median(times[2])


def batch(n, n_in, seed):
    """Synthetic MNIST-like digits: about 19% non-zero pixels in [0, 1]."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, n_in)) * (rng.random((n, n_in)) < 0.19)
    return x, rng.integers(0, 10, n)


def _noop(i):
    return i


def task_cost(client, n_tasks):
    """Seconds per no-op task through client, scheduler and workers (throughput)."""
    client.gather(client.map(_noop, range(50), pure=False))  # warm
    start = time.perf_counter()
    client.gather(client.map(_noop, range(n_tasks), pure=False))
    return (time.perf_counter() - start) / n_tasks


def project(n_items, per_item, overhead, per_task, workers):
    """Projected efficiency of ``workers`` single-threaded workers on this job.

    The default chunk size for that many workers
    (:func:`fastgrad.distributed.default_chunk_size`) gives ``C`` chunks of
    ``c`` seconds; each worker runs ``ceil(C / workers)`` of them in waves,
    paying ``overhead`` each, and the scheduler handles tasks one at a time at
    ``per_task`` seconds each: ``T = max(ceil(C / N) (c + o), C s)``, and the
    efficiency is ``n_items * per_item / (N T)``. Loopback figures: remote
    workers also fetch the inputs once each over the network.
    """
    size = distributed.default_chunk_size(n_items, per_item, workers)
    chunks = math.ceil(n_items / size)
    chunk_s = size * per_item
    wall = max(math.ceil(chunks / workers) * (chunk_s + overhead), chunks * per_task)
    return {"workers": workers, "chunk_size": size, "chunks": chunks,
            "chunk_seconds": chunk_s, "seconds": wall,
            "efficiency": n_items * per_item / (workers * wall)}


def timed(call):
    start = time.perf_counter()
    value = call()
    return value, time.perf_counter() - start


def net_scaling(hidden, batch_size, seed=0, rounds=2):
    """Reference gradient here (one core) and on 1 worker, ``rounds`` times in turn (the
    best of each: a VM's cores change speed from one minute to the next, and the overhead
    is their small difference), then once on 2 workers."""
    net = fastgrad.MultiLayerNet(784, [hidden], 10, activation="sigmoid", weight_init_std=0.01,
                                 seed=seed)
    x, t = batch(batch_size, 784, seed)
    n_params = sum(v.size for v in net.params.values())
    out = {"net": f"784-{hidden}-10 sigmoid", "batch": batch_size, "parameters": n_params,
           "seconds_here_rounds": [], "seconds_1worker_rounds": []}
    here = None
    for workers in (1, 2):
        with distributed.connect(f"local:{workers}") as client:
            # the default chunk size, as a user gets it (recorded for the report)
            size = _default_size(client, net, x, t)
            for _ in range(rounds if workers == 1 else 1):
                if workers == 1:
                    with threadpool_limits(1, user_api="blas"):  # one core, like one worker
                        here, t_here = timed(
                            lambda: net.numerical_gradient(x, t, method="reference"))
                    out["seconds_here_rounds"].append(t_here)
                    print(f"784-{hidden}-10 batch {batch_size} ({n_params:,} parameters): "
                          f"reference here {t_here:.1f} s", flush=True)
                spread, seconds = timed(lambda c=client, s=size: net.numerical_gradient(
                    x, t, method="reference", client=c, chunk_size=s))
                assert all(np.array_equal(here[k], spread[k]) for k in here), \
                    "not bitwise equal"
                if workers == 1:
                    out["seconds_1worker_rounds"].append(seconds)
                print(f"  on {workers} worker(s): {seconds:.1f} s "
                      f"({math.ceil(n_params / size)} chunks of {size})", flush=True)
            if workers == 2:
                out["seconds_per_noop_task"] = task_cost(client, 500)
        out[f"seconds_{workers}worker"] = (min(out["seconds_1worker_rounds"]) if workers == 1
                                           else seconds)
        out[f"chunk_size_{workers}worker"] = size
        out[f"chunks_{workers}worker"] = math.ceil(n_params / size)
    out["seconds_here"] = min(out["seconds_here_rounds"])
    return out


def _default_size(client, net, x, t):
    """The chunk size ``client=`` picks by default (from one loss timed here)."""
    per_item = 2 * distributed.best_seconds(
        lambda: reference.loss(net.params, np.asarray(x, dtype=np.float64), np.asarray(t),
                               *net.arch))
    size = distributed.default_chunk_size(sum(v.size for v in net.params.values()), per_item,
                                          sum(client.nthreads().values()))
    return size


def flat_loss(theta, x, labels, hidden):
    """The 784-``hidden``-10 sigmoid loss of the flat parameters: anyone's plain ``f``."""
    sizes = ((784, hidden), (hidden,), (hidden, 10), (10,))
    params, start = {}, 0
    for name, shape in zip(("W1", "b1", "W2", "b2"), sizes, strict=True):
        size = math.prod(shape)
        params[name] = theta[start:start + size].reshape(shape)
        start += size
    return float(reference.loss(params, x, labels))


def f_versus_scipy(hidden, batch_size, seed=0):
    """``numerical_gradient(f, client=local:2)`` against SciPy on a 2-process pool."""
    from scipy.optimize._numdiff import approx_derivative

    net = fastgrad.MultiLayerNet(784, [hidden], 10, activation="sigmoid", weight_init_std=0.01,
                                 seed=seed)
    theta = np.concatenate([v.ravel() for v in net.params.values()])
    x, t = batch(batch_size, 784, seed + 1)
    args = (x, t, hidden)
    with distributed.connect("local:2") as client:
        ours, t_ours = timed(lambda: fastgrad.numerical_gradient(
            flat_loss, theta, args=args, client=client))
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        pool.map(abs, [1, 2])  # started
        # imap, not map: map would first build every perturbed point (n copies of theta)
        theirs, t_scipy = timed(lambda: approx_derivative(
            flat_loss, theta, method="3-point", abs_step=1e-4, args=args,
            workers=lambda fun, points: pool.imap(fun, points, chunksize=64)))
    print(f"plain f, 784-{hidden}-10 loss of {theta.size:,} parameters, batch {batch_size}: "
          f"fastgrad local:2 {t_ours:.1f} s, SciPy approx_derivative 2 processes "
          f"{t_scipy:.1f} s", flush=True)
    return {"f": f"784-{hidden}-10 sigmoid loss, flat parameters", "batch": batch_size,
            "parameters": int(theta.size), "seconds_fastgrad_local2": t_ours,
            "seconds_scipy_pool2": t_scipy, "speedup": t_scipy / t_ours,
            "max_abs_difference": float(np.max(np.abs(ours - theirs)))}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--hidden", type=int, default=100, help="hidden width of the net (100)")
    p.add_argument("--batch", type=int, default=300, help="batch of the net (300)")
    p.add_argument("--f-hidden", type=int, default=50, help="hidden width of f's net (50)")
    p.add_argument("--f-batch", type=int, default=100, help="batch of f's net (100)")
    p.add_argument("--smoke", action="store_true",
                   help="small sizes (seconds): checks the script, measures nothing useful")
    p.add_argument("--rounds", type=int, default=2,
                   help="rounds of the reference here and on 1 worker, in turn; the best of "
                        "each is kept (2)")
    p.add_argument("--out", default=None, help="JSON file (default bench/results/"
                                               "distributed-scaling-DATE.json)")
    args = p.parse_args(argv)
    if args.smoke:
        args.hidden, args.batch, args.f_hidden, args.f_batch = 4, 20, 3, 10
    when = datetime.date.today().isoformat()
    out = Path(args.out) if args.out else RESULTS / f"distributed-scaling-{when}.json"
    per_task = 2_000_000 if not args.smoke else 100_000
    t1, t2 = ceiling(8, per_task)
    print(f"ceiling: arithmetic on 1 process {t1:.2f} s, on 2 {t2:.2f} s: x{t1 / t2:.2f}",
          flush=True)
    net = net_scaling(args.hidden, args.batch, rounds=args.rounds)
    speedup = net["seconds_1worker"] / net["seconds_2worker"]
    efficiency = speedup / (t1 / t2)
    per_chunk = net["seconds_here"] / net["chunks_1worker"]
    overhead = max(net["seconds_1worker"] - net["seconds_here"], 0.0) / net["chunks_1worker"]
    per_item = net["seconds_here"] / net["parameters"]
    projections = [project(net["parameters"], per_item, overhead,
                           net["seconds_per_noop_task"], n) for n in (16, 64)]
    hour = [project(net["parameters"] * 3600 / net["seconds_here"], per_item, overhead,
                    net["seconds_per_noop_task"], n) for n in (16, 64)]
    f = f_versus_scipy(args.f_hidden, args.f_batch)
    summary = {
        "ceiling_speedup_2_processes": t1 / t2,
        "speedup_2_workers": speedup,
        "efficiency_vs_ceiling": efficiency,
        "overhead_per_chunk_seconds": overhead,
        "overhead_share_of_chunk": overhead / per_chunk,
        "f_speedup_vs_scipy": f["speedup"],
        "met": {"efficiency": efficiency >= TARGET_EFFICIENCY,
                "overhead": overhead / per_chunk <= TARGET_OVERHEAD_SHARE,
                "f_vs_scipy": f["speedup"] >= TARGET_F_SPEEDUP},
    }
    print(f"2 workers vs 1: x{speedup:.2f} = {efficiency:.0%} of the ceiling (target >= "
          f"{TARGET_EFFICIENCY:.0%}); overhead per chunk {overhead * 1e3:.1f} ms = "
          f"{overhead / per_chunk:.1%} of a chunk's {per_chunk:.2f} s (target <= "
          f"{TARGET_OVERHEAD_SHARE:.0%}); plain f vs SciPy x{f['speedup']:.2f}")
    for proj in projections + hour:
        print(f"projected: {proj['workers']} workers, {proj['chunks']} chunks of "
              f"{proj['chunk_seconds']:.2f} s: efficiency {proj['efficiency']:.0%}")
    record = {
        "date": when,
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "load_average": list(os.getloadavg()),
        "command": " ".join(["python", "bench/distributed_scaling.py"]
                            + [shlex.quote(a) for a in (sys.argv[1:] if argv is None
                                                        else argv)]),
        "smoke": args.smoke,
        "versions": {"fastgrad": fastgrad.__version__, "python": platform.python_version(),
                     "numpy": np.__version__, "dask": _dask_version()},
        "targets": {"efficiency_vs_ceiling": TARGET_EFFICIENCY,
                    "overhead_share_of_chunk": TARGET_OVERHEAD_SHARE,
                    "f_speedup_vs_scipy": TARGET_F_SPEEDUP},
        "ceiling": {"tasks": 8, "seconds_1process": t1, "seconds_2processes": t2},
        "net": net,
        "projection": {"this_job": projections, "one_hour_job": hour},
        "plain_f": f,
        "summary": summary,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


def _dask_version():
    import dask

    return dask.__version__


if __name__ == "__main__":
    raise SystemExit(main())
