"""One ``fastgrad bench`` run: validate every method, then time it, as a JSON-ready report.

:func:`run_benchmark` loads the workload, computes the reference (full or
sampled), validates every method cheapest first (a method that disagrees is
never timed), times the rest in rounds (compiled methods at every thread count
interleaved with the ceiling kernel), profiles the compiled methods' phases at
one thread and measures their start-up in fresh processes. Every number in the
report is measured, except a sampled reference's time, which is scaled and
labelled so. The report's layout is :data:`fastgrad.bench.report.SCHEMA`.
"""

from __future__ import annotations

import statistics
import time
from datetime import datetime, timezone

from fastgrad import __version__, config, inputs
from fastgrad.bench.cluster import add_ratios, cluster_report
from fastgrad.bench.machine import environment
from fastgrad.bench.report import PROJECTION_LABEL, SCHEMA, check_comparable, format_spread
from fastgrad.bench.startup import measure_compile
from fastgrad.bench.timing import (
    CEILING_INNER,
    CEILING_ITEMS,
    profile_phases,
    spread,
    thread_counts,
    time_interleaved,
    time_method,
    time_reference,
)
from fastgrad.bench.validation import (
    ANALYTIC_TOL,
    SAMPLED_LABEL,
    TOL,
    check_gradient,
    compute_reference,
    validate,
)
from fastgrad.bench.workload import load_conv_workload, load_workload
from fastgrad.methods import METHODS, check_method
from fastgrad.units import format_ratio, format_seconds
from fastgrad.validate_conv import jit_fits

#: Baselines of the ratio columns; always measured.
BASELINES = ("reference", "backprop")

#: The convnet ``jit`` is timed on when the user's is too big for it (under 20,000
#: parameters at the book's 5x5 filters): 4 filters, hidden width 10.
SMALL_CONVNET = {"hidden": 10, "conv_param": {"filter_num": 4, "filter_size": 5}}

# Rounds policy: (repeats, seconds budget per row, min rounds, seconds per round).
FULL = (5, 20.0, 2, 0.2)
QUICK = (3, 5.0, 1, 0.1)


def _silent(_msg):
    pass


