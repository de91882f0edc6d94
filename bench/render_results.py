"""Render a saved ``fastgrad bench --json`` report into the README's and the docs' tables.

    python bench/render_results.py                  # the newest bench/results/*.json
    python bench/render_results.py REPORT.json      # a given report
    python bench/render_results.py --check          # exit 1 if a page differs from the JSON

The block between ``<!-- bench-table:start -->`` and ``<!-- bench-table:end -->``
in ``README.md`` and ``docs/performance.md`` is rewritten from the fully connected
net's report, and the ``convnet-table`` block of ``docs/performance.md`` from the
newest ``fastgrad bench --net convnet`` report (its small net's jit rows below
it), so no
figure in those tables is typed by hand: method, threads, median time per
gradient, speed-up over the book's loop, cost against backprop and the error
against the book's loop, with the workload above the table and the date, CPU
and command under it. "Newest" is by the report's ``created`` time stamp.
Nothing that looks like a file system path is copied from a report: a path
names someone's machine, not the measurement.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
#: Pages holding a generated block, relative to the repository root.
PAGES = ("README.md", "docs/performance.md")
START, END = "<!-- bench-table:start -->", "<!-- bench-table:end -->"
#: The convolutional net's table: its page and markers.
CONV_PAGE = "docs/performance.md"
CONV_MARKERS = ("<!-- convnet-table:start -->", "<!-- convnet-table:end -->")
SCHEMA_PREFIX = "fastgrad-bench/"

METHOD_LABELS = {
    "reference": "`reference` (the book's loop, NumPy)",
    "jit": "`jit` (compiled forward pass per parameter)",
    "incremental": "`incremental` (the default)",
    "backprop": "`backprop` (analytic, NumPy)",
}
SIMD_NAMES = {"avx2": "AVX2", "avx512f": "AVX-512F", "avx512_vnni": "AVX-512 VNNI",
              "avx": "AVX", "sse4_2": "SSE4.2", "fma": "FMA", "neon": "NEON"}
# an absolute or home-relative path (POSIX or Windows), with a joining word before it
_PATH = re.compile(r"\s*(?:\b(?:from|in|at|under)\s+)?(?<!\S)(?:~|[A-Za-z]:\\|/(?=\S))[^\s,;)]*")


def load(path):
    """Return the report saved at ``path``; ``ValueError`` unless it is a fastgrad bench report."""
    path = Path(path)
    report = json.loads(path.read_text(encoding="utf-8"))
    schema = report.get("schema", "") if isinstance(report, dict) else ""
    if not str(schema).startswith(SCHEMA_PREFIX):
        raise ValueError(f"{path.name} is not a fastgrad bench report (schema {schema!r})")
    for key in ("created", "workload", "timings", "environment"):
        if key not in report:
            raise ValueError(f"{path.name} has no {key!r}: not a complete bench report")
    return report


def newest(results=RESULTS, net="mlp"):
    """Path of the bench report of ``net`` in ``results`` with the latest ``created`` time stamp.

    The headline is chapter 4's two-layer net's (``fastgrad bench``: one hidden
    layer); a report without a ``net`` in its workload is a fully connected
    net's. Reports of deeper nets (``--hidden 100 100 100 100``) are kept
    beside it but are not the headline.
    """
    found = []
    for path in sorted(Path(results).glob("*.json")):
        try:
            report = load(path)
        except (ValueError, json.JSONDecodeError):
            continue  # other JSON files (a steps sweep, a training run) are not tables here
        if report["workload"].get("net", "mlp") != net:
            continue
        if net == "mlp" and len(report["workload"]["layers"]) != 3:
            continue  # a deep net's report
        found.append((datetime.fromisoformat(report["created"]), path))
    if not found:
        raise FileNotFoundError(f"no fastgrad bench report (*.json) in {results}")
    return max(found)[1]


def strip_paths(text):
    """``text`` without anything that looks like a file system path."""
    return " ".join(_PATH.sub("", text).split())


def fmt_seconds(s):
    """``15.0 h``, ``12.1 s``, ``2.50 ms``, ``294 µs``: three significant digits."""
    if s >= 3600:
        return f"{s / 3600:.3g} h"
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if s >= scale or unit == "µs":
            return f"{s / scale:#.3g}".rstrip(".") + f" {unit}"
    raise AssertionError("unreachable")


def fmt_number(x):
    """``1e-4`` for a small power of ten, else ``%g`` (``0.5``, ``0.0025``, ``128``)."""
    short = f"{x:.0e}"
    text = short if 0 < x < 1e-3 and short.startswith("1e") and float(short) == x else f"{x:g}"
    return re.sub(r"e([+-])0*(\d)", lambda m: f"e{m[1].lstrip('+')}{m[2]}", text)


def fmt_ratio(x):
    """``41,240×``, ``15.8×``, ``2.09×``; ``—`` where the run has no such ratio (a
    method not timed)."""
    if x is None:
        return "—"
    if x >= 100:
        return f"{x:,.0f}×"
    return f"{x:.1f}×" if x >= 10 else f"{x:.2f}×"


def _threads(row):
    if row.get("threads") is None:
        blas = row.get("blas_threads")
        return f"BLAS {blas}" if blas else "BLAS"
    return str(row["threads"])


def _error(row):
    err = row.get("max_abs_error")
    if row["method"] == "reference" or err is None:
        return "—"
    text = re.sub(r"e([+-])0+(\d)", r"e\1\2", f"{err:.1e}").replace("e+", "e")
    return f"{text} (not a finite difference)" if row["method"] == "backprop" else text


def _net_text(w):
    """``784-50-10 sigmoid net`` or the convolutional net's layers, from a report's workload."""
    if w.get("net") == "convnet":
        dims, conv, hidden, out = w["layers"]
        m = re.fullmatch(r"conv(\d+)x(\d+)x(\d+)p(\d+)s(\d+)", conv)
        if m:
            fn, fh, fw, pad, stride = m.groups()
            conv = f"{fn} filters {fh}x{fw} (pad {pad}, stride {stride})"
        return f"SimpleConvNet {dims} -> {conv} -> relu -> pool -> {hidden} relu -> {out}"
    return f"{'-'.join(str(n) for n in w['layers'])} {w.get('activation', 'sigmoid')} net"


def _compared(report, method):
    return next(v["compared"] for v in report["validation"] if v["method"] == method)


def _workload(report):
    w = report["workload"]
    data = strip_paths(str(w.get("description") or w.get("data") or "data not recorded"))
    tol = report.get("tolerance", {})
    check = ""
    if "numerical" in tol:
        check = (f" Every method was checked against the book's loop before it was timed "
                 f"(max abs error ≤ {fmt_number(tol['numerical'])}")
        excused = sum(v.get("excused") or 0 for v in report.get("validation", [])
                      if v["method"] == "backprop")
        kinks = (f" outside {excused} of {_compared(report, 'backprop'):,} entries whose step "
                 "crosses a ReLU or max-pool kink, told apart on a finer stencil"
                 if excused else "")
        check += (f"; backprop ≤ {fmt_number(tol['analytic'])}{kinks})." if "analytic" in tol
                  else ").")
    return (f"{_net_text(w)} ({w['n_params']:,} parameters), batch {w['batch']}: "
            f"{data}; h = {fmt_number(w['h'])}, float64, seed {w.get('seed', 0)}.{check}")


def _machine(report):
    env = report["environment"]
    simd = "/".join(SIMD_NAMES.get(s, s.upper()) for s in env.get("simd", []))
    cpu = env.get("cpu") or "CPU not recorded"
    cores = env.get("logical_cpus")
    parts = [cpu + (f" ({simd})" if simd else "")]
    if cores:
        parts.append(f"{cores} logical CPUs" + (f", {env['usable_cpus']} usable"
                                                if env.get("usable_cpus") not in (None, cores)
                                                else ""))
    soft = []
    if env.get("numba"):
        layer = env.get("threading_layer")
        soft.append(f"Numba {env['numba']}" + (f" ({layer})" if layer else ""))
    if env.get("numpy"):
        soft.append(f"NumPy {env['numpy']}")
    blas = {}
    for b in env.get("blas", []):
        api = {"openblas": "OpenBLAS", "mkl": "MKL"}.get(b.get("internal_api"), "BLAS")
        blas.setdefault(api, {})[b.get("version", "")] = None
    soft += [f"{api} {' and '.join(v for v in versions if v)}".strip()
             for api, versions in blas.items()]
    if env.get("python"):
        soft.append(f"Python {env['python']}")
    load_avg = env.get("load_average")
    line = ", ".join(parts + soft)
    if load_avg:
        line += f"; load average {load_avg[0]:.2f} at the start"
    return line


def _startup(report):
    rows = report.get("startup") or []
    parts = []
    for row in rows:
        warm, cold = row.get("warm", {}), row.get("cold", {})
        if "wait_s" in warm and "wait_s" in cold:
            parts.append(f"`{row['method']}` {fmt_seconds(warm['wait_s'])} with a warm Numba "
                         f"cache, {fmt_seconds(cold['wait_s'])} compiling")
    if not parts:
        return ""
    return ("Start-up, a fresh process importing fastgrad and taking its first gradient: "
            + "; ".join(parts) + ".")


def _table(report):
    """The method rows of ``report``'s timings, as markdown."""
    lines = ["| method | threads | time per gradient | speed-up vs the book's loop "
             "| cost vs backprop | max abs error vs the book's loop |",
             "|---|---:|---:|---:|---:|---:|"]
    for row in report["timings"]:
        label = METHOD_LABELS.get(row["method"], f"`{row['method']}`")
        if row.get("sampled"):
            label += ", sampled and scaled"
        lines.append(f"| {label} | {_threads(row)} | {fmt_seconds(row['median_s'])} "
                     f"| {fmt_ratio(row['speedup_vs_reference'])} "
                     f"| {fmt_ratio(row['cost_vs_backprop'])} | {_error(row)} |")
    return lines


