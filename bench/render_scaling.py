"""Render a saved ``bench/distributed_scaling.py`` run into the Dask guide's tables.

    python bench/render_scaling.py                  # the newest full run in bench/results/
    python bench/render_scaling.py RUN.json         # a given run
    python bench/render_scaling.py --check          # exit 1 if the page differs from the JSON

The block between ``<!-- scaling-table:start -->`` and ``<!-- scaling-table:end -->``
in ``docs/guide/distributed.md`` is rewritten from the run: the measured
figures against their targets, the projection to more workers, and the date,
CPU, load and command under them, so that no figure on that page is typed by
hand. "Newest" is by the run's date, then its file name; ``--smoke`` runs are
passed over (their sizes measure nothing), and are rendered only when named,
marked as such. Without any saved run the block says how to make one.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from render_results import fmt_ratio, fmt_seconds, strip_paths

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PAGE = "docs/guide/distributed.md"
MARKERS = ("<!-- scaling-table:start -->", "<!-- scaling-table:end -->")
#: File names of the runs, as ``distributed_scaling.py`` writes them.
PATTERN = "distributed-*.json"
NONE_YET = ("No scaling run is saved in `bench/results/` yet: run "
            "`python bench/distributed_scaling.py` on a quiet machine, then "
            "`python bench/render_scaling.py`.")


def load(path):
    """The run saved at ``path``; ``ValueError`` unless it is a scaling run."""
    path = Path(path)
    record = json.loads(path.read_text(encoding="utf-8"))
    keys = ("date", "cpu", "command", "ceiling", "net", "projection", "plain_f", "summary",
            "targets")
    missing = [k for k in keys if not isinstance(record, dict) or k not in record]
    if missing:
        raise ValueError(f"{path.name} is not a distributed_scaling.py run (no "
                         f"{', '.join(missing)})")
    return record


def newest(results=RESULTS):
    """The newest full (not ``--smoke``) run in ``results``, or None."""
    found = []
    for path in sorted(Path(results).glob(PATTERN)):
        try:
            record = load(path)
        except (ValueError, json.JSONDecodeError):
            continue
        if not record.get("smoke"):
            found.append((record["date"], path.name, path))
    return max(found)[2] if found else None


def _met(ok):
    return "met" if ok else "**missed**"


def _percent(x):
    return f"{x:.1%}" if x < 0.1 else f"{x:.0%}"


def _figures(record):
    """The measured figures and their targets, as markdown table lines."""
    c, net, f, s, t = (record[k] for k in ("ceiling", "net", "plain_f", "summary", "targets"))
    met = s["met"]
    per_chunk = net["seconds_here"] / net["chunks_1worker"]
    rounds = len(net.get("seconds_here_rounds", [])) or 1
    best = f" (best of {rounds} rounds, in turn)" if rounds > 1 else ""
    return [
        "| figure | measured | target |",
        "|---|---:|---:|",
        f"| the machine's 2-process ceiling: {c['tasks']} arithmetic tasks on 1 process, on 2 "
        f"| {fmt_seconds(c['seconds_1process'])}, {fmt_seconds(c['seconds_2processes'])}: "
        f"{fmt_ratio(s['ceiling_speedup_2_processes'])} | — |",
        f"| reference gradient of the {net['net']} net, batch {net['batch']} "
        f"({net['parameters']:,} parameters), here on one core{best} | "
        f"{fmt_seconds(net['seconds_here'])} | — |",
        f"| the same on `local:1`, {net['chunks_1worker']} chunks of "
        f"{net['chunk_size_1worker']:,}{best} | {fmt_seconds(net['seconds_1worker'])} | — |",
        f"| the same on `local:2`, {net['chunks_2worker']} chunks of "
        f"{net['chunk_size_2worker']:,} | {fmt_seconds(net['seconds_2worker'])}: "
        f"{fmt_ratio(s['speedup_2_workers'])} vs 1 worker | — |",
        f"| efficiency of 2 workers: speed-up / ceiling | {s['efficiency_vs_ceiling']:.2f} "
        f"| ≥ {t['efficiency_vs_ceiling']:g}: {_met(met['efficiency'])} |",
        f"| scheduling overhead per chunk, share of a chunk's {fmt_seconds(per_chunk)} "
        f"| {fmt_seconds(s['overhead_per_chunk_seconds'])} = "
        f"{_percent(s['overhead_share_of_chunk'])} "
        f"| ≤ {t['overhead_share_of_chunk']:.0%}: {_met(met['overhead'])} |",
        f"| a no-op task through client, scheduler and worker | "
        f"{fmt_seconds(net['seconds_per_noop_task'])} | — |",
        f"| plain-Python `f` ({f['f']}, batch {f['batch']}, {f['parameters']:,} parameters): "
        f"fastgrad on `local:2`, SciPy `approx_derivative` on a 2-process pool "
        f"| {fmt_seconds(f['seconds_fastgrad_local2'])}, {fmt_seconds(f['seconds_scipy_pool2'])}:"
        f" {fmt_ratio(f['speedup'])} | ≥ {fmt_ratio(t['f_speedup_vs_scipy'])}: "
        f"{_met(met['f_vs_scipy'])} |",
    ]


def _projection(record):
    """The projection to 16 and 64 workers, for this job and a one-core-hour job."""
    lines = ["| job | workers | chunks | compute per chunk | projected time | projected "
             "efficiency |", "|---|---:|---:|---:|---:|---:|"]
    jobs = (("this net's reference", "this_job"), ("one core-hour", "one_hour_job"))
    for label, key in jobs:
        for p in record["projection"][key]:
            lines.append(f"| {label} | {p['workers']} | {p['chunks']:,} | "
                         f"{fmt_seconds(p['chunk_seconds'])} | {fmt_seconds(p['seconds'])} | "
                         f"{_percent(p['efficiency'])} |")
    return lines


def render(record, source):
    """The markdown between the markers for ``record`` (saved at ``source``)."""
    name = Path(source).resolve()
    shown = name.relative_to(ROOT).as_posix() if name.is_relative_to(ROOT) else name.name
    load_avg = record.get("load_average")
    lines = [f"<!-- generated by `python bench/render_scaling.py` from {shown}: do not edit -->"]
    if record.get("smoke"):
        lines += ["", "**A `--smoke` run: its sizes are too small for these figures to mean "
                  "anything.**", ""]
    lines += [*_figures(record), "",
              "Projection (a model, not a measurement: the formula below, with the measured "
              "overhead per chunk and cost per task):", "", *_projection(record), "",
              f"Measured {record['date']} on {record['cpu']} ({record['cores']} logical CPUs"
              + (f"; load average {load_avg[0]:.2f} at the start" if load_avg else "") + "). "
              f"Command: `{strip_paths(record['command'])}`. Run: `{shown}`."]
    return "\n".join(lines)


def _split(page):
    """``(head, block, tail)`` of the page's text around the markers."""
    start, end = MARKERS
    if page.count(start) != 1 or page.count(end) != 1:
        raise ValueError(f"{PAGE} must hold exactly one {start} ... {end} block")
    head, rest = page.split(start, 1)
    inside, tail = rest.split(end, 1)
    return head, inside.strip("\n"), tail