def run_benchmark(methods=None, threads=None, *, hidden=50, batch=100, repeats=None,
                  quick=False, verify_only=False, compile_time=True, data="mnist",
                  data_dir=None, synthetic=False, blas_threads=None, baseline=None,
                  activation="sigmoid", weight_init=None, weight_decay=0.0, sample="auto",
                  phase_profile=True, net="mlp", conv_param=None, client=None, cluster=None,
                  log=_silent):
    """Validate, then time, every method; return the report dict.

    Parameters
    ----------
    methods : sequence of str, optional
        Registry names (default: all); reference and backprop are always added.
    threads : sequence of int, optional
        Numba thread counts for the compiled methods (default
        :func:`fastgrad.bench.timing.thread_counts`); the largest is the one
        compared with the other methods, all of them make the scaling rows.
        They are timed interleaved round by round, next to the ceiling kernel
        (:func:`fastgrad.bench.timing.time_interleaved`).
    hidden : int or list of int
        Hidden width(s) of the 784-...-10 net.
    batch : int
        Number of test images.
    repeats : int, optional
        Exact number of timed rounds per row (default: up to 5, within a time
        budget per row). The reference is timed once with ``quick``.
    quick : bool
        Fewer rounds; the reference's validation run is its only timing.
    verify_only : bool
        Validate every method at every thread count; time nothing.
    compile_time : bool
        Measure cold and warm start-up of the compiled methods in subprocesses.
    data, data_dir, synthetic, activation, weight_init, weight_decay
        As for :func:`fastgrad.bench.workload.load_workload`.
    sample : 'auto', 'all' or int
        Reference on every entry or on a seeded sample per tensor
        (:func:`fastgrad.bench.validation.compute_reference`; 'auto' samples
        above 50,000 parameters); a sampled reference's time is scaled to every
        entry and labelled "sampled, scaled".
    phase_profile : bool
        Profile each compiled method's phases at one thread (serial fraction,
        Amdahl projection).
    net : {"mlp", "convnet"}
        The fully connected net of ``hidden``, or chapter 7's SimpleConvNet
        (hidden width ``hidden``, convolution ``conv_param``; its reference
        runs on every conv parameter and ``sample`` entries of each other
        tensor, scaled to every parameter). ``jit`` cannot be sampled: on a
        convnet above :data:`fastgrad.validate_conv.JIT_MAX_PARAMS` it is
        measured on :data:`SMALL_CONVNET` instead, as the report's
        ``small_net`` (a whole report of that net); start-up is not measured.
    blas_threads : int or None
        BLAS threads of the NumPy methods (None: the BLAS's own choice); the
        compiled methods always run with one.
    client : dask.distributed.Client, optional
        Also time the methods of ``methods`` that a cluster splits by chunks
        (:data:`fastgrad.bench.cluster.CLUSTER_METHODS`: the reference and
        ``jit``) over this cluster, whole gradients validated like the others,
        as the report's ``cluster`` (:func:`fastgrad.bench.cluster.cluster_report`);
        fully connected nets only.
    cluster : str, optional
        What the cluster was asked as (``local:N`` or the address), for the report.
    baseline : dict, optional
        A saved report to compare with later: checked by
        :func:`fastgrad.bench.report.check_comparable` as soon as the workload
        is loaded, before anything is measured.
    log : callable
        Receives one progress line at a time.

    Returns
    -------
    dict
        ``ok`` is False if any method disagreed with the reference. Compiled
        rows carry ``ceiling_times_s`` (the ceiling kernel, same rounds),
        ``ceiling_speedup``, ``efficiency`` and ``efficiency_rounds``;
        ``ceiling`` sums the ceiling kernel up per thread count.
    """
    names = [check_method(m).name for m in (methods or METHODS)]
    names = [m for m in METHODS if m in names or m in BASELINES]  # registry order
    counts = sorted({inputs.check_threads(t) for t in (threads or thread_counts())})
    if repeats is not None and (isinstance(repeats, bool) or int(repeats) < 1):
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}")
    if blas_threads is not None and (isinstance(blas_threads, bool) or int(blas_threads) < 1):
        raise ValueError(f"blas_threads must be a positive integer or None, got {blas_threads!r}")
    if client is not None and net == "convnet":
        raise ValueError("a cluster times the fully connected net's methods: the convnet's "
                         "full reference takes hours (fastgrad check --net convnet --cluster "
                         "computes it)")
    start = time.perf_counter()

    def say(msg):
        log(f"[{time.perf_counter() - start:6.1f} s] {msg}")

    small_net = None
    if net == "convnet":
        workload = load_conv_workload(hidden, batch, conv_param, data=data, data_dir=data_dir,
                                      synthetic=synthetic)
        compile_time = False  # the start-up subprocesses build the fully connected net
        if "jit" in names and not jit_fits(workload.params):
            names.remove("jit")
            small_net = run_benchmark(
                ["jit"], threads, hidden=SMALL_CONVNET["hidden"], batch=batch,
                repeats=repeats, quick=quick, verify_only=verify_only, compile_time=False,
                data=data, data_dir=data_dir, synthetic=synthetic, blas_threads=blas_threads,
                sample=sample, phase_profile=False, net="convnet",
                conv_param={**SMALL_CONVNET["conv_param"], "pad": workload.conv.pad,
                            "stride": workload.conv.stride}, log=log)
    else:
        workload = load_workload(hidden, batch, data=data, data_dir=data_dir,
                                 synthetic=synthetic, activation=activation,
                                 weight_init=weight_init, weight_decay=weight_decay)
    if baseline is not None:
        check_comparable(baseline, workload.as_dict())
    say(f"workload {workload.label()}, {workload.n_params:,} params: {workload.description}")
    say("reference: computing the reference gradient (slow: the book's loop)")
    ref = compute_reference(workload, blas_threads, sample)
    say(f"reference: {ref.seconds:.2f} s" + (
        f" on {ref.entries:,} sampled entries, {format_seconds(ref.full_seconds)} scaled to "
        f"all {ref.n_params:,}" if ref.sampled else ""))
    report = {"schema": SCHEMA, "fastgrad": __version__,
              "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "mode": "verify-only" if verify_only else "quick" if quick else "full",
              "workload": workload.as_dict(), "reference": ref.as_dict(),
              "tolerance": {"numerical": TOL, "analytic": ANALYTIC_TOL},
              "validation": [], "timings": [], "ceiling": None, "phases": None,
              "startup": None, "notes": []}

    if client is not None:  # right after the reference: a cluster that fails, fails early
        rep, budget, min_rounds, _ = QUICK if quick else FULL
        if repeats is not None or verify_only:
            rep = 1 if verify_only else int(repeats)
            budget, min_rounds = None, rep
        report["cluster"] = cluster_report(client, cluster, names, workload, ref, repeats=rep,
                                           budget_s=budget, min_rounds=min_rounds, say=say)

    # Validate first, cheapest first, so a broken method fails fast and is never timed.
    checked = {}
    for name in sorted((m for m in names if m != "reference"), key=_cost_rank):
        compiled = METHODS[name].compiled
        for t in (counts if verify_only and compiled else [counts[-1]] if compiled else [None]):
            v = validate(name, workload, ref, threads=t, blas_threads=blas_threads)
            report["validation"].append(v.as_dict())
            say(f"validate {name}{_at(t)}: max |error| {v.max_abs_error:.2e} "
                f"(tol {v.tol:.0e}) {'ok' if v.ok else 'FAILED'}")
            checked.setdefault(name, v.ok)
            checked[name] = checked[name] and v.ok
    if not verify_only:
        _time_all(report, names, counts, workload, ref, checked, quick, repeats,
                  blas_threads, say)
        if phase_profile:
            report["phases"] = profile_all(report, workload, quick, repeats, say)
        if compile_time:
            report["startup"] = []
            for name in (m for m in names if METHODS[m].compiled):
                say(f"start-up of {name}: cold (empty Numba cache), then warm, in subprocesses")
                measured = measure_compile(name, hidden=hidden,
                                           activation=workload.arch.activation)
                report["startup"].append({"method": name, **measured})
    report["environment"] = environment()  # after timing: the layer is known then
    report["environment"]["dense_min_density"] = dense_threshold()
    report["ok"] = (all(v["ok"] for v in report["validation"])
                    and all(t["ok"] for t in report["timings"]))
    if report.get("cluster"):
        add_ratios(report["cluster"], report["timings"])
        report["ok"] = report["ok"] and all(t["ok"] for t in report["cluster"]["timings"])
    if small_net is not None:
        report["small_net"] = small_net
        report["ok"] = report["ok"] and small_net["ok"]
        report["notes"].append(
            f"jit runs a full forward pass per parameter ({workload.n_params:,} here: hours) "
            "and cannot be sampled: it is measured on the small net of 'small_net' "
            f"({small_net['workload']['n_params']:,} parameters), with its own reference "
            "and backprop")
    report["wall_s"] = time.perf_counter() - start
    return report