def render_convnet(report, source):
    """The convnet block: ``render`` of the report, then its small net's table (jit)."""
    text = render(report, source)
    small = report.get("small_net")
    notes = [strip_paths(n) for n in report.get("notes", []) if n.startswith("reference")]
    extra = [""] + [f"Note: {n}" for n in notes]
    if small:
        extra += ["", "The jit method runs a whole forward pass per parameter (hours on this "
                  f"net), so the same run times it on a small net: {_workload(small)}", "",
                  *_table(small)]
    return text + "\n" + "\n".join(extra)


def render(report, source):
    """The markdown between the markers for ``report`` (saved at ``source``)."""
    created = datetime.fromisoformat(report["created"])
    name = Path(source).resolve()
    shown = (name.relative_to(ROOT).as_posix() if name.is_relative_to(ROOT) else name.name)
    command = report.get("command")
    command = f"`{strip_paths(command)}`" if command else "not recorded in the report"
    rounds = [r["rounds"] for r in report["timings"] if r.get("rounds")]
    spread = (f"medians of {min(rounds)} to {max(rounds)} timed rounds" if rounds
              and min(rounds) != max(rounds) else
              f"medians of {rounds[0]} timed rounds" if rounds else "medians")
    lines = [
        f"<!-- generated by `python bench/render_results.py` from {shown}: do not edit -->",
        _workload(report),
        "",
        *_table(report),
    ]
    mode = " (`--quick` run)" if report.get("mode") == "quick" else ""
    lines += [
        "",
        f"Measured {created.date().isoformat()}{mode} on {_machine(report)}; {spread}.",
        f"Command: {command}. Report: `{shown}`.",
    ]
    startup = _startup(report)
    if startup:
        lines += ["", startup]
    return "\n".join(lines)


