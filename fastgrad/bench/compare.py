"""Compare a ``fastgrad bench`` report with a saved baseline.

By default what a machine largely cancels is compared: each method's time
divided by the *anchor* of its own run (the geometric mean of the reference's
and backprop's medians, both NumPy, measured in that same run), and each
compiled method's thread efficiency against the machine ceiling measured in
the same rounds. ``absolute=True`` compares the medians themselves, which only
means something on the same machine, equally quiet.

Every judged row gets a *ratio* (> 1 is worse: now / baseline for times,
baseline / now for efficiencies) and an *interval* from the spread of the
rounds behind both numbers. The noise rule, with threshold ``T`` (1.25):

* ``ratio <= T``: ``ok``;
* ``ratio > T`` and the interval's low end ``> T``: ``REGRESSION``;
* ``ratio > T`` but the low end ``<= T``: ``within noise`` (not a failure).

A number's spread is ``(Q1 / median, Q3 / median)`` of its rounds
(:func:`fastgrad.bench.timing.spread`); the interval's low end puts every number of
the ratio at the end of its spread that makes the ratio smallest (the now
time at its Q1, the baseline time at its Q3, and the anchors the other way),
the high end likewise. Two reports are compared only when they measured the same
workload (:func:`fastgrad.bench.report.check_comparable`); a different CPU, core
count, BLAS or Numba is always named.
"""

from __future__ import annotations

import math

from fastgrad.bench.report import check_comparable, table
from fastgrad.bench.timing import spread
from fastgrad.units import format_seconds

#: A ratio (worse when > 1) above this is a regression, unless within noise.
REGRESSION = 1.25
#: The methods whose times make the anchor of a run (NumPy, always measured).
ANCHORS = ("reference", "backprop")


def _spread(row):
    """Stored spread of a row's times, else from its rounds; ``None`` if neither is there."""
    if row.get("spread"):
        return tuple(row["spread"])
    if row.get("times_s"):
        return spread(row["times_s"])
    return None


def verdict(ratio, low, threshold=REGRESSION):
    """``"ok"``, ``"REGRESSION"`` or ``"within noise"`` by the rule in the module docstring."""
    if ratio <= threshold:
        return "ok"
    return "REGRESSION" if low > threshold else "within noise"


def _anchor(report, names):
    """Geometric mean of the anchors' medians and of their spreads."""
    rows = {r["method"]: r for r in report["timings"] if r["threads"] is None}
    med = math.prod(rows[n]["median_s"] for n in names) ** (1 / len(names))
    spreads = [_spread(rows[n]) or (1.0, 1.0) for n in names]
    lo = math.prod(s[0] for s in spreads) ** (1 / len(names))
    hi = math.prod(s[1] for s in spreads) ** (1 / len(names))
    return med, (lo, hi)


def _machine(env):
    env = env or {}
    blas = ", ".join(sorted({f"{b.get('internal_api')} {b.get('version')}"
                             for b in env.get("blas") or []})) or "none"
    return {"CPU model": env.get("cpu"), "core count": env.get("usable_cpus"),
            "BLAS": blas, "Numba version": env.get("numba")}


def _numpy_blas_threads(report):
    counts = {r.get("blas_threads") for r in report["timings"] if r["threads"] is None}
    return ", ".join(map(str, sorted(c for c in counts if c is not None))) or None


def machine_differences(report, baseline):
    """``(what, baseline value, now value)`` for CPU model, cores, BLAS and Numba.

    Also the BLAS threads the NumPy methods (the anchors) ran with, when both
    reports recorded them.
    """
    old, new = _machine(baseline.get("environment")), _machine(report.get("environment"))
    out = [(k, old[k], new[k]) for k in old if old[k] != new[k]]
    b, n = _numpy_blas_threads(baseline), _numpy_blas_threads(report)
    if b and n and b != n:
        out.append(("BLAS thread count of the NumPy methods", b, n))
    return out