def dense_threshold():
    """Input density above which the compiled methods take the dense first layer."""
    from fastgrad.kernels.dense import DENSE_MIN_DENSITY

    return DENSE_MIN_DENSITY


def _cost_rank(name):
    return {"backprop": 0, "incremental": 1}.get(name, 2)


def _at(threads):
    return "" if threads is None else f" ({threads} thread{'s' * (threads != 1)})"


def _time_all(report, names, counts, workload, ref, checked, quick, repeats, blas, say):
    rep, budget, min_rounds, round_s = QUICK if quick else FULL
    if repeats is not None:
        rep, budget, min_rounds = int(repeats), None, int(repeats)
    layer = config.threading_layer
    rows, ceiling = [], {t: [] for t in counts}

    def add(name, t, tm, entry, extra=None):
        check = check_gradient(name, tm.result, ref, workload)
        err, ok = check.max_abs, check.ok
        lo, hi = spread(tm.times)
        say(f"time {name}{_at(t)}: median {format_seconds(tm.median)} "
            f"({format_spread((lo, hi))}), min {format_seconds(tm.min)} ({tm.rounds} "
            f"round{'s' * (tm.rounds != 1)} x {tm.loops}); "
            f"result max |error| {err:.1e}{'' if ok else ' FAILED'}")
        rows.append({"method": name, "threads": t, "blas_threads": tm.blas_threads,
                     "threading_layer": layer() if entry.compiled else None,
                     "median_s": tm.median, "min_s": tm.min, "spread": [lo, hi],
                     "rounds": tm.rounds, "loops": tm.loops, "times_s": tm.times,
                     "max_abs_error": err, "ok": ok,
                     "main": t is None or t == counts[-1], **(extra or {})})

    for name in sorted(names, key=_cost_rank):
        entry = METHODS[name]
        if not checked.get(name, True):
            report["notes"].append(f"{name} failed validation and was not timed")
            continue
        # validation already loaded the kernels: a slow method needs no warm-up
        slow = max((v["seconds"] for v in report["validation"] if v["method"] == name),
                   default=0.0) > 1.0
        kw = {"repeats": rep, "min_rounds": min_rounds, "round_s": round_s,
              "warmup": 0 if slow else 1}
        if entry.compiled:
            say(f"time {name} at {', '.join(map(str, counts))} threads, interleaved "
                "round by round with the ceiling kernel")
            inter = time_interleaved(
                name, workload, counts, budget_s=None if budget is None else budget * len(counts),
                **kw)
            for t in counts:
                c = inter.ceiling[t]
                ceiling[t] += c.times
                add(name, t, inter.timings[t], entry,
                    {"ceiling_times_s": c.times, "ceiling_loops": c.loops})
            continue
        kw.update(budget_s=budget, blas_threads=blas)
        if name == "reference":
            # its validation run is round one; --quick times the reference only then
            say(f"time reference{' (' + SAMPLED_LABEL + ')' if ref.sampled else ''}")
            tm = time_reference(workload, ref, 1 if quick else rep, budget_s=budget,
                                min_rounds=1 if quick else min_rounds, blas_threads=blas)
            add(name, None, tm, entry, {"sampled": ref.sampled} if ref.sampled else None)
            continue
        say(f"time {name}")
        add(name, None, time_method(name, workload, None, **kw), entry)
    main = {r["method"]: r["median_s"] for r in rows if r["main"]}
    for r in rows:  # backprop is missing only if it failed validation
        r["speedup_vs_reference"] = main["reference"] / r["median_s"]
        r["cost_vs_backprop"] = r["median_s"] / main["backprop"] if "backprop" in main else None
        _add_scaling(r, next((o for o in rows if o["method"] == r["method"]
                              and o["threads"] == 1), None))
    report["timings"] = sorted(rows, key=lambda r: (list(METHODS).index(r["method"]),
                                                    r["threads"] or 0))
    report["ceiling"] = _ceiling_summary(ceiling) if any(ceiling.values()) else None
    if ref.sampled:
        report["notes"].append(
            f"reference ({SAMPLED_LABEL}): the book's loop ran on {ref.entries:,} "
            f"seeded entries ("
            + ("every conv parameter and " if workload.net == "convnet" else "")
            + f"{ref.sample} per {'other ' * (workload.net == 'convnet')}tensor) and "
            "each round is scaled by "
            f"{ref.n_params:,} / {ref.entries:,} (every entry costs the same two forward "
            "passes; --sample all runs the full loop, which takes minutes on big nets). "
            "Other methods are validated on those entries")
    report["notes"].append(
        "timings call each registry function on pre-validated inputs; every value is "
        "measured" + (", none extrapolated" if not ref.sampled else
                      " except the reference's (sampled, scaled)"))
    if report["ceiling"]:
        report["notes"].append(
            "thread counts are interleaved round by round (1, 2, 1, 2, ...), each sample "
            "next to one of the ceiling kernel (a compute-bound prange loop) at the same "
            "count; efficiency = speed-up vs 1 thread / the ceiling's speed-up in the same "
            "rounds")


