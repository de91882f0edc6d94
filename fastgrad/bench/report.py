"""A ``fastgrad bench`` report as data: its schema, its text, its files.

A run (:func:`fastgrad.bench.run.run_benchmark`) returns a plain JSON-ready
dict of schema :data:`SCHEMA`; everything here only reads it, so a saved
report can be printed, compared (:mod:`fastgrad.bench.compare`) or plotted
(:func:`fastgrad.plots.plot_benchmark`) later without measuring again. Reports
are written atomically (a file is replaced whole or kept) and read back only
when their schema says they are reports; two reports are compared only when
they measured the same workload (:func:`check_comparable`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from fastgrad.bench.cluster import cluster_label
from fastgrad.bench.validation import SAMPLED_LABEL
from fastgrad.files import atomic_write
from fastgrad.standard import net_phrase
from fastgrad.units import format_ratio, format_seconds

SCHEMA = "fastgrad-bench/2"
#: Older report layouts :func:`load_json` still reads (/1: no ceiling, timed in blocks).
OLD_SCHEMAS = ("fastgrad-bench/1",)
#: Where a checkout keeps saved reports, relative to its root (the current directory).
RESULTS = Path("bench", "results")
#: What the projected speed-ups are.
PROJECTION_LABEL = ("projection from the measured serial fraction s (Amdahl's law, "
                    "1 / (s + (1 - s) / N)), not a measurement")


# --- text ------------------------------------------------------------------------------


def format_spread(lo_hi):
    """``-3%/+12%``: a spread ``(Q1 / median, Q3 / median)`` as printed."""
    if not lo_hi:
        return "-"
    lo, hi = lo_hi
    return f"{lo - 1:+.0%}/{hi - 1:+.0%}"


def _verdict(v):
    text = "ok" if v["ok"] else "FAILED"
    if v.get("excused"):  # backprop on ReLU: kinks
        text += (f" ({v['excused']} entries beyond tol excused: steps across a ReLU or "
                 "max-pool kink, or finite-difference noise)")
    elif v.get("min_share", 1.0) < 1.0:  # reports saved before kinks were told apart
        text += (f" ({v['share_within']:.1%} within tol, {v['min_share']:.0%} needed: steps "
                 "across a ReLU kink differ from the derivative)")
    return text


def table(header, rows):
    """Lines of a left-aligned table, columns two spaces apart, no trailing blanks."""
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]

    def line(cells):
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return [line(header), *(line(r) for r in rows)]


def _net_text(w):
    """A report's ``workload`` dict in one phrase (reports older than the network
    flags lack the net's fields: they were the sigmoid net at its default init)."""
    return net_phrase(w["layers"], w.get("activation", "sigmoid"), w.get("weight_init"),
                      w.get("weight_decay"))


def _reference_text(ref):
    if not ref or not ref.get("sampled"):
        return []
    return [f"reference ({ref['label']}): the book's loop on {ref['entries']:,} seeded entries "
            f"({ref['per_tensor']} per tensor), {format_seconds(ref['measured_s'])}, scaled "
            f"by {ref['n_params']:,}/{ref['entries']:,} to {format_seconds(ref['full_s'])}; "
            "every method is validated on those entries"]


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
    out += ["  " + line for line in table(
        ("method", "threads", "max |error|", "tol", "compared", "result"),
        [(v["method"], v["threads"] or "-", f"{v['max_abs_error']:.2e}", f"{v['tol']:g}",
          f"{v['compared']:,}" if v.get("compared") else "-",
          _verdict(v)) for v in report["validation"]])]
    main = [r for r in report["timings"] if r["main"]]
    if main:
        out += ["", "time per gradient (median and min over rounds x loops):"]
        out += ["  " + line for line in table(
            ("method", "median", "min", "rounds", "speed-up vs reference", "cost vs backprop",
             "threads", "layer", "BLAS threads"),
            [(r["method"] + (f" ({SAMPLED_LABEL})" if r.get("sampled") else ""),
              format_seconds(r["median_s"]), format_seconds(r["min_s"]),
              f"{r['rounds']}x{r['loops']}", format_ratio(r["speedup_vs_reference"]),
              format_ratio(r["cost_vs_backprop"]), r["threads"] or "-",
              r["threading_layer"] or "-",
              r["blas_threads"] if r["blas_threads"] is not None else "-") for r in main])]
    out += _format_cluster(report.get("cluster"))
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
                        f"{format_seconds(c['median_s'])} ({format_spread(c['spread'])})"
                        for c in cs) + " = speed-up " + ", ".join(
                        f"{format_ratio(c['speedup_vs_1_thread'])} on {c['threads']}"
                        for c in cs if c["threads"] != 1 and c["speedup_vs_1_thread"])]
        out += ["  " + line for line in table(
            ("method", "threads", "median", "spread", "min", "vs 1 thread", "ceiling",
             "efficiency"),
            [(r["method"], r["threads"], format_seconds(r["median_s"]),
              format_spread(r.get("spread")), format_seconds(r["min_s"]),
              format_ratio(r["speedup_vs_1_thread"]),
              format_ratio(r.get("ceiling_speedup")),
              f"{r['efficiency']:.2f}" if r.get("efficiency") else "-") for r in scaling])]
        out.append("  efficiency = speed-up vs 1 thread / the ceiling's speed-up in the same "
                   "rounds (1.00: as well as any code scales on this machine now)")
    out += _format_phases(report.get("phases"))
    if report.get("startup"):
        out += ["", f"start-up: fresh process, import fastgrad + first gradient "
                f"({'-'.join(map(str, w['layers']))}, 1 synthetic sample); wait = process "
                "start to first gradient, compile/load = first call minus a second call:"]
        out += ["  " + line for line in table(
            ("method", "cold wait", "compile", "warm wait", "load from cache", "import"),
            [(s["method"], format_seconds(s["cold"]["wait_s"]),
              format_seconds(s["cold"]["compile_s"]), format_seconds(s["warm"]["wait_s"]),
              format_seconds(s["warm"]["compile_s"]), format_seconds(s["warm"]["import_s"]))
             for s in report["startup"]])]
    out += [""] + [f"note: {n}" for n in report["notes"]]
    out.append(f"{'all methods agree with the reference' if report['ok'] else 'VALIDATION FAILED'}"
               f"; {report.get('wall_s', 0):.0f} s in all")
    if report.get("small_net"):  # jit of a net too big for it, on a small one
        out += ["", "jit on the small net (its own reference and backprop):", "",
                format_report(report["small_net"])]
    return "\n".join(out)


