"""The code's layout: private names stay private, bench/ scripts leave sys.path alone.

Walks ``fastgrad/``, ``bench/`` and ``tools/`` with :mod:`ast`. A module that
needs another's helper gets it made public where it belongs (or the helper
moves); the checkout's ``bench/`` scripts find each other as plain modules
(their folder is on the path when run, and under pytest). Only the bench
command imports :mod:`fastgrad.bench`, and no targets are written into the
package: their levels are data, read from a targets file.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WALKED = ("fastgrad", "bench", "tools")


def _private(name):
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_uses(source):
    """``(line, text)`` for each use of another module's private name in ``source``.

    ``from M import _name`` (relative imports too), and ``M._name`` where ``M``
    (or the first name of a chain ``M.a._name``) was bound by an import.
    """
    tree = ast.parse(source)
    imported, found = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            for a in node.names:
                imported.add(a.asname or a.name)
                if _private(a.name):
                    found.append((node.lineno, f"from {'.' * node.level}{node.module or ''} "
                                               f"import {a.name}"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            root = node.value
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Name) and root.id in imported:
                found.append((node.lineno, f"{ast.unparse(node)}"))
    return sorted(found)


def path_edits(source):
    """``(line, text)`` for each change to ``sys.path`` (or ``site.addsitedir``) in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        target = None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            target = node.func.value if node.func.attr in (
                "insert", "append", "extend", "remove", "pop", "clear") else None
            if ast.unparse(node.func) == "site.addsitedir":
                target = node.func
        elif isinstance(node, (ast.Assign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            target = next((t.value if isinstance(t, ast.Subscript) else t for t in targets
                           if ast.unparse(t.value if isinstance(t, ast.Subscript) else t)
                           == "sys.path"), None)
        if target is not None and ast.unparse(target) in ("sys.path", "site.addsitedir"):
            found.append((node.lineno, ast.unparse(node).splitlines()[0]))
    return sorted(found)


def _sources(*folders):
    for folder in folders:
        for path in sorted((REPO / folder).rglob("*.py")):
            yield path.relative_to(REPO).as_posix(), path.read_text()


def test_the_checks_catch_what_they_look_for():
    bad = ("import fastgrad.bench.report as r\nfrom fastgrad.commands.check import _sample_arg\n"
           "from . import _helper\nx = r._table([], [])\nimport os\nos.path._joinrealpath\n")
    assert [line for line, _ in private_uses(bad)] == [2, 3, 4, 6]
    fine = ("from fastgrad import config as _config\nclass A:\n    def f(self):\n"
            "        return self._x, A.__name__\n_y = 1\nprint(_y)\n")
    assert private_uses(fine) == []
    edits = ("import sys\nsys.path.insert(0, 'x')\nsys.path.append('y')\nsys.path += ['z']\n"
             "sys.path[:0] = ['w']\nsys.path = []\nimport site\nsite.addsitedir('v')\n")
    assert [line for line, _ in path_edits(edits)] == [2, 3, 4, 5, 6, 8]
    assert path_edits("import sys\nprint(sys.path[0])\nparts.insert(0, 1)\n") == []


@pytest.mark.parametrize(("path", "source"), list(_sources(*WALKED)),
                         ids=lambda v: v if v.endswith(".py") else "")
def test_no_private_names_across_modules(path, source):
    assert private_uses(source) == [], f"{path} uses another module's private names"


@pytest.mark.parametrize(("path", "source"), list(_sources("bench")),
                         ids=lambda v: v if v.endswith(".py") else "")
def test_bench_scripts_leave_sys_path_alone(path, source):
    assert path_edits(source) == [], f"{path} edits sys.path"


def test_only_the_bench_command_imports_the_bench_package():
    importers = {path for path, source in _sources("fastgrad")
                 if not path.startswith("fastgrad/bench/")
                 and any(m == "fastgrad.bench" or m.startswith("fastgrad.bench.")
                         for m in _imports(source))}
    assert importers == {"fastgrad/commands/bench.py"}


def _imports(source):
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module


def test_the_bench_package_draws_nothing_itself():
    for path, source in (*_sources("fastgrad/bench"), *_sources("bench")):
        assert not any(m.split(".")[0] == "matplotlib" for m in _imports(source)), (
            f"{path}: figures belong to fastgrad/plots.py")


def test_no_targets_written_into_the_package():
    import tomllib

    levels = tomllib.loads((REPO / "bench" / "targets.toml").read_text())["levels"]
    for path, source in _sources("fastgrad"):
        assert not re.search(r"\bissue[ -]?\d", source, re.IGNORECASE), path
        words = {node.value for node in ast.walk(ast.parse(source))
                 if isinstance(node, ast.Constant) and isinstance(node.value, str)}
        for level in levels:  # as a value, or next to a threshold: "must <= 10%", "(stretch"
            named = re.compile(rf"^{level}$|\b{level}\s*(<|>|/|\))|(\(|/)\s*{level}\b")
            assert not any(named.search(w) for w in words), f"{path} names the level {level!r}"