def _add_scaling(row, one):
    """Speed-up vs 1 thread, and the efficiency against the ceiling of the same rounds."""
    row["speedup_vs_1_thread"] = row["ceiling_speedup"] = row["efficiency"] = None
    row["efficiency_rounds"] = None
    if one is None or row["threads"] is None:
        return
    row["speedup_vs_1_thread"] = one["median_s"] / row["median_s"]
    c1, cn = one.get("ceiling_times_s"), row.get("ceiling_times_s")
    if not c1 or not cn:
        return
    row["ceiling_speedup"] = statistics.median(c1) / statistics.median(cn)
    row["efficiency"] = row["speedup_vs_1_thread"] / row["ceiling_speedup"]
    # per round: each round's four samples were taken within seconds of each other
    row["efficiency_rounds"] = [(a / b) / (ca / cb) for a, b, ca, cb in
                                zip(one["times_s"], row["times_s"], c1, cn, strict=True)]


def _ceiling_summary(ceiling):
    """The ceiling kernel over all rounds of all compiled methods, per thread count."""
    one = ceiling.get(1)
    rows = []
    for t, times in sorted(ceiling.items()):
        median = statistics.median(times)
        rows.append({"threads": t, "median_s": median, "min_s": min(times),
                     "spread": list(spread(times)), "rounds": len(times),
                     "times_s": times,
                     "speedup_vs_1_thread": statistics.median(one) / median if one else None})
    return {"kernel": "fastgrad.kernels.ceiling.ceiling_work"
                      f"({CEILING_ITEMS}, {CEILING_INNER})", "rows": rows}


def profile_all(report, workload, quick, repeats, say):
    """Phase profile at one thread of every timed compiled method, as report rows.

    Each row holds the median seconds per phase, the serial fraction and the
    Amdahl projection from it (:mod:`fastgrad.phases`), labelled a projection.
    """
    rep, budget, _, _ = QUICK if quick else FULL
    if repeats is not None:
        rep, budget = int(repeats), None
    out = []
    for name in dict.fromkeys(r["method"] for r in report["timings"] if r["threads"]):
        # a 1-thread call costs about threads x the median at that count
        est = min(r["median_s"] * r["threads"] for r in report["timings"]
                  if r["method"] == name and r["threads"])
        calls = rep if budget is None else max(1, min(rep, int(budget // max(est, 1e-9))))
        prof = profile_phases(name, workload, calls)
        row = {**prof.as_dict(), "calls": calls, "threads": 1,
               "projection_label": PROJECTION_LABEL}
        say(f"phases of {name} at 1 thread ({calls} call{'s' * (calls != 1)}): serial "
            f"fraction {prof.serial_fraction:.1%}; Amdahl projection "
            + ", ".join(f"{n} cores {format_ratio(v)}" for n, v in prof.projection().items()))
        out.append(row)
    return out
