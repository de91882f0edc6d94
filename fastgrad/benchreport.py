"""A ``fastgrad bench`` run as data: measure, print, save and plot.

:func:`run_benchmark` returns a plain JSON-ready dict (schema
:data:`SCHEMA`); the other functions only read it, so a saved report can be
printed, compared (:mod:`fastgrad.benchcompare`) or plotted later without
measuring again.
"""

from __future__ import annotations

import json
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path

from fastgrad import __version__, benchmark, config, inputs, timing
from fastgrad.checkpoint import atomic_write
from fastgrad.methods import METHODS, check_method

SCHEMA = "fastgrad-bench/2"
#: Older report layouts :func:`load_json` still reads (/1: no ceiling, timed in blocks).
OLD_SCHEMAS = ("fastgrad-bench/1",)
#: Baselines of the ratio columns; always measured.
BASELINES = ("reference", "backprop")

# Rounds policy: (repeats, seconds budget per row, min rounds, seconds per round).
FULL = (5, 20.0, 2, 0.2)
QUICK = (3, 5.0, 1, 0.1)


def _silent(_msg):
    pass


def run_benchmark(methods=None, threads=None, *, hidden=50, batch=100, repeats=None,
                  quick=False, verify_only=False, compile_time=True, data="mnist",
                  data_dir=None, synthetic=False, blas_threads=None, baseline=None,
                  activation="sigmoid", weight_init=None, weight_decay=0.0, sample="auto",
                  phase_profile=True, log=_silent):
    """Validate, then time, every method; return the report dict.

    Parameters
    ----------
    methods : sequence of str, optional
        Registry names (default: all); reference and backprop are always added.
    threads : sequence of int, optional
        Numba thread counts for the compiled methods (default
        :func:`fastgrad.benchmark.thread_counts`); the largest is the one
        compared with the other methods, all of them make the scaling rows.
        They are timed interleaved round by round, next to the ceiling kernel
        (:func:`fastgrad.timing.time_interleaved`).
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
        As for :func:`fastgrad.benchmark.load_workload`.
    sample : 'auto', 'all' or int
        Reference on every entry or on a seeded sample per tensor
        (:func:`fastgrad.benchmark.compute_reference`; 'auto' samples above
        50,000 parameters); a sampled reference's time is scaled to every entry
        and labelled "sampled, scaled".
    phase_profile : bool
        Profile each compiled method's phases at one thread (serial fraction,
        Amdahl projection).
    blas_threads : int or None
        BLAS threads of the NumPy methods (None: the BLAS's own choice); the
        compiled methods always run with one.
    baseline : dict, optional
        A saved report to compare with later: checked by
        :func:`check_comparable` as soon as the workload is loaded, before
        anything is measured.
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
    counts = sorted({inputs.check_threads(t) for t in (threads or benchmark.thread_counts())})
    if repeats is not None and (isinstance(repeats, bool) or int(repeats) < 1):
        raise ValueError(f"repeats must be a positive integer, got {repeats!r}")
    if blas_threads is not None and (isinstance(blas_threads, bool) or int(blas_threads) < 1):
        raise ValueError(f"blas_threads must be a positive integer or None, got {blas_threads!r}")
    start = time.perf_counter()

    def say(msg):
        log(f"[{time.perf_counter() - start:6.1f} s] {msg}")

    workload = benchmark.load_workload(hidden, batch, data=data, data_dir=data_dir,
                                       synthetic=synthetic, activation=activation,
                                       weight_init=weight_init, weight_decay=weight_decay)
    if baseline is not None:
        check_comparable(baseline, workload.as_dict())
    say(f"workload {workload.label()}, {workload.n_params:,} params: {workload.description}")
    say("reference: computing the reference gradient (slow: the book's loop)")
    ref = benchmark.compute_reference(workload, blas_threads, sample)
    say(f"reference: {ref.seconds:.2f} s" + (
        f" on {ref.entries:,} sampled entries, {_fmt_s(ref.full_seconds)} scaled to all "
        f"{ref.n_params:,}" if ref.sampled else ""))
    report = {"schema": SCHEMA, "fastgrad": __version__,
              "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "mode": "verify-only" if verify_only else "quick" if quick else "full",
              "workload": workload.as_dict(), "reference": ref.as_dict(),
              "tolerance": {"numerical": benchmark.TOL, "analytic": benchmark.ANALYTIC_TOL},
              "validation": [], "timings": [], "ceiling": None, "phases": None,
              "startup": None, "notes": []}

    # Validate first, cheapest first, so a broken method fails fast and is never timed.
    checked = {}
    for name in sorted((m for m in names if m != "reference"), key=_cost_rank):
        compiled = METHODS[name].compiled
        for t in (counts if verify_only and compiled else [counts[-1]] if compiled else [None]):
            v = benchmark.validate(name, workload, ref, threads=t, blas_threads=blas_threads)
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
                measured = benchmark.measure_compile(name, hidden=hidden,
                                                     activation=workload.arch.activation)
                report["startup"].append({"method": name, **measured})
    report["environment"] = benchmark.environment()  # after timing: the layer is known then
    report["environment"]["dense_min_density"] = dense_threshold()
    report["ok"] = (all(v["ok"] for v in report["validation"])
                    and all(t["ok"] for t in report["timings"]))
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
        check = benchmark.check_gradient(name, tm.result, ref, workload)
        err, ok = check.max_abs, check.ok
        lo, hi = benchmark.spread(tm.times)
        say(f"time {name}{_at(t)}: median {_fmt_s(tm.median)} ({_fmt_spread((lo, hi))}), "
            f"min {_fmt_s(tm.min)} ({tm.rounds} round{'s' * (tm.rounds != 1)} x {tm.loops}); "
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
            inter = benchmark.time_interleaved(
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
            say(f"time reference{' (' + benchmark.SAMPLED_LABEL + ')' if ref.sampled else ''}")
            tm = benchmark.time_reference(workload, ref, 1 if quick else rep, budget_s=budget,
                                          min_rounds=1 if quick else min_rounds,
                                          blas_threads=blas)
            add(name, None, tm, entry, {"sampled": ref.sampled} if ref.sampled else None)
            continue
        say(f"time {name}")
        add(name, None, benchmark.time_method(name, workload, None, **kw), entry)
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
            f"reference ({benchmark.SAMPLED_LABEL}): the book's loop ran on {ref.entries:,} "
            f"seeded entries ({ref.sample} per tensor) and each round is scaled by "
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
                     "spread": list(benchmark.spread(times)), "rounds": len(times),
                     "times_s": times,
                     "speedup_vs_1_thread": statistics.median(one) / median if one else None})
    return {"kernel": "fastgrad.kernels.ceiling.ceiling_work"
                      f"({timing.CEILING_ITEMS}, {timing.CEILING_INNER})", "rows": rows}


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
        prof = benchmark.profile_phases(name, workload, calls)
        row = {**prof.as_dict(), "calls": calls, "threads": 1,
               "projection_label": PROJECTION_LABEL}
        say(f"phases of {name} at 1 thread ({calls} call{'s' * (calls != 1)}): serial "
            f"fraction {prof.serial_fraction:.1%}; Amdahl projection "
            + ", ".join(f"{n} cores {_fmt_x(v)}" for n, v in prof.projection().items()))
        out.append(row)
    return out


#: What the projected speed-ups are.
PROJECTION_LABEL = ("projection from the measured serial fraction s (Amdahl's law, "
                    "1 / (s + (1 - s) / N)), not a measurement")


# --- text ------------------------------------------------------------------------------


def _fmt_s(s):
    if s is None:
        return "-"
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "us")):
        if s >= scale or unit == "us":
            v = s / scale
            return f"{v:.0f} {unit}" if v >= 100 else f"{v:.1f} {unit}" if v >= 10 \
                else f"{v:.2f} {unit}"
    return "-"  # unreachable


def _fmt_spread(lo_hi):
    if not lo_hi:
        return "-"
    lo, hi = lo_hi
    return f"{lo - 1:+.0%}/{hi - 1:+.0%}"


def _fmt_x(r):
    if r is None:
        return "-"
    return f"{r:,.0f}x" if r >= 100 else f"{r:.1f}x" if r >= 10 else f"{r:.2f}x"


def _verdict(v):
    text = "ok" if v["ok"] else "FAILED"
    if v.get("min_share", 1.0) < 1.0:  # backprop on ReLU: kinks
        text += (f" ({v['share_within']:.1%} within tol, {v['min_share']:.0%} needed: steps "
                 "across a ReLU kink differ from the derivative)")
    return text


def _table(header, rows):
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]

    def line(cells):
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return [line(header), *(line(r) for r in rows)]


def _net_text(w):
    text = f"{'-'.join(map(str, w['layers']))} {w.get('activation', 'sigmoid')}"
    if w.get("weight_init") is not None:
        text += f" (init {w['weight_init']})"
    if w.get("weight_decay"):
        text += f", weight decay {w['weight_decay']:g}"
    return text


def _reference_text(ref):
    if not ref or not ref.get("sampled"):
        return []
    return [f"reference ({ref['label']}): the book's loop on {ref['entries']:,} seeded entries "
            f"({ref['per_tensor']} per tensor), {_fmt_s(ref['measured_s'])}, scaled by "
            f"{ref['n_params']:,}/{ref['entries']:,} to {_fmt_s(ref['full_s'])}; every method "
            "is validated on those entries"]


def _blas_text(env):
    libs = env.get("blas") or []
    if not libs:
        return "BLAS: none found"
    return "BLAS: " + ", ".join(f"{b['internal_api']} {b['version']} ({b['architecture']}, "
                                f"{b['num_threads']} threads)" for b in libs)


def _numpy_blas(report):
    counts = {r["blas_threads"] for r in report["timings"] if r["threads"] is None}
    return ", ".join(map(str, sorted(counts))) if counts else "-"


def format_report(report):
    """The report as the text ``fastgrad bench`` prints."""
    w, env = report["workload"], report["environment"]
    out = [f"fastgrad bench ({report['mode']}): {_net_text(w)}, "
           f"batch {w['batch']}, {w['n_params']:,} params, h={w['h']:g}",
           f"data ({w['data']}): {'SYNTHETIC, ' if w['data'].startswith('synthetic') else ''}"
           f"{w['description']}" + (f"; {w['density']:.1%} of inputs non-zero"
                                   if w.get("density") is not None else ""),
           f"CPU: {env['cpu']} ({env['usable_cpus']} usable of {env['logical_cpus']} logical"
           f"{', ' + ', '.join(env['simd']) if env['simd'] else ''}); load average "
           + (", ".join(f"{x:.2f}" for x in env["load_average"]) if env["load_average"] else "-"),
           f"Numba {env['numba']}: threading layer {env['threading_layer']}, "
           f"{env['numba_threads']} threads max | {_blas_text(env)}"
           + (f" | dense first layer above {env['dense_min_density']:.0%} non-zero inputs"
              if env.get("dense_min_density") is not None else ""),
           f"BLAS threads while timing: 1 for Numba methods, {_numpy_blas(report)} for NumPy "
           "methods (column 'BLAS threads')",
           *_reference_text(report.get("reference")),
           "", "validation against the reference (max |error|; tolerance "
           f"{report['tolerance']['numerical']:g} numerical, "
           f"{report['tolerance']['analytic']:g} sanity bound for analytic backprop):"]
    out += ["  " + line for line in _table(
        ("method", "threads", "max |error|", "tol", "compared", "result"),
        [(v["method"], v["threads"] or "-", f"{v['max_abs_error']:.2e}", f"{v['tol']:g}",
          f"{v['compared']:,}" if v.get("compared") else "-",
          _verdict(v)) for v in report["validation"]])]
    main = [r for r in report["timings"] if r["main"]]
    if main:
        out += ["", "time per gradient (median and min over rounds x loops):"]
        out += ["  " + line for line in _table(
            ("method", "median", "min", "rounds", "speed-up vs reference", "cost vs backprop",
             "threads", "layer", "BLAS threads"),
            [(r["method"] + (f" ({benchmark.SAMPLED_LABEL})" if r.get("sampled") else ""),
              _fmt_s(r["median_s"]), _fmt_s(r["min_s"]),
              f"{r['rounds']}x{r['loops']}", _fmt_x(r["speedup_vs_reference"]),
              _fmt_x(r["cost_vs_backprop"]), r["threads"] or "-", r["threading_layer"] or "-",
              r["blas_threads"] if r["blas_threads"] is not None else "-") for r in main])]
    scaling = [r for r in report["timings"] if r["threads"] is not None]
    if len({r["threads"] for r in scaling}) > 1:
        out += ["", "thread scaling, thread counts interleaved round by round (median, and "
                "the rounds' spread Q1/Q3 vs the median):"]
        ceiling = report.get("ceiling")
        if ceiling:
            cs = ceiling["rows"]
            out += [f"  machine ceiling: {ceiling['kernel']}, a compute-bound prange kernel "
                    "timed next to every sample:",
                    "    " + ", ".join(
                        f"{c['threads']} thread{'s' * (c['threads'] != 1)} "
                        f"{_fmt_s(c['median_s'])} ({_fmt_spread(c['spread'])})"
                        for c in cs) + " = speed-up " + ", ".join(
                        f"{_fmt_x(c['speedup_vs_1_thread'])} on {c['threads']}"
                        for c in cs if c["threads"] != 1 and c["speedup_vs_1_thread"])]
        out += ["  " + line for line in _table(
            ("method", "threads", "median", "spread", "min", "vs 1 thread", "ceiling",
             "efficiency"),
            [(r["method"], r["threads"], _fmt_s(r["median_s"]), _fmt_spread(r.get("spread")),
              _fmt_s(r["min_s"]), _fmt_x(r["speedup_vs_1_thread"]),
              _fmt_x(r.get("ceiling_speedup")),
              f"{r['efficiency']:.2f}" if r.get("efficiency") else "-") for r in scaling])]
        out.append("  efficiency = speed-up vs 1 thread / the ceiling's speed-up in the same "
                   "rounds (1.00: as well as any code scales on this machine now)")
    out += _format_phases(report.get("phases"))
    if report.get("startup"):
        out += ["", f"start-up: fresh process, import fastgrad + first gradient "
                f"({'-'.join(map(str, w['layers']))}, 1 synthetic sample); wait = process "
                "start to first gradient, compile/load = first call minus a second call:"]
        out += ["  " + line for line in _table(
            ("method", "cold wait", "compile", "warm wait", "load from cache", "import"),
            [(s["method"], _fmt_s(s["cold"]["wait_s"]), _fmt_s(s["cold"]["compile_s"]),
              _fmt_s(s["warm"]["wait_s"]), _fmt_s(s["warm"]["compile_s"]),
              _fmt_s(s["warm"]["import_s"])) for s in report["startup"]])]
    out += [""] + [f"note: {n}" for n in report["notes"]]
    out.append(f"{'all methods agree with the reference' if report['ok'] else 'VALIDATION FAILED'}"
               f"; {report.get('wall_s', 0):.0f} s in all")
    return "\n".join(out)


def _format_phases(profiles):
    if not profiles:
        return []
    out = ["", "phases at 1 thread (median per call; serial = outside the parallel regions):"]
    for p in profiles:
        out.append(f"  {p['method']}: {_fmt_s(p['total_s'])} per call over {p['calls']} "
                   f"call{'s' * (p['calls'] != 1)}, serial fraction {p['serial_fraction']:.2%}")
        out.append("    " + "; ".join(f"{ph['name']} {_fmt_s(ph['seconds'])} ({ph['kind']})"
                                      for ph in p["phases"]))
        out.append("    projected speed-up on " + ", ".join(
            f"{n} cores {_fmt_x(v)}" for n, v in p["projection"].items()))
        if p.get("granular_projection"):
            out.append("    with each parallel phase's granularity (whole items per core): "
                       + ", ".join(f"{n} cores {_fmt_x(v)}"
                                   for n, v in p["granular_projection"].items()))
    out.append(f"  projected = {PROJECTION_LABEL}")
    return out


# --- files ------------------------------------------------------------------------


def check_output_path(path, what):
    """Fail before measuring if ``path`` cannot be written later."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise ValueError(f"{what} {path}: is a directory, expected a file name")
    if not p.parent.is_dir():
        raise FileNotFoundError(f"{what} {path}: directory {p.parent} does not exist")
    return p