def compare(report, baseline, threshold=REGRESSION, *, absolute=False):
    """Judge ``report`` against ``baseline``, a report of the same workload.

    Parameters
    ----------
    report, baseline : dict
        Reports as from :func:`fastgrad.bench.run.run_benchmark` or
        :func:`fastgrad.bench.report.load_json` (older schemas too).
    threshold : float
        Ratio above which a row is worse than the baseline (1.25: 25 %).
    absolute : bool
        Compare the medians themselves instead of normalised ratios.

    Returns
    -------
    dict
        ``mode``, ``threshold``, ``rows`` (``measure, method, threads, baseline,
        now, ratio, low, high, verdict, regression``), ``anchors`` (name ->
        now / baseline), ``machine`` (from :func:`machine_differences`) and
        ``notes``.
    """
    if not threshold > 1.0:
        raise ValueError(f"threshold must be a ratio above 1, got {threshold!r}")
    check_comparable(baseline, report["workload"])
    old = {(r["method"], r["threads"]): r for r in baseline["timings"]}
    new = {(r["method"], r["threads"]): r for r in report["timings"]}
    common = [k for k in new if k in old]
    notes = []
    if any(_spread(old[k]) is None or _spread(new[k]) is None for k in common):
        notes.append("some rows carry no rounds (an older report): their spread is unknown "
                     "and taken as none")
    anchors = [n for n in ANCHORS if (n, None) in old and (n, None) in new]
    anchor_moves = {n: new[(n, None)]["median_s"] / old[(n, None)]["median_s"] for n in anchors}
    rows = []

    def judge(measure, key, base, now, ratio, low, high):
        v = verdict(ratio, low, threshold)
        rows.append({"measure": measure, "method": key[0], "threads": key[1], "baseline": base,
                     "now": now, "ratio": ratio, "low": low, "high": high, "verdict": v,
                     "regression": v == "REGRESSION"})

    if absolute:
        for key in common:
            b, n = old[key], new[key]
            blo, bhi = _spread(b) or (1.0, 1.0)
            nlo, nhi = _spread(n) or (1.0, 1.0)
            ratio = n["median_s"] / b["median_s"]
            judge("time", key, b["median_s"], n["median_s"], ratio, ratio * nlo / bhi,
                  ratio * nhi / blo)
    else:
        if not anchors:
            raise ValueError("cannot normalise: the reports share no anchor "
                             f"({' or '.join(ANCHORS)} timed in both); use --compare-absolute")
        a_old, (aolo, aohi) = _anchor(baseline, anchors)
        a_new, (anlo, anhi) = _anchor(report, anchors)
        for key in common:
            b, n = old[key], new[key]
            if key[0] in anchors:
                rows.append({"measure": "anchor", "method": key[0], "threads": None,
                             "baseline": b["median_s"], "now": n["median_s"],
                             "ratio": anchor_moves[key[0]], "low": None, "high": None,
                             "verdict": "anchor", "regression": False})
                continue
            blo, bhi = _spread(b) or (1.0, 1.0)
            nlo, nhi = _spread(n) or (1.0, 1.0)
            ratio = (n["median_s"] / a_new) / (b["median_s"] / a_old)
            judge("time vs anchors", key, b["median_s"], n["median_s"], ratio,
                  ratio * nlo * aolo / (bhi * anhi), ratio * nhi * aohi / (blo * anlo))
        if not baseline.get("ceiling") and any(r.get("efficiency") for r in new.values()):
            notes.append(f"the baseline has no machine ceiling (schema {baseline.get('schema')}, "
                         "timed before thread counts were interleaved): thread efficiency is "
                         "not compared; save a new baseline with `fastgrad bench --json FILE`")
        for key in common:
            b, n = old[key], new[key]
            if not (b.get("efficiency") and n.get("efficiency")) or key[1] == 1:
                continue
            blo, bhi = spread(b.get("efficiency_rounds") or [])
            nlo, nhi = spread(n.get("efficiency_rounds") or [])
            ratio = b["efficiency"] / n["efficiency"]
            judge("efficiency", key, b["efficiency"], n["efficiency"], ratio,
                  ratio * blo / nhi, ratio * bhi / nlo)
        if len(anchors) == 2:
            apart = anchor_moves[anchors[0]] / anchor_moves[anchors[1]]
            if max(apart, 1 / apart) > threshold:
                notes.append(
                    "WARNING: the anchors moved apart ("
                    + ", ".join(f"{n} {anchor_moves[n]:.2f}x" for n in anchors)
                    + "): a busy machine, another BLAS or a change in a NumPy method; the "
                    "normalised ratios are less certain (compare on a quiet machine, or "
                    "check the anchors with --compare-absolute on the baseline's machine)")
    if not common:
        notes.append("no method/threads rows in common")
    return {"mode": "absolute" if absolute else "normalised", "threshold": threshold,
            "rows": rows, "anchors": anchor_moves,
            "machine": machine_differences(report, baseline), "notes": notes}


