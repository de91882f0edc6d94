"""The mutation set of ``tools/mutate.py`` follows the code: every pattern and test exists.

Running the mutants takes many minutes and is not part of the suite; this
check is, so a moved line or a renamed test shows up at once instead of as a
mutation that silently stopped applying.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def mutate():
    spec = importlib.util.spec_from_file_location("mutate", ROOT / "tools" / "mutate.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setitem(sys.modules, "mutate", module)  # its dataclasses look it up there
    spec.loader.exec_module(module)
    yield module
    monkeypatch.undo()


def test_every_mutation_applies_once_and_names_existing_tests(mutate):
    assert mutate.problems(mutate.MUTATIONS) == []
    names = [m.name for m in mutate.MUTATIONS]
    assert len(set(names)) == len(names)


def test_a_stale_mutation_fails_before_any_test_runs(mutate, monkeypatch, capsys):
    good = mutate.MUTATIONS[0]
    stale = [
        mutate.Mutation("stale pattern", good.path, "no such line in the file", "x", good.tests),
        mutate.Mutation("twice", "fastgrad/kernels/update.py", "bad = 0\n", "x", good.tests),
        mutate.Mutation("gone file", "fastgrad/nowhere.py", "a", "b", good.tests),
        mutate.Mutation("gone tests", good.path, good.old, good.new,
                        ("tests/test_nowhere.py", f"{good.tests[0]}::test_nowhere")),
    ]
    twice = (ROOT / "fastgrad/kernels/update.py").read_text().count("bad = 0\n")
    assert twice > 1
    assert mutate.problems(stale) == [
        f"stale pattern: its pattern occurs 0 times in {good.path}, not once",
        f"twice: its pattern occurs {twice} times in fastgrad/kernels/update.py, not once",
        "gone file: fastgrad/nowhere.py does not exist",
        "gone tests: test file tests/test_nowhere.py does not exist",
        f"gone tests: {good.tests[0]} has no test test_nowhere"]

    def no_run(*args, **kwargs):
        raise AssertionError("a broken mutation set must not run any test")

    monkeypatch.setattr(mutate, "MUTATIONS", stale)
    monkeypatch.setattr(mutate, "run_tests", no_run)
    monkeypatch.setattr(mutate, "copy_tree", no_run)
    assert mutate.main(["-k", "stale"]) == 2
    err = capsys.readouterr().err
    assert "broken mutation: stale pattern: its pattern occurs 0 times" in err
    assert mutate.main(["--list"]) == 2  # listing says so too
    assert mutate.main(["-k", "no mutation has this name"]) == 2