def save_json(report, path):
    """Write the report as JSON, atomically: an old file is replaced whole or kept."""
    text = (json.dumps(report, indent=2) + "\n").encode()
    atomic_write(check_output_path(path, "--json"), lambda fh: fh.write(text))


def load_json(path):
    """Read a saved report, checking it is one."""
    p = Path(path).expanduser()
    try:
        report = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(report, dict) or report.get("schema") not in (SCHEMA, *OLD_SCHEMAS):
        raise ValueError(f"{path}: not a fastgrad bench report (expected schema {SCHEMA!r})")
    return report


def _workload_identity(w):
    """What makes two workloads the same problem: net, size, step and the data it ran on.

    ``data`` is the data choice when real (``"mnist"``, ``"fashion"``,
    ``"dense"``) and ``"synthetic"`` (MNIST-like), ``"synthetic fashion"`` or
    ``"synthetic dense"`` for the seeded stand-ins (whose pixels also depend on
    ``seed``). Reports older than the network flags lack the net's fields:
    they were the sigmoid net at its default initialisation, without decay.
    """
    return (list(w["layers"]), w["batch"], w["h"], w.get("data"), w.get("seed"),
            w.get("activation", "sigmoid"), w.get("weight_decay", 0.0), w.get("weight_init"))


def _describe_workload(w):
    data = w.get("data")
    kind = ("synthetic digits" if data == "synthetic" else f"{data} data"
            if data and data.startswith("synthetic") else f"real {data} test images"
            if data else "unrecorded data")
    return (f"{_net_text(w)} batch {w['batch']} h={w['h']:g} on {kind} "
            f"(seed {w.get('seed')})")


