"""``fastgrad bench --targets``: the targets table's figures, measured in one run and judged.

The figures (:data:`FIGURES`), on real MNIST test digits when found (labelled
synthetic otherwise), float64, h = 1e-4: 784-[100]x4-10 ReLU (He), batch 128,
incremental vs the book's loop and vs backprop; the same net with sigmoid
(Xavier), incremental vs the loop; the ReLU net, jit vs the loop at a smaller
batch by default (a full jit gradient at batch 128 takes minutes; both sides
run at that batch and the row says so); 784-50-10 sigmoid, incremental at one
thread against a saved baseline report, normalised by the anchors of each run
as ``fastgrad bench --compare`` does; with ``training``, the optimizer
comparison (:mod:`fastgrad.bench.training`). On the deep nets the book's loop
runs on a seeded sample of entries and its time is scaled to every entry
("sampled, scaled"); every method is validated on those entries before it is
timed, and one that disagrees is not timed. Each figure is judged against a
targets file (:mod:`fastgrad.bench.targets`); the file's targets this run does
not measure are listed with what measures them.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

from fastgrad import __version__, config, inputs
from fastgrad.bench.compare import compare
from fastgrad.bench.machine import environment
from fastgrad.bench.report import PROJECTION_LABEL, load_json, table
from fastgrad.bench.targets import (
    MISSED,
    Targets,
    goal_text,
    judge_row,
    load_targets,
    thresholds_text,
)
from fastgrad.bench.timing import profile_phases, spread, time_method, time_reference
from fastgrad.bench.training import ACCURACY_GAP, MINUTES, run_comparison
from fastgrad.bench.validation import SAMPLED_LABEL, compute_reference, validate
from fastgrad.bench.workload import load_workload
from fastgrad.methods import check_method
from fastgrad.units import format_ratio, format_seconds

#: /2: thresholds by level, read from a targets file.
SCHEMA = "fastgrad-bench-targets/2"
#: The deep net of the table and its batch.
DEEP = (100, 100, 100, 100)
DEEP_BATCH = 128
#: Default batch of the jit row (see the module docstring).
JIT_BATCH = 2
#: The standard workload (hidden width, batch) of the baseline row.
STANDARD = (50, 100)
#: (rounds, seconds budget per method) when timing.
FULL = (5, 20.0)
QUICK = (2, 5.0)
#: The figures a targets run measures, by the id a targets file gives them.
FIGURES = {
    "deep-relu-incremental-speedup": "deep ReLU net: the book's loop time / incremental time",
    "deep-relu-incremental-cost": "deep ReLU net: incremental time / backprop time",
    "deep-sigmoid-incremental-speedup": "deep sigmoid net: the loop time / incremental time",
    "deep-sigmoid-incremental-cost": "deep sigmoid net: incremental time / backprop time",
    "deep-relu-jit-speedup": "deep ReLU net, small batch: the loop time / jit time",
    "incremental-vs-baseline": "784-50-10 incremental at 1 thread, now / the saved baseline "
                               "(each normalised by its run's anchors)",
    MINUTES: "the optimizer comparison, incremental (with training)",
    ACCURACY_GAP: "its worst accuracy gap to backprop (with training)",
}


def _silent(_msg):
    pass


def _warm(activation, depth, say):
    """Load every compiled kernel of this net shape once, so no timing includes it."""
    tiny = load_workload([3] * depth, 2, synthetic=True, activation=activation)
    for name in ("jit", "incremental"):
        say(f"loading the {name} kernels ({activation}, {depth} hidden layer"
            f"{'s' * (depth != 1)})")
        validate(name, tiny, compute_reference(tiny), threads=1)


def _row_of(tm):
    lo, hi = spread(tm.times)
    return {"method": tm.method, "threads": tm.threads, "blas_threads": tm.blas_threads,
            "median_s": tm.median, "min_s": tm.min, "rounds": tm.rounds, "loops": tm.loops,
            "times_s": tm.times, "spread": [lo, hi]}


def measure(workload, methods, threads, *, rounds, budget, blas_threads=None, say=_silent):
    """Validate then time ``methods`` (and the reference) on ``workload``.

    Compiled methods run at ``threads`` Numba threads (a dict ``{method:
    threads}`` or one count); NumPy methods with ``blas_threads``.

    Returns
    -------
    dict
        ``workload``, ``reference`` (how it ran), ``validation`` (one per
        method) and ``timings`` (method -> row); a method that fails
        validation is not timed.
    """
    say(f"{workload.label()}, {workload.n_params:,} params: reference "
        "(the book's loop; sampled on big nets)")
    ref = compute_reference(workload, blas_threads)
    out = {"workload": workload.as_dict(), "reference": ref.as_dict(), "validation": [],
           "timings": {}}
    tm = time_reference(workload, ref, rounds, budget_s=budget, blas_threads=blas_threads)
    out["timings"]["reference"] = {**_row_of(tm), "sampled": ref.sampled}
    for name in methods:
        t = threads.get(name) if isinstance(threads, dict) else threads
        compiled = check_method(name).compiled
        v = validate(name, workload, ref, threads=t if compiled else None,
                     blas_threads=blas_threads)
        out["validation"].append(v.as_dict())
        say(f"  validate {name}: max |error| {v.max_abs_error:.2e} on {v.comparison.compared:,} "
            f"entries (tol {v.tol:g}) {'ok' if v.ok else 'FAILED'}")
        if not v.ok:
            continue
        slow = v.seconds > 1.0  # its validation run (kernels already loaded) is round one
        tm = time_method(name, workload, t if compiled else None, rounds, budget_s=budget,
                         first_round=(v.seconds, v.result) if slow else None,
                         blas_threads=None if compiled else blas_threads)
        out["timings"][name] = _row_of(tm)
        say(f"  time {name}: median {format_seconds(tm.median)} ({tm.rounds} rounds)")
    say(f"  reference: median {format_seconds(out['timings']['reference']['median_s'])}"
        + (f" ({SAMPLED_LABEL})" if ref.sampled else ""))
    return out


def _ratio_row(figure_id, name, part, a, b, note=""):
    """A figure ``a / b`` of two timed methods in ``part`` (unjudged)."""
    times = part["timings"]
    if a not in times or b not in times:
        return {"id": figure_id, "workload": name, "figure": None,
                "note": f"{a if a not in times else b} failed validation"}
    return {"id": figure_id, "workload": name,
            "figure": times[a]["median_s"] / times[b]["median_s"], "note": note}


def _baseline_row(part, baseline_path):
    """784-50-10: incremental at one thread vs the baseline, normalised by the anchors."""
    row = {"id": "incremental-vs-baseline",
           "workload": "784-50-10 sigmoid (the standard workload): incremental 1 thread vs "
                       "the saved baseline (time / same-run anchors, now / baseline)",
           "figure": None, "baseline": str(baseline_path) if baseline_path else None}
    if baseline_path is None:
        row["note"] = "no baseline: pass --baseline BASELINE.json"
        return row
    baseline = load_json(baseline_path)
    report = {"workload": part["workload"], "environment": part.get("environment"),
              "timings": [
        {**r, "threads": r["threads"] if r["method"] in ("jit", "incremental") else None}
        for r in part["timings"].values()]}
    try:
        comparison = compare(report, baseline)
    except ValueError as exc:
        row["note"] = str(exc)
        return row
    found = [r for r in comparison["rows"]
             if r["method"] == "incremental" and r["threads"] == 1]
    if not found:
        row["note"] = "the baseline has no 1-thread incremental row"
        return row
    r = found[0]
    row.update(figure=r["ratio"], interval=[r["low"], r["high"]], anchors=comparison["anchors"],
               uncertain=any(n.startswith("WARNING") for n in comparison["notes"]))
    row["note"] = "; ".join([
        f"ratio {r['ratio']:.2f}x, interval {r['low']:.2f}-{r['high']:.2f} from the rounds' "
        f"spread; absolute {format_seconds(r['now'])} now vs {format_seconds(r['baseline'])} "
        f"then ({r['now'] / r['baseline']:.2f}x)",
        *(f"different {what} (baseline {old}, now {new})"
          for what, old, new in comparison["machine"]),
        *comparison["notes"]])
    return row


def run_targets(targets, threads=None, *, jit_batch=None, baseline=None, quick=False,
                repeats=None, data_dir=None, synthetic=False, blas_threads=None, training=False,
                log=_silent):
    """Measure every figure of the targets table and judge it against ``targets``.

    Parameters
    ----------
    targets : Targets or path
        The thresholds (:func:`load_targets`), read before anything is measured.
    threads : int, optional
        Numba threads of jit and incremental (default: all cores).
    jit_batch : int, optional
        Batch of the jit row (default :data:`JIT_BATCH`).
    baseline : path, optional
        Saved ``fastgrad bench --json`` report of 784-50-10 for the baseline row.
    quick : bool
        Fewer rounds.
    repeats : int, optional
        Exact rounds per method.
    data_dir, synthetic, blas_threads
        As for :func:`fastgrad.bench.run.run_benchmark`.
    training : bool
        Also train the optimizer comparison (:mod:`fastgrad.bench.training`,
        about a quarter of an hour on 2 cores) for its two figures.
    log : callable
        Receives one progress line at a time.

    Returns
    -------
    dict
        ``rows`` (one per measured figure, judged), ``not_measured_here`` (the
        file's other targets), ``parts`` (what was timed), ``phases``, ``ok``.
    """
    if not isinstance(targets, Targets):
        targets = load_targets(targets)
    threads = inputs.check_threads(threads)
    jit_batch = JIT_BATCH if jit_batch is None else int(jit_batch)
    if jit_batch < 1:
        raise ValueError(f"jit_batch must be at least 1, got {jit_batch}")
    rounds, budget = QUICK if quick else FULL
    if repeats is not None:
        rounds, budget = int(repeats), None
    if baseline is not None:
        load_json(baseline)  # a bad file fails now, not after minutes
    start = time.perf_counter()

    def say(msg):
        log(f"[{time.perf_counter() - start:6.1f} s] {msg}")

    kw = {"rounds": rounds, "budget": budget, "blas_threads": blas_threads, "say": say}
    load = {"data_dir": data_dir, "synthetic": synthetic}
    parts = {}
    _warm("relu", len(DEEP), say)
    relu = load_workload(list(DEEP), DEEP_BATCH, activation="relu", weight_init="relu", **load)
    parts["relu"] = measure(relu, ["backprop", "incremental"], threads, **kw)
    say("phases of the deep incremental at 1 thread")
    prof = profile_phases("incremental", relu, 1 if quick else 3)
    _warm("sigmoid", len(DEEP), say)
    sigmoid = load_workload(list(DEEP), DEEP_BATCH, activation="sigmoid",
                            weight_init="sigmoid", **load)
    parts["sigmoid"] = measure(sigmoid, ["backprop", "incremental"], threads, **kw)
    small = load_workload(list(DEEP), jit_batch, activation="relu", weight_init="relu", **load)
    parts["relu_jit"] = measure(small, ["jit"], threads, **kw)
    _warm("sigmoid", 1, say)
    standard = load_workload(STANDARD[0], STANDARD[1], **load)
    parts["standard"] = measure(standard, ["backprop", "incremental"], 1, **kw)
    parts["standard"]["environment"] = environment()

    net = f"784-[{DEEP[0]}]x{len(DEEP)}-10"
    deep = f"{net} ReLU (He), batch {DEEP_BATCH}"
    jit_note = ("" if jit_batch == DEEP_BATCH else
                f"measured at batch {jit_batch}, not {DEEP_BATCH}: a full jit gradient of this "
                f"net at {DEEP_BATCH} takes minutes (--jit-batch {DEEP_BATCH} measures it); both "
                "sides at that batch, where NumPy's per-call overhead weighs far more than at "
                f"{DEEP_BATCH}: this ratio overstates jit (on a 2-core VM: 10x at batch 2, "
                "1.2x at 128)")
    rows = [
        _ratio_row("deep-relu-incremental-speedup",
                   f"{deep}: incremental vs the book's loop ({SAMPLED_LABEL})",
                   parts["relu"], "reference", "incremental"),
        _ratio_row("deep-relu-incremental-cost",
                   f"{deep}: incremental vs backprop (cost, lower is better)", parts["relu"],
                   "incremental", "backprop"),
        _ratio_row("deep-sigmoid-incremental-speedup",
                   f"{net} sigmoid (Xavier), batch {DEEP_BATCH}: incremental vs the book's "
                   f"loop ({SAMPLED_LABEL})", parts["sigmoid"], "reference", "incremental"),
        _ratio_row("deep-sigmoid-incremental-cost",
                   f"{net} sigmoid (Xavier), batch {DEEP_BATCH}: incremental vs backprop (cost, "
                   "lower is better)", parts["sigmoid"], "incremental", "backprop"),
        _ratio_row("deep-relu-jit-speedup",
                   f"{net} ReLU, batch {jit_batch}: jit vs the book's loop ({SAMPLED_LABEL})",
                   parts["relu_jit"], "reference", "jit", jit_note),
        _baseline_row(parts["standard"], baseline),
    ]
    if training:
        rows += run_comparison(threads=threads, say=say)[0]
    rows = [judge_row(r, targets) for r in rows]
    for r in rows:
        if r.pop("uncertain", False) and r["met"] not in ("no target", "not measured"):
            r["met"] += " (uncertain: see the note)"
    measured = {r["id"] for r in rows}
    ok = all(v["ok"] for p in parts.values() for v in p["validation"])
    return {"schema": SCHEMA, "fastgrad": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "targets_file": targets.path, "levels": list(targets.levels),
            "threads": threads, "blas_threads": blas_threads,
            "layer": config.threading_layer(), "rows": rows,
            "not_measured_here": [_unmeasured(t, targets.levels)
                                  for name, t in targets.targets.items() if name not in measured],
            "parts": parts,
            "phases": {**prof.as_dict(), "workload": relu.label(),
                       "projection_label": PROJECTION_LABEL},
            "environment": environment(), "ok": ok,
            "wall_s": time.perf_counter() - start}


def _unmeasured(target, levels):
    """One line for a target this run did not measure: what, its thresholds, what measures it."""
    return (f"{target.what}: {thresholds_text(target, levels)}"
            + (f" (measured by {target.by})" if target.by else ""))


# --- text -----------------------------------------------------------------------------


def format_targets(report):
    """The targets report as text: one row per figure, its thresholds and the level it met."""
    env, levels = report["environment"], report["levels"]
    blas = report.get("blas_threads")
    out = [f"fastgrad bench --targets: {report['threads']} Numba thread"
           f"{'s' * (report['threads'] != 1)} (layer {report['layer']}), NumPy methods with "
           f"{blas if blas else 'the BLAS default'} BLAS thread{'s' * (blas != 1)}, h = 1e-4, "
           "float64",
           f"CPU: {env['cpu']} ({env['usable_cpus']} usable cores); load average "
           + (", ".join(f"{x:.2f}" for x in env["load_average"]) if env["load_average"] else "-")]
    datas = dict.fromkeys(f"{p['workload']['data']}: {p['workload']['description']}"
                          for p in report["parts"].values())
    out += [f"data {d}" for d in datas]
    out += ["", f"targets ({report['targets_file']}); met = the best level reached "
            f"({', '.join(levels)}) or {MISSED}:"]

    def fmt(r):
        if r["figure"] is None:
            return "-"
        if r.get("unit"):
            return f"{r['figure']:.2f} {r['unit']}"
        return f"{r['figure']:.2f}x" if r.get("interval") else format_ratio(r["figure"])

    columns = levels[::-1]  # the level a release needs first, as thresholds_text reads
    out += ["  " + line for line in table(
        ("workload", "measured", *columns, "met"),
        [(r["workload"], fmt(r), *(goal_text(r, lv, levels) for lv in columns), r["met"])
         for r in report["rows"]])]
    out += [f"  note ({r['workload'].split(':')[0]}): {r['note']}"
            for r in report["rows"] if r.get("note")]
    out += ["", "measured (median per gradient):"]
    for p in report["parts"].values():
        w, ref = p["workload"], p["reference"]
        cells = [f"{m} {format_seconds(t['median_s'])}"
                 + (f" ({SAMPLED_LABEL} from {ref['entries']:,} entries)"
                    if t.get("sampled") else "")
                 for m, t in p["timings"].items()]
        out.append(f"  {'-'.join(map(str, w['layers']))} {w['activation']}, batch "
                   f"{w['batch']}: " + ", ".join(cells))
    ph = report["phases"]
    out += ["", f"deep incremental phases at 1 thread ({ph['workload']}): serial fraction "
            f"{ph['serial_fraction']:.2%}; projected speed-up on "
            + ", ".join(f"{n} cores {format_ratio(v)}" for n, v in ph["projection"].items()),
            f"  projected = {PROJECTION_LABEL}"]
    if report["not_measured_here"]:
        out += ["", f"not measured here (targets in {report['targets_file']}):"]
        out += [f"  {t}" for t in report["not_measured_here"]]
    out.append("")
    out.append(f"{'all methods agree with the reference' if report['ok'] else 'VALIDATION FAILED'}"
               f"; {report['wall_s']:.0f} s in all")
    return "\n".join(out)
