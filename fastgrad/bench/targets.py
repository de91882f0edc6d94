"""``fastgrad bench --targets``: the targets table's figures, measured, then judged by a file.

The thresholds are data, never code: a targets file (TOML) lists the levels,
best first, and for each figure a threshold per level::

    levels = ["gold", "required"]             # best first

    [targets.deep-relu-incremental-speedup]   # a figure's id (see FIGURES)
    what = "784-[100]x4-10 ReLU: incremental vs the book's loop"
    better = "higher"                         # or "lower"
    unit = "min"                              # optional: the thresholds' unit
    by = "python bench/some_script.py"        # optional: what measures it, if not this run
    gold = 10000                              # a threshold per level, any may be left out
    required = 3000

A figure meets a level when it is at least (``better = "higher"``) or at most
(``"lower"``) that level's threshold, and is marked with the best level it
meets, else ``MISSED``. A figure with an interval from its rounds' spread (the
run against a saved baseline) claims a level above the last only when the
whole interval is beyond the threshold, and misses the last only when the
whole interval misses it (``within noise`` when part of it meets it), so noise
can neither earn nor fail a level. Targets the run does not measure are listed
with what measures them.

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
timed.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser as the tomli package
    import tomli as tomllib

from fastgrad import __version__, config, inputs
from fastgrad.bench.compare import compare
from fastgrad.bench.machine import environment
from fastgrad.bench.report import PROJECTION_LABEL, load_json, table
from fastgrad.bench.timing import profile_phases, spread, time_method, time_reference
from fastgrad.bench.validation import SAMPLED_LABEL, compute_reference, validate
from fastgrad.bench.workload import load_workload
from fastgrad.methods import check_method
from fastgrad.units import format_ratio, format_seconds

#: /2: thresholds by level, read from a targets file.
SCHEMA = "fastgrad-bench-targets/2"
#: Where a checkout keeps its targets, relative to its root (the current directory).
DEFAULT_FILE = Path("bench", "targets.toml")
#: The mark of a figure that meets no level.
MISSED = "MISSED"
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
    "deep-relu-jit-speedup": "deep ReLU net, small batch: the loop time / jit time",
    "incremental-vs-baseline": "784-50-10 incremental at 1 thread, now / the saved baseline "
                               "(each normalised by its run's anchors)",
    "optimizer-comparison-minutes": "the optimizer comparison, incremental (with training)",
    "optimizer-comparison-accuracy-gap": "its worst accuracy gap to backprop (with training)",
}
_TARGET_KEYS = ("what", "better", "unit", "by")


# --- the targets file ---------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One figure's thresholds: ``{level: threshold}``, and which way is better."""

    id: str
    what: str
    better: str  # "higher" or "lower"
    thresholds: dict = field(default_factory=dict)
    unit: str | None = None
    by: str | None = None

    @property
    def higher_is_better(self):
        return self.better == "higher"


@dataclass(frozen=True)
class Targets:
    """A targets file: its levels, best first, and its targets by figure id."""

    path: str
    levels: tuple
    targets: dict


def default_file():
    """``bench/targets.toml`` under the current directory (a checkout's root), if it exists."""
    return DEFAULT_FILE if DEFAULT_FILE.is_file() else None


def _number(value, where):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{where}: expected a finite number, got {value!r}")
    return float(value)


def _text(value, where):
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: expected a non-empty string, got {value!r}")
    return value


def load_targets(path):
    """Read and check a targets file (the format in the module docstring).

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Not valid TOML, or not a targets file: each message names the file and
        the key (levels missing or repeated, an unknown key, a threshold that
        is not a number, ``better`` neither "higher" nor "lower", or a better
        level easier to meet than a worse one).
    """
    path = Path(path).expanduser()
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"targets file {path} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML ({exc})") from None
    unknown = set(data) - {"levels", "targets"}
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {sorted(unknown)}; expected 'levels' and "
                         "'targets'")
    levels = data.get("levels")
    if (not isinstance(levels, list) or not levels
            or not all(isinstance(v, str) and v.strip() for v in levels)):
        raise ValueError(f"{path}: 'levels' must list the level names, best first")
    if len(set(levels)) != len(levels) or MISSED in levels or set(levels) & set(_TARGET_KEYS):
        raise ValueError(f"{path}: 'levels' must be distinct names other than {MISSED!r} and "
                         f"{', '.join(repr(k) for k in _TARGET_KEYS)}, got {levels}")
    tables = data.get("targets", {})
    if not isinstance(tables, dict):
        raise ValueError(f"{path}: 'targets' must be a table of [targets.<figure>] tables")
    targets = {}
    for name, spec in tables.items():
        where = f"{path}: [targets.{name}]"
        if not isinstance(spec, dict):
            raise ValueError(f"{where}: expected a table")
        unknown = set(spec) - set(levels) - set(_TARGET_KEYS)
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; expected "
                             f"{', '.join(_TARGET_KEYS)} or a level of {levels}")
        better = spec.get("better")
        if better not in ("higher", "lower"):
            raise ValueError(f"{where}: 'better' must be \"higher\" or \"lower\", got {better!r}")
        thresholds = {lv: _number(spec[lv], f"{where} {lv}") for lv in levels if lv in spec}
        if not thresholds:
            raise ValueError(f"{where}: no threshold for any level of {levels}")
        given = list(thresholds.values())  # best level first
        ordered = all((a >= b) if better == "higher" else (a <= b)
                      for a, b in zip(given, given[1:], strict=False))
        if not ordered:
            raise ValueError(f"{where}: a better level must be at least as hard to meet as a "
                             f"worse one (better = {better!r}), got {thresholds}")
        targets[name] = Target(name, _text(spec.get("what"), f"{where} what"), better,
                               thresholds,
                               None if "unit" not in spec else _text(spec["unit"], f"{where} unit"),
                               None if "by" not in spec else _text(spec["by"], f"{where} by"))
    return Targets(str(path), tuple(levels), targets)


