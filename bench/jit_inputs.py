"""The ``jit`` method against the reference on real and standardised inputs, in one command.

Run ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python bench/jit_inputs.py``
(``--only kernels mnist fashion standardised deep``, ``--threads N``, ``--sample N``).

``mnist``, ``fashion``, ``standardised``: 784-50-10 sigmoid (seed 0, the book's
0.01 init), the first 100 test images (bench/dense_inputs.py), the reference
with BLAS unpinned as users run it, ``jit`` with BLAS at one thread: one timed
call each (the kernels are compiled and loaded by a small call first), wall
and process CPU seconds, the first-layer kernel ``jit`` picked and the max abs
difference of the two gradients.

``kernels``: the three first-layer kernels of ``jit`` (784-50, batch 100) on
each input, one thread, best of interleaved rounds of CPU time
(bench/dense_report.py): dense, dense skipping the columns zero in a whole
block of 4 samples, and CSR.

``deep``: 784-[100]x4-10 ReLU (He init, seed 0) on 128 MNIST digits. The
book's loop on all 109,810 parameters would take hours here, so it is timed on
``--sample`` uniformly drawn parameters and scaled to all of them (labelled
"scaled"); ``jit`` is timed in full and compared on the sampled entries.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from dense_inputs import batch_of
from threadpoolctl import threadpool_limits

from fastgrad import MultiLayerNet, TwoLayerNet, config, reference
from fastgrad.methods import METHODS, jit_first_layer

INPUTS = ("kernels", "mnist", "fashion", "standardised", "deep")


def timed(run):
    """``(result, wall seconds, process CPU seconds)`` of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = run()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def jit_call(params, x, labels, threads, arch):
    """Time ``jit`` (BLAS at one thread) after a warm-up on 4 samples (same kernel path)."""
    func = METHODS["jit"].func
    with threadpool_limits(limits=1, user_api="blas"):
        func(params, x[:4], labels[:4], 1e-4, threads, arch)
        return timed(lambda: func(params, x, labels, 1e-4, threads, arch))


def max_diff(a, b):
    return max(float(np.nanmax(np.abs(a[k] - b[k]))) for k in a)


def reference_call(run, blas):
    """Time the reference with BLAS at ``blas`` threads (None: unpinned, as users run it)."""
    if blas is None:
        return timed(run)
    with threadpool_limits(limits=blas, user_api="blas"):
        return timed(run)


def shallow(name, threads, blas):
    x = batch_of(name, 100)
    if x is None:
        print(f"{name:<13} skipped: test images not found")
        return
    labels = np.asarray(_labels(name, 100))
    net = TwoLayerNet(784, 50, 10, seed=0)
    ref, ref_wall, ref_cpu = reference_call(
        lambda: reference.net_numerical_gradient(net.params, x, labels, 1e-4), blas)
    got, wall, cpu = jit_call(net.params, x, labels, threads, net.arch)
    print(f"{name:<13} {np.count_nonzero(x) / x.size:>7.0%}  {ref_wall:>8.1f} {ref_cpu:>8.1f}  "
          f"{wall:>8.1f} {cpu:>8.1f}  {ref_wall / wall:>6.2f}x {ref_cpu / cpu:>6.2f}x  "
          f"{max_diff(got, ref):.1e}  {jit_first_layer(x)[1]}", flush=True)


def _labels(name, batch):
    from fastgrad.standard import real_batch

    dataset = "fashion" if name == "standardised" else name
    return real_batch(batch, dataset)[1]


def deep(threads, sample, blas):
    x = batch_of("mnist", 128)
    if x is None:
        print("deep          skipped: MNIST test images not found")
        return
    labels = np.asarray(_labels("mnist", 128))
    net = MultiLayerNet(784, [100] * 4, 10, activation="relu", weight_init_std="relu", seed=0)
    params = net.params
    names = reference.param_names(params)
    sizes = np.array([params[n].size for n in names])
    total = int(sizes.sum())
    flat = np.sort(np.random.default_rng(0).choice(total, size=sample, replace=False))
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    indices = {n: flat[(flat >= s) & (flat < s + z)] - s
               for n, s, z in zip(names, starts, sizes, strict=True)}
    ref, ref_wall, ref_cpu = reference_call(lambda: reference.net_numerical_gradient(
        params, x, labels, 1e-4, "relu", indices=indices), blas)
    scale = total / sample
    got, wall, cpu = jit_call(params, x, labels, threads, net.arch)
    print(f"{'deep (scaled)':<13} {np.count_nonzero(x) / x.size:>7.0%}  "
          f"{ref_wall * scale:>8.1f} {ref_cpu * scale:>8.1f}  {wall:>8.1f} {cpu:>8.1f}  "
          f"{ref_wall * scale / wall:>6.2f}x {ref_cpu * scale / cpu:>6.2f}x  "
          f"{max_diff(got, ref):.1e}  {jit_first_layer(x)[1]}; reference timed on {sample} "
          f"of {total:,} parameters ({ref_wall:.1f} s wall) and scaled x{scale:.0f}", flush=True)


def kernels():
    from dense_inputs import layer
    from dense_report import best_times

    from fastgrad.kernels import dense
    from fastgrad.kernels.forward import dense_to_csr

    W, Wp, b = layer(784, 50)
    out = np.empty((100, 50))
    for name in ("mnist", "fashion", "standardised"):
        x = batch_of(name, 100)
        if x is None:
            continue
        csr = dense_to_csr(x)
        kptr, kidx = dense.block_columns(x)
        runs = [lambda x=x: dense.affine_packed(x, Wp, b, out),
                lambda x=x, kp=kptr, ki=kidx: dense.affine_columns(x, kp, ki, Wp, b, out),
                lambda c=csr: dense.sparse_affine(*c, W, Wp, b, out)]
        times = best_times(runs, 5)
        print(f"kernels {name:<13} lit {np.count_nonzero(x) / x.size:.0%}, columns visited "
              f"{kidx.size / ((kptr.size - 1) * 784):.0%}: dense {times[0] * 1e6:.0f} us, "
              f"columns {times[1] * 1e6:.0f} us, sparse {times[2] * 1e6:.0f} us", flush=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", nargs="+", choices=INPUTS, default=list(INPUTS))
    p.add_argument("--threads", type=int, default=config.default_threads())
    p.add_argument("--sample", type=int, default=300,
                   help="parameters the deep reference is timed on (default 300)")
    p.add_argument("--ref-blas", type=int, default=None, metavar="N",
                   help="BLAS threads of the reference (default: unpinned, as users run it; "
                        "1 on a busy machine, where spinning BLAS threads distort it)")
    args = p.parse_args(argv)
    print(f"threads {args.threads}, layer {config.threading_layer()}, load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; reference BLAS threads "
          f"{'unpinned' if args.ref_blas is None else args.ref_blas}; one run each, seconds")
    if "kernels" in args.only:
        kernels()
    print(f"{'input':<13} {'lit':>7}  {'ref wall':>8} {'ref cpu':>8}  {'jit wall':>8} "
          f"{'jit cpu':>8}  {'wall':>7} {'cpu':>7}  max|diff|  jit first layer")
    for name in args.only:
        if name == "kernels":
            continue
        if name == "deep":
            deep(args.threads, args.sample, args.ref_blas)
        else:
            shallow(name, args.threads, args.ref_blas)


if __name__ == "__main__":
    main()
