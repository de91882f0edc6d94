"""The README and the docs say what the code does: short, generated where they can be, built.

- README: within one screen of the top a newcomer finds both commands, and the
  test command is the one CI runs; its example runs.
- The benchmark tables in README.md and docs/performance.md are exactly what
  ``bench/render_results.py`` renders from the newest saved report.
- Every ``--flag`` the docs give a subcommand exists in that subcommand's parser.
- ``mkdocs build --strict`` succeeds: no broken link, anchor or reference.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fastgrad.cli import COMMANDS, build_parser

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
INSTALL_RUN = ("python3 -m venv .venv && . .venv/bin/activate && pip install -e . && "
               "fastgrad check && fastgrad bench --quick")
INSTALL_TEST = ('python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[test]" && '
                "python -m pytest -W error --benchmark-disable")
# What the repository's own docs must never say: how it was built, or where on someone's disk.
WORK_LOG = re.compile(r"issue #?[0-9]+|/work/|this session|not in the repository", re.I)


def _render_module():
    spec = importlib.util.spec_from_file_location("render_results",
                                                  ROOT / "bench" / "render_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


render_results = _render_module()


def _pages():
    return [README] + sorted(DOCS.rglob("*.md"))


# --- README ---------------------------------------------------------------------------

def test_readme_fits_and_starts_with_the_two_commands():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; move detail into docs/"
    head = lines[:60]
    assert INSTALL_RUN in head and INSTALL_TEST in head


def test_readme_test_command_is_what_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert 'pip install --quiet -e ".[test]"' in ci
    assert "python -m pytest -W error --benchmark-disable" in ci


def test_readme_example_runs():
    """The README's Python blocks, in order: the net's check and the gradcheck verdict."""
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks, "README.md has no Python example"
    namespace = {"__name__": "readme_example"}
    exec(compile("\n".join(blocks), str(README), "exec"), namespace)
    # numerical and analytic gradients agree to the book's 1e-7 inside the log
    assert 0 < namespace["diff"] < 1e-6
    report = namespace["report"]
    assert not report and report.n_failed == 1 and report.worst[0].index == (3,)
    # the report as README shows it (its time and the estimate's last digits aside)
    shown = re.search(r"```text\n(gradcheck.*?)```", text, re.S).group(1).splitlines()
    printed = str(report)
    assert shown[0].split("; h =")[0] in printed and shown[1] in printed
    assert shown[3].split("e-03")[0] in printed
    assert np.allclose(namespace["g"], namespace["a"].T @ (namespace["a"] @ namespace["w"]
                                                           - namespace["b"]) / 50, atol=1e-8)


def test_the_convnet_gradient_check_prints_what_the_guide_says(capsys):
    """The chapter-7 guide's backprop check runs, and its output block is what it prints."""
    text = (DOCS / "guide" / "nets.md").read_text(encoding="utf-8")
    chapter = text[text.index("## Chapter 7"):]
    code, printed = re.search(r"```python\n(.*?)```.*?```text\n(.*?)```",
                              chapter[chapter.index("as chapter 5 checks"):], re.S).groups()
    exec(compile(code, "nets.md", "exec"), {"__name__": "convnet_example"})
    got = [line.split() for line in capsys.readouterr().out.splitlines()]
    want = [line.split() for line in printed.splitlines()]
    assert [name for name, _ in got] == [name for name, _ in want]
    # two digits printed; NumPy's exp may round differently on another CPU
    assert [float(v) for _, v in got] == pytest.approx([float(v) for _, v in want], rel=0.03)


def test_every_subcommand_in_the_readme_and_on_the_cli_page():
    readme = README.read_text(encoding="utf-8")
    cli = (DOCS / "cli.md").read_text(encoding="utf-8")
    for name in COMMANDS:
        assert re.search(rf"^fastgrad {name} ", readme, re.M), f"README: no line for {name}"
        assert f"## `fastgrad {name}`" in cli and f"<!-- cli-help: {name} -->" in cli