# --- judging --------------------------------------------------------------------------


def _meets(value, threshold, higher):
    return value >= threshold if higher else value <= threshold


def judge(value, target, levels):
    """The best of ``levels`` whose threshold in ``target`` ``value`` meets, else MISSED."""
    if value is None:
        return "not measured"
    for level in levels:
        if level in target.thresholds and _meets(value, target.thresholds[level],
                                                 target.higher_is_better):
            return level
    return MISSED


def judge_interval(value, low, high, target, levels):
    """As :func:`judge` for a figure known within ``[low, high]`` (the rounds' spread).

    A level above the last needs the whole interval beyond its threshold; the
    last is met by the figure itself, or "within noise" by the interval's
    better end.
    """
    higher = target.higher_is_better
    worse_end, better_end = (low, high) if higher else (high, low)
    named = [lv for lv in levels if lv in target.thresholds]
    *upper, last = named
    for level in upper:
        t = target.thresholds[level]
        if (worse_end > t) if higher else (worse_end < t):
            return level
    if _meets(value, target.thresholds[last], higher):
        return last
    if _meets(better_end, target.thresholds[last], higher):
        return f"{last} (within noise)"
    return MISSED


def judge_row(row, targets):
    """Add ``thresholds``, ``higher_is_better`` and ``met`` to a figure ``row`` (by its ``id``).

    A row whose id has no target in ``targets`` is marked "no target"; one with
    an ``interval`` is judged by :func:`judge_interval`.
    """
    target = targets.targets.get(row["id"])
    if target is None:
        return {**row, "thresholds": {}, "higher_is_better": None, "met": "no target"}
    if row.get("figure") is None:
        met = "not measured"
    elif row.get("interval"):
        met = judge_interval(row["figure"], *row["interval"], target, targets.levels)
    else:
        met = judge(row["figure"], target, targets.levels)
    return {**row, "thresholds": dict(target.thresholds),
            "higher_is_better": target.higher_is_better, "met": met}


def goal_text(target_or_row, level, levels):
    """A threshold as the table prints it: ``>= 3,000x``, ``<= 15 min``, ``no slower``."""
    if isinstance(target_or_row, Target):
        thresholds, higher = target_or_row.thresholds, target_or_row.higher_is_better
        unit, interval = target_or_row.unit, False
    else:
        thresholds, higher = target_or_row["thresholds"], target_or_row["higher_is_better"]
        unit, interval = target_or_row.get("unit"), bool(target_or_row.get("interval"))
    t = thresholds.get(level)
    if t is None:
        return "-"
    sign = ">=" if higher else "<="
    if unit:
        return f"{sign} {t:g} {unit}"
    if interval:  # a ratio to a baseline, judged beyond noise above the last level
        last = level == [lv for lv in levels if lv in thresholds][-1]
        if t == 1.0 and not higher:
            return "no slower" if last else "faster"
        return f"{sign} {t:g}x" if last else f"{'>' if higher else '<'} {t:g}x"
    return f"{sign} {t:,g}x"


def thresholds_text(target_or_row, levels):
    """``silver <= 15 min, gold <= 5 min``: every threshold, the last level first."""
    thresholds = (target_or_row.thresholds if isinstance(target_or_row, Target)
                  else target_or_row["thresholds"])
    return ", ".join(f"{lv} {goal_text(target_or_row, lv, levels)}" for lv in reversed(levels)
                     if lv in thresholds)


# --- measuring ------------------------------------------------------------------------


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
    parts["sigmoid"] = measure(sigmoid, ["incremental"], threads, **kw)
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
        _ratio_row("deep-relu-jit-speedup",
                   f"{net} ReLU, batch {jit_batch}: jit vs the book's loop ({SAMPLED_LABEL})",
                   parts["relu_jit"], "reference", "jit", jit_note),
        _baseline_row(parts["standard"], baseline),
    ]
    if training:
        from fastgrad.bench.training import run_comparison

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
