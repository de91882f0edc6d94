"""Speed of the dense-layer kernels: GFLOP/s, BLAS inside prange, the density threshold.

Run ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/dense_report.py``
(``--only gflops|prange|threshold``, ``--repeats N``).

``gflops``: ``dense.affine_packed`` / ``dense.affine`` against NumPy's
``np.dot`` and ``np.dot`` compiled by Numba (BLAS held at one thread).
``prange``: the jit method's pattern (per-chunk weights perturbed in place,
one layer per item) with BLAS called inside the prange versus the kernel:
time on all threads and whether the results are bitwise the same on one thread.
``forward``: one whole batch loss (784-50-10, batch 100) with today's
``forward.batch_loss`` against the new kernels (sparse, dense, auto).
``threshold``: for 784-50 and 784-100
at batch 100 and 128 it times the hidden pre-activations of seeded synthetic
batches of rising density both ways (one thread, best of ``--repeats``
interleaved rounds of this thread's CPU time, which a busy machine's
preemptions do not inflate),
reports the crossover density (where the linear fit of the CSR time meets
the dense time) and the times on the real inputs of bench/dense_inputs.py.
"""

from __future__ import annotations

import argparse
import time

import numba
import numpy as np
from dense_inputs import (
    DATASETS,
    batch_of,
    blas_affine,
    first_layer,
    layer,
    net_losses,
    perturbed_layers,
    synthetic,
)
from threadpoolctl import threadpool_limits

from fastgrad import config
from fastgrad.kernels import dense

GFLOPS_SHAPES = ((100, 784, 50), (128, 784, 100), (128, 100, 100), (128, 100, 10))

DENSITIES = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)


def best_times(runs, repeats, budget=0.005):
    """Best seconds per call of each of ``runs``, timed in interleaved rounds."""
    loops = []
    for run in runs:
        run()
        n = 1
        while True:  # enough calls per timing to beat the clock's resolution
            t = time.thread_time()
            for _ in range(n):
                run()
            if time.thread_time() - t > budget:
                break
            n *= 2
        loops.append(n)
    best = [float("inf")] * len(runs)
    for _ in range(repeats):
        for i, (run, n) in enumerate(zip(runs, loops, strict=True)):
            t = time.thread_time()
            for _ in range(n):
                run()
            best[i] = min(best[i], (time.thread_time() - t) / n)
    return best


def _matmuls(z, W, Wp, b, out):
    def numpy_dot():
        np.dot(z, W, out=out)
        out.__iadd__(b)

    return {"affine_packed": lambda: dense.affine_packed(z, Wp, b, out),
            "affine (packs W)": lambda: dense.affine(z, W, b, out),
            "np.dot": numpy_dot,
            "np.dot in @njit": lambda: blas_affine(z, W, b, out)}


def gflops(repeats):
    rng = np.random.default_rng(0)
    for batch, n_in, n_out in GFLOPS_SHAPES:
        z = rng.standard_normal((batch, n_in))
        W, b = rng.standard_normal((n_in, n_out)), rng.standard_normal(n_out)
        Wp = np.empty(dense.packed_size(n_in, n_out))
        dense.pack(W, Wp)
        out = np.empty((batch, n_out))

        runs = _matmuls(z, W, Wp, b, out)
        with threadpool_limits(1, user_api="blas"):
            times = best_times(list(runs.values()), repeats)
        flops = 2 * batch * n_in * n_out
        print(f"({batch},{n_in})@({n_in},{n_out}): " + "  ".join(
            f"{name} {flops / t / 1e9:5.1f}" for name, t in zip(runs, times, strict=True))
            + "  GFLOP/s (one thread, CPU time)", flush=True)


