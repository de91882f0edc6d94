"""``fastgrad bench``: the flags, checked before anything is measured, and the exit status."""

from __future__ import annotations

import json
import sys

import pytest

from fastgrad import config
from fastgrad.arch import ACTIVATIONS
from fastgrad.bench.compare import compare
from fastgrad.bench.report import load_json
from fastgrad.bench.timing import thread_counts
from fastgrad.cli import build_parser, main
from fastgrad.methods import METHODS
from tests.bench.helpers import TINY


def test_cli_choices_match_registry(monkeypatch, capsys):
    parse = build_parser().parse_args
    assert parse(["bench", "--methods", *METHODS]).methods == list(METHODS)
    for activation in ACTIVATIONS:
        assert parse(["bench", "--activation", activation]).activation == activation
    # a method added to the registry is a choice at once: the names are not copied by hand
    monkeypatch.setitem(METHODS, "another", METHODS["jit"])
    assert build_parser().parse_args(["bench", "--methods", "another"]).methods == ["another"]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["bench", "--help"])
    assert "Choices: reference, jit, incremental, backprop, another" in " ".join(
        capsys.readouterr().out.split())


def test_cli_verify_only(capsys):
    assert main(["bench", "--verify-only", *TINY, "--synthetic"]) == 0
    out = capsys.readouterr().out
    assert "time per gradient" not in out and "all methods agree" in out
    rows = [line.split() for line in out.splitlines() if line.strip().endswith(" ok")]
    validated = {(r[0], r[1]) for r in rows}
    for t in thread_counts():  # compiled methods at every thread count
        assert ("jit", str(t)) in validated and ("incremental", str(t)) in validated
    assert ("backprop", "-") in validated


def test_cli_compare_flags_regressions(quick_report, tmp_path, capsys):
    _, d = quick_report
    report = load_json(d / "r.json")
    for absolute in (False, True):
        rows = compare(report, report, absolute=absolute)["rows"]
        assert rows and all(r["verdict"] in ("ok", "anchor") for r in rows)
    argv = ["bench", "--quick", *TINY, "--no-compile", "--methods", "incremental",
            "--threads", "1", "--compare"]
    # incremental was 10x faster relative to the anchors: flagged by the default compare
    fast = json.loads(json.dumps(report))
    for r in fast["timings"]:
        if r["method"] == "incremental":
            r["median_s"] /= 10
            r["times_s"] = [s / 10 for s in r["times_s"]]
    (tmp_path / "fast.json").write_text(json.dumps(fast))
    capsys.readouterr()
    rc = main([*argv, str(tmp_path / "fast.json")])
    out = capsys.readouterr().out
    assert rc == 1 and "REGRESSION" in out and "compared with" in out and "normalised" in out
    # everything 10x faster on another CPU: --compare-absolute flags it and warns
    other = json.loads(json.dumps(report))
    other["environment"]["cpu"] = "Some Other CPU"
    for r in other["timings"]:
        r["median_s"] /= 10
        r["times_s"] = [s / 10 for s in r["times_s"]]
    (tmp_path / "other.json").write_text(json.dumps(other))
    rc = main([*argv, str(tmp_path / "other.json"), "--compare-absolute"])
    out = capsys.readouterr().out
    assert rc == 1 and "REGRESSION" in out and "WARNING: different CPU model" in out
    rows = compare(fast, report)["rows"]  # the other way round: faster
    assert rows and not any(r["regression"] for r in rows)


@pytest.mark.parametrize(("argv", "message"), [
    (["--threads", "0"], "threads must be between 1 and"),
    (["--threads", str(config.max_threads() + 1)], "threads must be between 1 and"),
    (["--batch", "0"], "--batch must be at least 1"),
    (["--repeats", "0"], "--repeats must be at least 1"),
    (["--json", "/nonexistent-dir/r.json"], "does not exist"),
    (["--plot", "/nonexistent-dir/r.png"], "does not exist"),
    (["--compare", "/nonexistent-dir/base.json"], "No such file"),
    (["--verify-only", "--compare", "x.json"], "need timings"),
    (["--compare-absolute"], "--compare-absolute needs --compare"),
])
def test_cli_bad_input_fails_fast(argv, message, capsys):
    assert main(["bench", *TINY, "--no-compile", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "reference:" not in err  # nothing was measured


@pytest.mark.parametrize(("argv", "message"), [
    (["--methods", "nope"], "invalid choice: 'nope'"),
    (["--blas-threads", "0"], "positive integer or 'auto'"),
    (["--threads", "two"], "invalid int value"),
])
def test_cli_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bench", *argv])
    assert exc.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "not valid JSON"),
    ('{"schema": "something-else/1"}', "not a fastgrad bench report"),
])
def test_cli_bad_baseline(tmp_path, content, message, capsys):
    (tmp_path / "base.json").write_text(content)
    assert main(["bench", *TINY, "--compare", str(tmp_path / "base.json")]) == 2
    assert message in capsys.readouterr().err


def test_cli_no_phases_and_bad_network_flags(capsys):
    assert main(["bench", "--verify-only", *TINY, "--synthetic", "--no-phases",
                 "--threads", "1"]) == 0
    assert "phases at 1 thread" not in capsys.readouterr().out
    for argv, message in ((["--hidden", "0"], "--hidden widths must be at least 1"),
                          (["--jit-batch", "4"], "go with --targets"),
                          (["--targets", "--jit-batch", "0"], "--jit-batch must be at least 1"),
                          (["--activation", "tanh"], None), (["--data", "cifar"], None)):
        if message is None:
            with pytest.raises(SystemExit):
                main(["bench", *argv])
            continue
        assert main(["bench", *argv]) == 2
        assert message in capsys.readouterr().err


def test_cli_targets_file_is_found_or_named(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no bench/targets.toml here
    assert main(["bench", "--targets", "--synthetic"]) == 2
    err = capsys.readouterr().err
    assert "no FILE given and no bench/targets.toml under the current directory" in err
    assert main(["bench", "--targets", "missing.toml", "--synthetic"]) == 2
    assert "targets file missing.toml not found" in capsys.readouterr().err
    (tmp_path / "bad.toml").write_text("levels = [")
    assert main(["bench", "--targets", "bad.toml", "--synthetic"]) == 2
    err = capsys.readouterr().err
    assert "bad.toml: not valid TOML" in err and "reference" not in err  # nothing measured
    assert main(["bench", "--targets", "bad.toml", "--plot", "p.png"]) == 2
    assert "--targets takes neither" in capsys.readouterr().err


def test_cli_plot_skipped_without_matplotlib(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    rc = main(["bench", "--quick", *TINY, "--synthetic", "--no-compile", "--no-phases",
               "--threads", "1", "--repeats", "1", "--plot", str(tmp_path / "p.png")])
    out = capsys.readouterr().out
    assert rc == 0 and "plot skipped: matplotlib is not installed" in out
    assert not (tmp_path / "p.png").exists()


def test_help_names_the_default_targets_file(capsys):
    from fastgrad.bench.targets import DEFAULT_FILE

    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"(default: {DEFAULT_FILE.as_posix()} under the current directory" in help_text
    assert "issue" not in help_text


def test_saved_report_names_its_command(quick_report):
    _, d = quick_report
    report = json.loads((d / "r.json").read_text())
    assert report["command"].startswith("fastgrad bench --quick ")
    assert "--json" in report["command"]