def replace_block(text, block, where="text", markers=(START, END)):
    """``text`` with the part between the markers replaced by ``block``."""
    start, end = markers
    if text.count(start) != 1 or text.count(end) != 1:
        raise ValueError(f"{where} must hold exactly one {start} ... {end} block")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{block}\n{end}{tail}"


def block_of(text, where="text", markers=(START, END)):
    """The current content between the markers of ``text``."""
    start, end = markers
    if text.count(start) != 1 or text.count(end) != 1:
        raise ValueError(f"{where} must hold exactly one {start} ... {end} block")
    return text.split(start, 1)[1].split(end, 1)[0].strip("\n")


def blocks(report_path=None):
    """``(page, markers, block, source)`` for every generated block: the fully connected
    net's table from ``report_path`` (default: its newest report) on every page, and the
    newest convnet report's table on the performance page."""
    source = Path(report_path) if report_path else newest()
    out = [(page, (START, END), render(load(source), source), source) for page in PAGES]
    conv = newest(net="convnet")
    out.append((CONV_PAGE, CONV_MARKERS, render_convnet(load(conv), conv), conv))
    return out


def main(argv=None):
    """Rewrite (or with ``--check`` verify) every page's block; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", nargs="?", help="saved report (default: the newest "
                        "bench/results/*.json by its 'created' time stamp)")
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 if a page's block differs from the report")
    args = parser.parse_args(argv)
    stale = []
    for page, markers, block, source in blocks(args.report):
        path = ROOT / page
        text = path.read_text(encoding="utf-8")
        new = replace_block(text, block, page, markers)
        if new == text:
            continue
        if args.check:
            stale.append(f"{page} ({source.name})")
        else:
            path.write_text(new, encoding="utf-8")
            print(f"rewrote the table of {source.name} in {page}")
    if stale:
        print(f"out of date with their reports: {', '.join(stale)} "
              f"(run python bench/render_results.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