def _format_cluster(info):
    if not info or not info.get("timings"):
        return []
    out = ["", f"over the Dask cluster {cluster_label(info)}, scheduler {info['scheduler']}: "
           "whole gradients, every chunk on the workers (median and min over rounds):"]
    out += ["  " + line for line in table(
        ("method", "median", "min", "rounds", "speed-up vs reference", "vs this method here",
         "max |error|", "result"),
        [(r["method"], format_seconds(r["median_s"]), format_seconds(r["min_s"]),
          r["rounds"], format_ratio(r.get("speedup_vs_reference")),
          format_ratio(r.get("speedup_vs_one_machine")), f"{r['max_abs_error']:.2e}",
          "ok" if r["ok"] else "FAILED") for r in info["timings"]])]
    return out


def _format_phases(profiles):
    if not profiles:
        return []
    out = ["", "phases at 1 thread (median per call; serial = outside the parallel regions):"]
    for p in profiles:
        out.append(f"  {p['method']}: {format_seconds(p['total_s'])} per call over "
                   f"{p['calls']} call{'s' * (p['calls'] != 1)}, serial fraction "
                   f"{p['serial_fraction']:.2%}")
        out.append("    " + "; ".join(
            f"{ph['name']} {format_seconds(ph['seconds'])} ({ph['kind']})" for ph in p["phases"]))
        out.append("    projected speed-up on " + ", ".join(
            f"{n} cores {format_ratio(v)}" for n, v in p["projection"].items()))
        if p.get("granular_projection"):
            out.append("    with each parallel phase's granularity (whole items per core): "
                       + ", ".join(f"{n} cores {format_ratio(v)}"
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


#: " from /a/local/folder" in a batch's description: a saved report names no one's folders.
_LOCAL_FOLDER = re.compile(r" from (?:~|/)[^\s\",]*")


def save_json(report, path):
    """Write the report as JSON, atomically: an old file is replaced whole or kept.

    Where a batch came from is kept as "from a local copy": a local folder
    names someone's machine, not the measurement.
    """
    text = _LOCAL_FOLDER.sub(" from a local copy", json.dumps(report, indent=2) + "\n").encode()
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


def newest_report(folder=RESULTS, *, layers=None):
    """The newest bench report in ``folder`` (by its ``created`` time stamp), or None.

    Files of other kinds (other benchmarks' JSON) are passed over, and with
    ``layers`` (e.g. ``[784, 50, 10]``) so are reports of other nets. ``folder``
    defaults to ``bench/results`` under the current directory: run from a
    checkout's root, the reports saved there.
    """
    folder = Path(folder)
    found = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            report = load_json(path)
        except (ValueError, OSError):
            continue
        net = report.get("workload", {}).get("layers", [])
        if layers is not None and list(net) != list(layers):
            continue
        found.append((str(report.get("created", "")), path.name, path))
    return max(found)[2] if found else None