def prange_blas(repeats, n_items=400):
    x = batch_of("standardised", 100)
    if x is None:
        x = np.random.default_rng(0).standard_normal((100, 784))
    W, _Wp, b = layer(784, 50)
    threads = config.max_threads()
    chunks = config.n_chunks(threads, n_items)
    flops = n_items * 2 * x.shape[0] * 784 * 50
    with threadpool_limits(1, user_api="blas"):
        for use_blas in (False, True):
            name = "np.dot in prange" if use_blas else "affine_packed in prange"
            results = []
            for t in sorted({1, threads}):
                previous = numba.get_num_threads()
                numba.set_num_threads(t)
                try:
                    perturbed_layers(x, W, b, 8, min(chunks, 8), use_blas)
                    wall = cpu = float("inf")
                    for _ in range(max(3, repeats // 4)):
                        start, start_cpu = time.perf_counter(), time.process_time()
                        results.append(perturbed_layers(x, W, b, n_items, chunks, use_blas))
                        wall = min(wall, time.perf_counter() - start)
                        cpu = min(cpu, time.process_time() - start_cpu)
                finally:
                    numba.set_num_threads(previous)
                print(f"{name}, {t} thread(s): {flops / wall / 1e9:5.1f} GFLOP/s wall, "
                      f"{flops / cpu / 1e9:5.1f} GFLOP per CPU second", flush=True)
            same = all(np.array_equal(r, results[0]) for r in results)
            print(f"{name}: bitwise identical over thread counts and repeats: {same}")


def threshold(repeats):
    for hidden in (50, 100):
        W, Wp, b = layer(784, hidden)
        for batch in (100, 128):
            xs = [synthetic(batch, d) for d in DENSITIES]
            dens = [np.count_nonzero(x) / x.size for x in xs]
            runs = [first_layer(p, xs[0], W, Wp, b) for p in ("dense", "dense+pack")]
            for path in ("csr", "sparse"):
                runs += [first_layer(path, x, W, Wp, b) for x in xs]
            times = best_times(runs, repeats)
            dense_t, pack_t = times[:2]
            flops = 2 * batch * 784 * hidden
            print(f"784-{hidden} batch {batch}: dense {dense_t * 1e6:.0f} us "
                  f"({flops / dense_t / 1e9:.1f} GFLOP/s), packing W too {pack_t * 1e6:.0f} us")
            for p, path in enumerate(("csr", "sparse")):
                t_path = times[2 + p * len(xs): 2 + (p + 1) * len(xs)]
                slope, icept = np.polyfit(dens, t_path, 1)  # linear in the lit pixels
                print(f"  {path}: {slope * 1e6:.0f} us x density + {icept * 1e6:.0f} us; "
                      f"equals dense at density {(dense_t - icept) / slope:.3f} "
                      f"({(pack_t - icept) / slope:.3f} packing W too); "
                      + " ".join(f"{d:.2f}:{t / dense_t:.2f}"
                                 for d, t in zip(dens, t_path, strict=True))
                      + " (density:time/dense)")
            for name in DATASETS:
                x = batch_of(name, batch)
                if x is None:
                    print(f"    {name}: not found")
                    continue
                td, tc, ts = best_times([first_layer(p, x, W, Wp, b)
                                         for p in ("dense", "csr", "sparse")], repeats)
                print(f"    {name:>12} {np.count_nonzero(x) / x.size:5.3f} lit: dense "
                      f"{td * 1e6:5.0f} us  csr {tc * 1e6:5.0f} us  sparse {ts * 1e6:5.0f} us",
                      flush=True)


def forward(repeats):
    """One batch loss of 784-50-10, batch 100: today's batch_loss against the new kernels."""
    for name in DATASETS:
        x = batch_of(name, 100)
        if x is None:
            print(f"{name}: not found")
            continue
        labels = np.arange(100, dtype=np.uint8) % 10
        runs = net_losses(x, labels)
        values = {k: run() for k, run in runs.items()}
        spread = max(abs(v - values["batch_loss"]) for v in values.values())
        times = dict(zip(runs, best_times(list(runs.values()), repeats), strict=True))
        base = times["batch_loss"]
        print(f"{name:>12} ({np.count_nonzero(x) / x.size:.2f} lit): " + "  ".join(
            f"{k} {t * 1e6:4.0f} us ({base / t:.2f}x)" for k, t in times.items())
            + f"  |loss diff| <= {spread:.1e}", flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--only", choices=("gflops", "prange", "threshold", "forward"))
    args = parser.parse_args(argv)
    for name, part in (("gflops", gflops), ("prange", prange_blas), ("threshold", threshold),
                       ("forward", forward)):
        if args.only in (None, name):
            print(f"--- {name}")
            part(args.repeats)


if __name__ == "__main__":
    main()
