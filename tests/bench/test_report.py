"""fastgrad.bench.report: the report's schema, its text and its files."""

from __future__ import annotations

import json
import os

import pytest

from fastgrad.bench.report import (
    OLD_SCHEMAS,
    SCHEMA,
    check_comparable,
    check_output_path,
    format_report,
    format_spread,
    load_json,
    newest_report,
    save_json,
    table,
)
from tests.bench.helpers import RESULTS


def test_save_json_is_atomic(quick_report, tmp_path, monkeypatch):
    _, d = quick_report
    report = load_json(d / "r.json")
    path = tmp_path / "r.json"
    save_json(report, path)
    before = path.read_bytes()
    assert load_json(path) == report

    def fails(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fails)
    with pytest.raises(OSError, match="disk full"):
        save_json({**report, "mode": "changed"}, path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["r.json"]


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "not valid JSON"),
    ('{"schema": "something-else/1"}', "not a fastgrad bench report"),
    ("[1, 2]", "not a fastgrad bench report"),
])
def test_load_json_refuses_what_is_not_a_report(tmp_path, content, message):
    (tmp_path / "r.json").write_text(content)
    with pytest.raises(ValueError, match=message):
        load_json(tmp_path / "r.json")


def test_output_paths_are_checked_before_measuring(tmp_path):
    assert check_output_path(tmp_path / "r.json", "--json") == tmp_path / "r.json"
    with pytest.raises(ValueError, match="--plot .*is a directory"):
        check_output_path(tmp_path, "--plot")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        check_output_path(tmp_path / "no" / "r.json", "--json")


def test_report_text(quick_report):
    _, d = quick_report
    report = load_json(d / "r.json")
    text = format_report(report)
    lines = text.splitlines()
    assert lines[0].startswith("fastgrad bench (quick): 784-5-10 sigmoid, batch 3, 3,985 params")
    for heading in ("validation against the reference", "time per gradient",
                    "thread scaling" if len(report["ceiling"]["rows"]) > 1 else "note:",
                    "phases at 1 thread"):
        assert any(line.startswith(heading) for line in lines), heading
    assert lines[-1].startswith("all methods agree with the reference; ")
    assert "start-up:" not in text  # --no-compile


def test_table_and_spread_text():
    assert table(("a", "bb"), [(1, "x"), ("long", None)]) == ["a     bb", "1     x",
                                                               "long  None"]
    assert format_spread([0.97, 1.12]) == "-3%/+12%" and format_spread(None) == "-"


def test_workloads_are_comparable_only_when_the_same(quick_report):
    _, d = quick_report
    report = load_json(d / "r.json")
    check_comparable(report, report["workload"])
    for change in ({"batch": 100}, {"h": 1e-3}, {"seed": 1}, {"data": "fashion"}):
        with pytest.raises(ValueError, match="not comparable"):
            check_comparable(report, {**report["workload"], **change})


def test_newest_report_is_found_under_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert newest_report() is None  # no bench/results here
    folder = tmp_path / "bench" / "results"
    folder.mkdir(parents=True)
    for name, created in (("b-old.json", "2026-02-01T00:00:00+00:00"),
                          ("a-new.json", "2026-03-01T00:00:00+00:00")):
        (folder / name).write_text(json.dumps({"schema": SCHEMA, "created": created}))
    (folder / "z-other-benchmark.json").write_text(json.dumps({"rows": []}))  # not a report
    (folder / "notes.txt").write_text("{}")
    assert newest_report() == folder.relative_to(tmp_path) / "a-new.json"
    assert newest_report(RESULTS).parent == RESULTS  # the checkout's own, by argument
    # a deeper net's report is newer, but the 784-50-10 baseline is asked for
    (folder / "b-old.json").write_text(json.dumps(
        {"schema": SCHEMA, "created": "2026-02-01T00:00:00+00:00",
         "workload": {"layers": [784, 50, 10]}}))
    (folder / "c-deep.json").write_text(json.dumps(
        {"schema": SCHEMA, "created": "2026-04-01T00:00:00+00:00",
         "workload": {"layers": [784, 100, 100, 10]}}))
    assert newest_report().name == "c-deep.json"
    assert newest_report(layers=[784, 50, 10]).name == "b-old.json"


def test_the_saved_baseline_is_a_report():
    old = load_json(RESULTS / "epyc-2core-2026-11-30.json")
    assert old["schema"] in OLD_SCHEMAS and old["schema"] != SCHEMA
    json.dumps(old)


def test_saved_report_names_no_local_folder(tmp_path):
    report = {"schema": SCHEMA, "workload": {"description": "mnist test digits 0..2 from "
                                                            "/home/someone/data/mnist"}}
    save_json(report, tmp_path / "r.json")
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["workload"]["description"] == "mnist test digits 0..2 from a local copy"
