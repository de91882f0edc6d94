"""Packaging: the wheel installs `fastgrad` only; the book's `dataset/` works from a checkout."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _http import dead_url  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# what a build reads; caches and compiled kernels are left behind
SOURCES = ("pyproject.toml", "README.md", "fastgrad", "dataset")
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.nbi", "*.nbc", "*.egg-info")


def _can_build_wheels() -> str | None:
    """Why a wheel cannot be built offline here, or None."""
    if importlib.util.find_spec("pip") is None:
        return "pip is not installed"
    try:
        version = importlib.metadata.version("setuptools")
    except importlib.metadata.PackageNotFoundError:
        return "setuptools is not installed"
    # setuptools < 70.1 builds wheels only with the separate `wheel` package
    major, minor = (int("".join(c for c in p if c.isdigit()) or 0)
                    for p in (version.split(".") + ["0"])[:2])
    if (major, minor) < (70, 1) and importlib.util.find_spec("wheel") is None:
        return f"setuptools {version} needs the `wheel` package, which is not installed"
    return None


def test_wheel_installs_fastgrad_only(tmp_path):
    why = _can_build_wheels()
    if why:
        pytest.skip(f"cannot build the wheel offline: {why} (pip install -e '.[test]')")
    # build from a copy: an in-tree build would leave build/ and *.egg-info in the checkout
    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=IGNORE)
        else:
            shutil.copy2(REPO / name, src / name)
    out = tmp_path / "wheels"
    env = {**os.environ, "PIP_NO_INPUT": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", "--quiet", "--wheel-dir", str(out), str(src)],
        capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = out.glob("fastgrad-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        (top_level,) = [n for n in names if n.endswith(".dist-info/top_level.txt")]
        assert zf.read(top_level).decode().split() == ["fastgrad"]
    tops = {n.split("/")[0] for n in names}
    dist_info = {t for t in tops if t.endswith(".dist-info")}
    assert len(dist_info) == 1 and tops - dist_info == {"fastgrad"}, sorted(tops)
    # and all of fastgrad: every module of the source tree, subpackages included
    modules = {p.relative_to(src).as_posix() for p in (src / "fastgrad").rglob("*.py")}
    assert modules <= set(names), sorted(modules - set(names))
    assert "fastgrad/kernels/__init__.py" in names and "fastgrad/commands/check.py" in names


def test_book_script_beside_the_checkout(tmp_path):
    # the book runs ch04/train_neuralnet.py from inside ch04/, a folder beside dataset/:
    # sys.path.append(os.pardir) makes the checkout's dataset/ importable
    script = tmp_path / "book_script.py"
    script.write_text(
        "import os, sys\n"
        "sys.path.append(os.pardir)\n"
        "from dataset.mnist import img_size, init_mnist, load_mnist, train_num\n"
        "import dataset.mnist\n"
        "from fastgrad.data import DownloadError\n"
        "print(os.path.realpath(dataset.mnist.__file__))\n"
        "print(img_size, train_num, callable(init_mnist))\n"
        "try:\n"
        "    load_mnist(normalize=True, flatten=True, one_hot_label=True)\n"
        "except DownloadError as exc:\n"
        "    print('DownloadError:', str(exc).splitlines()[0])\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # empty cache, unreachable mirror: the shim's call reaches fastgrad.data and fails there
    env.update(FASTGRAD_DATA_DIR=str(tmp_path / "cache"), FASTGRAD_MNIST_MIRRORS=dead_url())
    folder = REPO / "tests"  # any folder of the checkout's top level works like ch04/
    proc = subprocess.run([sys.executable, str(script)], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == os.path.realpath(REPO / "dataset" / "mnist.py")
    assert lines[1] == "784 60000 True"
    assert lines[2].startswith("DownloadError: could not get a verified train-images")