def replace_block(page, text):
    """``page`` with its block replaced by ``text``."""
    head, _, tail = _split(page)
    start, end = MARKERS
    return f"{head}{start}\n{text}\n{end}{tail}"


def block(run_path=None):
    """``(block, source)``: the page's block from ``run_path`` (default: the newest full run;
    without one, :data:`NONE_YET` and None)."""
    source = Path(run_path) if run_path else newest()
    if source is None:
        return NONE_YET, None
    return render(load(source), source), source


def main(argv=None):
    """Rewrite (or with ``--check`` verify) the page's block; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", nargs="?", help="saved run (default: the newest full "
                        f"bench/results/{PATTERN})")
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 if the page's block differs from the run")
    args = parser.parse_args(argv)
    text, source = block(args.run)
    path = ROOT / PAGE
    page = path.read_text(encoding="utf-8")
    new = replace_block(page, text)
    if new == page:
        return 0
    if args.check:
        print(f"{PAGE} is out of date with {source.name if source else 'bench/results'} "
              "(run python bench/render_scaling.py)", file=sys.stderr)
        return 1
    path.write_text(new, encoding="utf-8")
    print(f"rewrote the scaling tables of {PAGE}" + (f" from {source.name}" if source else ""))
    return 0


def current_block():
    """What the page holds between the markers now."""
    return _split((ROOT / PAGE).read_text(encoding="utf-8"))[1]


if __name__ == "__main__":
    sys.exit(main())