# --- generated tables -----------------------------------------------------------------

def test_bench_tables_are_rendered_from_the_newest_saved_report():
    blocks = render_results.blocks()
    assert {page for page, *_ in blocks} == {*render_results.PAGES, render_results.CONV_PAGE}
    assert any(source.name.startswith("convnet") for *_, source in blocks)
    for page, markers, want, source in blocks:
        got = render_results.block_of((ROOT / page).read_text(encoding="utf-8"), page, markers)
        assert got == want, f"{page} differs from {source.name}: run python bench/render_results.py"
    assert render_results.main(["--check"]) == 0


def test_the_convnet_table_names_its_sampled_loop_and_its_small_net():
    source = render_results.newest(net="convnet")
    text = render_results.render_convnet(render_results.load(source), source)
    assert "SimpleConvNet 1x28x28 -> 30 filters 5x5" in text
    assert "sampled and scaled" in text and "433,890 / " in text
    assert "small net: SimpleConvNet" in text and "| `jit` (compiled" in text


def _report(created, description="MNIST test digits 0..99", **extra):
    source = render_results.newest()
    report = json.loads(source.read_text(encoding="utf-8"))
    report["created"] = created
    report["workload"]["description"] = description
    report.update(extra)
    return report


def test_render_takes_every_figure_from_the_report():
    report = _report("2030-01-02T03:04:05+00:00")
    report.pop("command", None)  # a report from before reports recorded their command
    row = next(r for r in report["timings"] if r["method"] == "incremental" and r["main"])
    row.update(median_s=0.00123456, speedup_vs_reference=9876.6, cost_vs_backprop=4.321)
    report["environment"].update(cpu="Some CPU 9000", simd=["avx2"], logical_cpus=64)
    text = render_results.render(report, "elsewhere/run.json")
    assert "| `incremental` (the default) | 2 | 1.23 ms | 9,877× | 4.32× |" in text
    assert "Measured 2030-01-02" in text and "Some CPU 9000 (AVX2), 64 logical CPUs" in text
    assert "Command: not recorded in the report." in text
    assert "`fastgrad bench --json out.json`" in render_results.render(
        _report("2030-01-02T03:04:05+00:00", command="fastgrad bench --json out.json"), "r.json")


def test_render_prints_no_paths():
    report = _report("2030-01-02T03:04:05+00:00",
                     description="mnist test digits 0..99 from /home/someone/data/mnist",
                     command="fastgrad bench --json /tmp/run.json")
    text = render_results.render(report, "/somewhere/else/run.json")
    assert "/home" not in text and "/tmp" not in text and "/somewhere" not in text
    assert "mnist test digits 0..99;" in text and "`fastgrad bench --json`" in text
    assert render_results.strip_paths(r"digits in C:\data\mnist, 1/2 of them") == \
        "digits, 1/2 of them"


def test_newest_is_by_created_not_by_name(tmp_path):
    (tmp_path / "a-late.json").write_text(json.dumps(_report("2031-01-01T00:00:00+00:00")))
    (tmp_path / "z-early.json").write_text(json.dumps(_report("2030-01-01T00:00:00+00:00")))
    (tmp_path / "steps.json").write_text(json.dumps({"curves": []}))  # not a bench report
    conv = _report("2032-01-01T00:00:00+00:00")
    conv["workload"]["net"] = "convnet"  # newer, but not the headline net
    (tmp_path / "conv.json").write_text(json.dumps(conv))
    assert render_results.newest(tmp_path).name == "a-late.json"
    assert render_results.newest(tmp_path, net="convnet").name == "conv.json"
    with pytest.raises(FileNotFoundError):
        render_results.newest(tmp_path / "missing")


def test_a_hand_edited_table_is_caught():
    page = (ROOT / "docs" / "performance.md").read_text(encoding="utf-8")
    block = render_results.block_of(page)
    edited = render_results.replace_block(page, block.replace("ms |", "ms (fast!) |", 1))
    assert render_results.block_of(edited) != block
    assert render_results.replace_block(edited, block) == page
    with pytest.raises(ValueError, match="exactly one"):
        render_results.block_of(page.replace(render_results.END, ""))