def check_comparable(baseline, workload):
    """Raise ValueError unless ``baseline`` measured the same workload as ``workload``.

    Same layers, activation, initialisation, weight decay, batch, step ``h``,
    seed and data (real MNIST, Fashion-MNIST or dense standardised images, or
    synthetic ones), given as a report's ``workload`` dict.
    """
    b = baseline["workload"]
    if _workload_identity(b) != _workload_identity(workload):
        raise ValueError(f"baseline measured {_describe_workload(b)}, this run "
                         f"{_describe_workload(workload)}: not comparable")


def plot(report, path):
    """Save a PNG of the method comparison and thread scaling; False without matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        return False
    fig = Figure(figsize=(11, 4.5))
    FigureCanvasAgg(fig)  # Agg, without touching pyplot's global backend
    left, right = fig.subplots(1, 2)
    main = [r for r in report["timings"] if r["main"]]
    left.bar([r["method"] for r in main], [r["median_s"] for r in main], color="tab:blue")
    left.set_yscale("log")
    left.set_ylabel("seconds per gradient (median)")
    left.set_title("methods")
    for i, r in enumerate(main):
        left.annotate(f"{_fmt_s(r['median_s'])}\n{_fmt_x(r['speedup_vs_reference'])}",
                      (i, r["median_s"]), ha="center", va="bottom", fontsize=8)
    top, ticks = 1, {1}
    for name in dict.fromkeys(r["method"] for r in report["timings"] if r["threads"]):
        rows = [r for r in report["timings"] if r["method"] == name and r["speedup_vs_1_thread"]]
        if len(rows) > 1:
            xs = [r["threads"] for r in rows]
            right.plot(xs, [r["speedup_vs_1_thread"] for r in rows], "o-", label=name)
            top = max(top, *xs)
            ticks.update(xs)
    ceiling = [c for c in (report.get("ceiling") or {}).get("rows", [])
               if c["speedup_vs_1_thread"]]
    if len(ceiling) > 1:
        right.plot([c["threads"] for c in ceiling], [c["speedup_vs_1_thread"] for c in ceiling],
                   "s:", color="grey", label="machine ceiling (same rounds)")
    right.plot([1, top], [1, top], "k--", lw=0.8, label="ideal")
    right.set_xticks(sorted(ticks))
    right.set_xlabel("Numba threads")
    right.set_ylabel("speed-up vs 1 thread")
    right.set_title("thread scaling")
    right.legend()
    w = report["workload"]
    fig.suptitle(f"fastgrad {_net_text(w)}, batch {w['batch']} "
                 f"({w['data']}) on {report['environment']['cpu']}")
    fig.tight_layout()
    fig.savefig(check_output_path(path, "--plot"), dpi=120)
    return True
