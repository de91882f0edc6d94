"""``fastgrad bench --targets``: every row of the MultiLayerNet targets table, in one run.

The rows (issue 8) on real MNIST test digits when found (labelled synthetic
otherwise), float64, h = 1e-4:

* 784-[100]x4-10 ReLU (He), batch 128: incremental vs the book's loop, and vs backprop;
* the same net with sigmoid (Xavier): incremental vs the book's loop;
* the ReLU net: jit vs the book's loop, at a smaller batch by default (a full
  jit gradient at batch 128 takes minutes; both sides run at that batch and
  the row says so);
* 784-50-10 sigmoid: incremental at one thread against a saved baseline report,
  normalised by the anchors of each run as ``fastgrad bench --compare`` does.

On the deep nets the book's loop runs on a seeded sample of entries and its
time is scaled to every entry ("sampled, scaled"); every method is validated
on those entries before it is timed. The optimizer-comparison rows belong to
``fastgrad train`` and are listed as such.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

from fastgrad import __version__, benchcompare, benchmark, config, inputs
from fastgrad.benchreport import PROJECTION_LABEL, _fmt_s, _fmt_x, _table, load_json

SCHEMA = "fastgrad-bench-targets/1"
#: The deep net of the table and its batch.
DEEP = (100, 100, 100, 100)
DEEP_BATCH = 128
#: Default batch of the jit row (see the module docstring).
JIT_BATCH = 2
#: Today's workload (hidden width, batch) of the baseline row.
TODAY = (50, 100)
#: Where saved ``fastgrad bench --json`` baselines live in a checkout.
RESULTS = Path(__file__).resolve().parents[1] / "bench" / "results"
#: (rounds, seconds budget per method) when timing.
FULL = (5, 20.0)
QUICK = (2, 5.0)


def default_baseline():
    """The newest saved report in ``bench/results`` (by name), or None."""
    found = sorted(RESULTS.glob("*.json")) if RESULTS.is_dir() else []
    return found[-1] if found else None


def _silent(_msg):
    pass


def _warm(activation, depth, say):
    """Load every compiled kernel of this net shape once, so no timing includes it."""
    tiny = benchmark.load_workload([3] * depth, 2, synthetic=True, activation=activation)
    for name in ("jit", "incremental"):
        say(f"loading the {name} kernels ({activation}, {depth} hidden layer"
            f"{'s' * (depth != 1)})")
        benchmark.validate(name, tiny, benchmark.compute_reference(tiny), threads=1)


def _row_of(tm):
    lo, hi = benchmark.spread(tm.times)
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
    ref = benchmark.compute_reference(workload, blas_threads)
    out = {"workload": workload.as_dict(), "reference": ref.as_dict(), "validation": [],
           "timings": {}}
    tm = benchmark.time_reference(workload, ref, rounds, budget_s=budget,
                                  blas_threads=blas_threads)
    out["timings"]["reference"] = {**_row_of(tm), "sampled": ref.sampled}
    for name in methods:
        t = threads.get(name) if isinstance(threads, dict) else threads
        compiled = benchmark.check_method(name).compiled
        v = benchmark.validate(name, workload, ref, threads=t if compiled else None,
                               blas_threads=blas_threads)
        out["validation"].append(v.as_dict())
        say(f"  validate {name}: max |error| {v.max_abs_error:.2e} on {v.comparison.compared:,} "
            f"entries (tol {v.tol:g}) {'ok' if v.ok else 'FAILED'}")
        if not v.ok:
            continue
        slow = v.seconds > 1.0  # its validation run (kernels already loaded) is round one
        tm = benchmark.time_method(
            name, workload, t if compiled else None, rounds, budget_s=budget,
            first_round=(v.seconds, v.result) if slow else None,
            blas_threads=None if compiled else blas_threads)
        out["timings"][name] = _row_of(tm)
        say(f"  time {name}: median {_fmt_s(tm.median)} ({tm.rounds} rounds)")
    say(f"  reference: median {_fmt_s(out['timings']['reference']['median_s'])}"
        + (f" ({benchmark.SAMPLED_LABEL})" if ref.sampled else ""))
    return out


def _judge(value, must, stretch, higher):
    """``"stretch"``, ``"must"`` or ``"MISSED"`` for a ratio against its targets."""
    def meets(goal):
        return value >= goal if higher else value <= goal

    if value is None:
        return "not measured"
    return "stretch" if meets(stretch) else "must" if meets(must) else "MISSED"


def _ratio_row(name, part, a, b, must, stretch, higher, note=""):
    """A row whose figure is ``a / b`` of two timed methods in ``part``."""
    times = part["timings"]
    if a not in times or b not in times:
        return {"workload": name, "figure": None, "must": must, "stretch": stretch,
                "higher_is_better": higher, "met": "not measured",
                "note": f"{a if a not in times else b} failed validation"}
    value = times[a]["median_s"] / times[b]["median_s"]
    return {"workload": name, "figure": value, "must": must, "stretch": stretch,
            "higher_is_better": higher, "met": _judge(value, must, stretch, higher),
            "note": note}


def _baseline_row(part, baseline_path):
    """784-50-10: incremental at one thread vs the baseline, normalised by the anchors."""
    row = {"workload": "784-50-10 sigmoid (today's workload): incremental 1 thread vs "
                       "today's kernel (time / same-run anchors, now / baseline)",
           "figure": None, "must": 1.0, "stretch": None, "higher_is_better": False,
           "met": "not measured", "baseline": str(baseline_path) if baseline_path else None}
    if baseline_path is None:
        row["note"] = "no baseline: pass --baseline BASELINE.json"
        return row
    baseline = load_json(baseline_path)
    report = {"workload": part["workload"], "environment": part.get("environment"),
              "timings": [
        {**r, "threads": r["threads"] if r["method"] in ("jit", "incremental") else None}
        for r in part["timings"].values()]}
    try:
        comparison = benchcompare.compare(report, baseline)
    except ValueError as exc:
        row["note"] = str(exc)
        return row
    found = [r for r in comparison["rows"]
             if r["method"] == "incremental" and r["threads"] == 1]
    if not found:
        row["note"] = "the baseline has no 1-thread incremental row"
        return row
    r = found[0]
    row.update(figure=r["ratio"], interval=[r["low"], r["high"]], anchors=comparison["anchors"])
    # no slower: the ratio at most 1, or 1 within the rounds' noise; faster: below 1 beyond it
    if r["high"] < 1.0:
        row["met"] = "stretch"
    elif r["ratio"] <= 1.0 or r["low"] <= 1.0:
        row["met"] = "must" if r["ratio"] <= 1.0 else "must (within noise)"
    else:
        row["met"] = "MISSED"
    if any(n.startswith("WARNING") for n in comparison["notes"]):
        row["met"] += " (uncertain: see the note)"
    row["note"] = "; ".join([
        f"ratio {r['ratio']:.2f}x, interval {r['low']:.2f}-{r['high']:.2f} from the rounds' "
        "spread; must: no slower (<= 1), stretch: faster (interval below 1); absolute "
        f"{_fmt_s(r['now'])} now vs {_fmt_s(r['baseline'])} then ({r['now'] / r['baseline']:.2f}x)",
        *(f"different {what} (baseline {old}, now {new})"
          for what, old, new in comparison["machine"]),
        *comparison["notes"]])
    return row


TRAIN_ROWS = (
    "the book's optimizer comparison (784-[100]x4-10 ReLU, batch 128, 2,000 iterations each "
    "of sgd, momentum, adagrad, adam), incremental, 2 cores: <= 15 min must, <= 5 min stretch",
    "that comparison: each optimizer's final test accuracy vs --method backprop: within 1 "
    "point must, within 0.2 stretch",
)


def run_targets(threads=None, *, jit_batch=None, baseline=None, quick=False, repeats=None,
                data_dir=None, synthetic=False, blas_threads=None, training=False,
                log=_silent):
    """Measure every row of the targets table; return the report dict.

    Parameters
    ----------
    threads : int, optional
        Numba threads of jit and incremental (default: all cores).
    jit_batch : int, optional
        Batch of the jit row (default :data:`JIT_BATCH`).
    baseline : path, optional
        Saved ``fastgrad bench --json`` report of 784-50-10 for the last row.
    quick : bool
        Fewer rounds.
    repeats : int, optional
        Exact rounds per method.
    data_dir, synthetic, blas_threads
        As for :func:`fastgrad.benchreport.run_benchmark`.
    training : bool
        Also train the optimizer comparison (:mod:`fastgrad.benchtraining`,
        about a quarter of an hour on 2 cores) for its two rows.
    log : callable
        Receives one progress line at a time.
    """
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
    relu = benchmark.load_workload(list(DEEP), DEEP_BATCH, activation="relu",
                                   weight_init="relu", **load)
    parts["relu"] = measure(relu, ["backprop", "incremental"], threads, **kw)
    say("phases of the deep incremental at 1 thread")
    prof = benchmark.profile_phases("incremental", relu, 1 if quick else 3)
    _warm("sigmoid", len(DEEP), say)
    sigmoid = benchmark.load_workload(list(DEEP), DEEP_BATCH, activation="sigmoid",
                                      weight_init="sigmoid", **load)
    parts["sigmoid"] = measure(sigmoid, ["incremental"], threads, **kw)
    small = benchmark.load_workload(list(DEEP), jit_batch, activation="relu",
                                    weight_init="relu", **load)
    parts["relu_jit"] = measure(small, ["jit"], threads, **kw)
    _warm("sigmoid", 1, say)
    today = benchmark.load_workload(TODAY[0], TODAY[1], **load)
    parts["today"] = measure(today, ["backprop", "incremental"], 1, **kw)
    parts["today"]["environment"] = benchmark.environment()

    net = f"784-[{DEEP[0]}]x{len(DEEP)}-10"
    deep = f"{net} ReLU (He), batch {DEEP_BATCH}"
    jit_note = ("" if jit_batch == DEEP_BATCH else
                f"measured at batch {jit_batch}, not {DEEP_BATCH}: a full jit gradient of this "
                f"net at {DEEP_BATCH} takes minutes (--jit-batch {DEEP_BATCH} measures it); both "
                "sides at that batch, where NumPy's per-call overhead weighs far more than at "
                f"{DEEP_BATCH}: this ratio overstates jit (on the development VM: 10x at batch 2, "
                "1.2x at 128)")
    rows = [
        _ratio_row(f"{deep}: incremental vs the book's loop ({benchmark.SAMPLED_LABEL})",
                   parts["relu"], "reference", "incremental", 3000, 10000, True),
        _ratio_row(f"{deep}: incremental vs backprop (cost, lower is better)", parts["relu"],
                   "incremental", "backprop", 100, 20, False),
        _ratio_row(f"{net} sigmoid (Xavier), batch {DEEP_BATCH}: incremental vs the "
                   f"book's loop ({benchmark.SAMPLED_LABEL})", parts["sigmoid"], "reference",
                   "incremental", 20, 200, True),
        _ratio_row(f"{net} ReLU, batch {jit_batch}: jit vs the book's loop "
                   f"({benchmark.SAMPLED_LABEL})", parts["relu_jit"], "reference", "jit", 1.5,
                   3, True, jit_note),
        _baseline_row(parts["today"], baseline),
    ]
    not_measured = list(TRAIN_ROWS)
    if training:
        from fastgrad import benchtraining

        rows += benchtraining.run_comparison(threads=threads, say=say)[0]
        not_measured = []
    ok = all(v["ok"] for p in parts.values() for v in p["validation"])
    return {"schema": SCHEMA, "fastgrad": __version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "threads": threads, "blas_threads": blas_threads,
            "layer": config.threading_layer(), "rows": rows,
            "not_measured_here": not_measured, "parts": parts,
            "phases": {**prof.as_dict(), "workload": relu.label(),
                       "projection_label": PROJECTION_LABEL},
            "environment": benchmark.environment(), "ok": ok,
            "wall_s": time.perf_counter() - start}


def format_targets(report):
    """The targets report as text: one row per target with must/stretch marked."""
    env = report["environment"]
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
    out += ["", "targets (issue 8); met = the best level reached (stretch, must) or MISSED:"]

    def fmt(r):
        if r["figure"] is None:
            return "-"
        if r.get("unit"):
            return f"{r['figure']:.2f} {r['unit']}"
        return f"{r['figure']:.2f}x" if r["must"] == 1.0 else _fmt_x(r["figure"])

    def goal(r, v):
        if r.get("unit"):
            return f"{'>=' if r['higher_is_better'] else '<='} {v:g} {r['unit']}"
        if v is None:
            return "faster" if r["must"] == 1.0 else "-"
        if r["must"] == 1.0 and v == 1.0:
            return "no slower"
        return f"{'>=' if r['higher_is_better'] else '<='} {v:,g}x"

    out += ["  " + line for line in _table(
        ("workload", "measured", "must", "stretch", "met"),
        [(r["workload"], fmt(r), goal(r, r["must"]), goal(r, r["stretch"]), r["met"])
         for r in report["rows"]])]
    out += [f"  note ({r['workload'].split(':')[0]}): {r['note']}"
            for r in report["rows"] if r.get("note")]
    out += ["", "measured (median per gradient):"]
    for p in report["parts"].values():
        w, ref = p["workload"], p["reference"]
        cells = [f"{m} {_fmt_s(t['median_s'])}" + (f" ({benchmark.SAMPLED_LABEL} from "
                                                      f"{ref['entries']:,} entries)"
                                                      if t.get("sampled") else "")
                 for m, t in p["timings"].items()]
        out.append(f"  {'-'.join(map(str, w['layers']))} {w['activation']}, batch "
                   f"{w['batch']}: " + ", ".join(cells))
    ph = report["phases"]
    out += ["", f"deep incremental phases at 1 thread ({ph['workload']}): serial fraction "
            f"{ph['serial_fraction']:.2%}; projected speed-up on "
            + ", ".join(f"{n} cores {_fmt_x(v)}" for n, v in ph["projection"].items()),
            f"  projected = {PROJECTION_LABEL}"]
    if report["not_measured_here"]:
        out += ["", "not measured here (training: `fastgrad bench --targets --training` or "
                "`python bench/optimizer_compare.py`):"]
        out += [f"  {t}" for t in report["not_measured_here"]]
    out.append("")
    out.append(f"{'all methods agree with the reference' if report['ok'] else 'VALIDATION FAILED'}"
               f"; {report['wall_s']:.0f} s in all")
    return "\n".join(out)