# --- the command line as documented --------------------------------------------------

def _known_flags(command):
    text = subprocess.run([sys.executable, "-m", "fastgrad", command, "--help"],
                          capture_output=True, text=True, check=True, cwd=ROOT,
                          env={**os.environ, "COLUMNS": "200"}).stdout
    return set(re.findall(r"--[a-z][a-z0-9-]*", text))


def _invocations(text):
    """Every ``fastgrad COMMAND ...`` written in a page's code, as (command, rest)."""
    spans = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S):
        spans += block.replace("\\\n", " ").splitlines()
    spans += re.findall(r"`([^`]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
    found = []
    for span in spans:
        span = re.split(r"\s#\s", " ".join(span.split()))[0]  # a shell comment ends it
        for part in re.split(r"&&|;|\|\|", span):
            m = re.search(r"\bfastgrad (" + "|".join(COMMANDS) + r")\b(.*)", part)
            if m:
                found.append((m[1], m[2]))
    return found


def test_every_documented_flag_exists():
    known = {name: _known_flags(name) for name in COMMANDS}
    missing = []
    for page in _pages():
        for command, rest in _invocations(page.read_text(encoding="utf-8")):
            missing += [f"{page.name}: fastgrad {command} {flag}"
                        for flag in re.findall(r"--[a-z][a-z0-9-]*", rest)
                        if flag not in known[command]]
    # on the CLI page every flag in a command's section is that command's
    sections = re.split(r"^## ", (DOCS / "cli.md").read_text(encoding="utf-8"), flags=re.M)
    for section in sections[1:]:
        command = re.match(r"`fastgrad (\w+)`", section)[1]
        missing += [f"cli.md: fastgrad {command} {flag}"
                    for flag in re.findall(r"--[a-z][a-z0-9-]*", section)
                    if flag not in known[command]]
    assert not missing, "documented flags the parser does not have:\n" + "\n".join(missing)


def test_flag_check_can_fail():
    assert ("bench", " --quick --no-such-flag") in _invocations(
        "```bash\nfastgrad check && fastgrad bench --quick --no-such-flag  # x\n```")
    assert ("train", " --iters 5 --out x") in _invocations("`fastgrad train\n--iters 5 --out x`")


def test_cli_page_help_is_generated_from_the_parser():
    spec = importlib.util.spec_from_file_location("cli_help", DOCS / "hooks" / "cli_help.py")
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    page = hook.on_page_markdown("x\n<!-- cli-help: download -->\ny", None, None, None)
    assert "usage: fastgrad download" in page and "--mirror URL" in page
    assert set(build_parser().parse_args(["download"]).__dict__) >= {"dataset", "data_dir"}


# --- the site --------------------------------------------------------------------------

def test_docs_say_nothing_about_how_they_were_built():
    owned = _pages() + [ROOT / "mkdocs.yml", ROOT / "bench" / "render_results.py"]
    owned += sorted((ROOT / "bench" / "results").iterdir())
    hits = [f"{p.relative_to(ROOT)}:{n}: {line.strip()}" for p in owned
            for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
            if WORK_LOG.search(line)]
    assert not hits, "\n".join(hits)


def test_mkdocs_build_strict(tmp_path):
    """The whole site builds offline with no warning: links, anchors and API references resolve."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d",
                          str(tmp_path / "site")], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=180)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log
    assert "WARNING" not in log, log
    api = (tmp_path / "site" / "api" / "index.html").read_text(encoding="utf-8")
    for name in ("TwoLayerNet", "MultiLayerNet", "compute_gradient", "generic.numerical_gradient",
                 "gradcheck.gradcheck", "steps.step_sweep", "training.train"):
        assert f'id="fastgrad.{name}"' in api, name
    assert "usage: fastgrad bench" in (tmp_path / "site" / "cli" / "index.html").read_text(
        encoding="utf-8")