def _fmt_value(measure, value):
    if measure == "efficiency":
        return f"{value:.2f}"
    return format_seconds(value)


def _machine_text(env):
    m = _machine(env)
    return (f"{m['CPU model']}, {m['core count']} cores, BLAS {m['BLAS']}, "
            f"Numba {m['Numba version']}")


def format_comparison(comparison, path, report=None, baseline=None):
    """The comparison as text: header, machines, one row per judged number, notes."""
    t = comparison["threshold"]
    if comparison["mode"] == "absolute":
        how = "absolute medians (ratio = now / baseline)"
    else:
        how = ("normalised: each time / the anchor of its own run (geometric mean of the "
               "reference and backprop medians), ratio = now / baseline of that; thread "
               "efficiency vs the machine ceiling, ratio = baseline / now")
    out = [f"compared with {path}, {how}",
           f"  a ratio above {t:.2f} is a regression unless the interval from the rounds' "
           f"spread (Q1..Q3) reaches down to {t:.2f}: then it is within noise"]
    if report is not None and baseline is not None:
        out += [f"  baseline machine: {_machine_text(baseline.get('environment'))}",
                f"  this machine:     {_machine_text(report.get('environment'))}"]
    for what, old, new in comparison["machine"]:
        if comparison["mode"] == "absolute":
            out.append(f"  WARNING: different {what} (baseline {old}, now {new}): absolute "
                       "times compare machines, not code")
        else:
            out.append(f"  info: different {what} (baseline {old}, now {new}); the normalised "
                       "ratios largely cancel it")
    if comparison["mode"] != "absolute" and comparison["anchors"]:
        moves = comparison["anchors"]
        out.append("  anchors now / baseline: " + ", ".join(
            f"{n} {m:.2f}x" for n, m in moves.items())
            + f" (geometric mean {math.prod(moves.values()) ** (1 / len(moves)):.2f}x, "
            "divided out below)")
    rows = comparison["rows"]
    out += ["  " + line for line in table(
        ("measure", "method", "threads", "baseline", "now", "ratio", "interval", "verdict"),
        [(r["measure"], r["method"], r["threads"] or "-",
          _fmt_value(r["measure"], r["baseline"]), _fmt_value(r["measure"], r["now"]),
          f"{r['ratio']:.2f}x",
          f"{r['low']:.2f}-{r['high']:.2f}" if r["low"] is not None else "-",
          "" if r["verdict"] == "ok" else r["verdict"]) for r in rows])]
    out += [f"  {n}" if n.startswith("WARNING") else f"  note: {n}"
            for n in comparison["notes"]]
    n_reg = sum(r["regression"] for r in rows)
    n_noise = sum(r["verdict"] == "within noise" for r in rows)
    out.append(f"  {n_reg} regression{'s' * (n_reg != 1)}, {n_noise} within noise")
    return "\n".join(out)
