"""Numba configuration: thread defaults and the kernels' source-keyed cache."""

from __future__ import annotations

import shutil

import numba
import pytest

from fastgrad import config, kernels


def test_kernel_digest_follows_every_kernel_source(tmp_path):
    root = tmp_path / "pkg"
    shutil.copytree(config._PACKAGE / "kernels", root / "kernels")
    shutil.copy(config._PACKAGE / "config.py", root / "config.py")
    before = config.kernel_sources_digest(root)
    assert before == config.kernel_sources_digest(config._PACKAGE)
    # a change in a file that other kernels call (not their own file) must show
    forward = root / "kernels" / "forward.py"
    forward.write_text(forward.read_text() + "\n# changed\n")
    assert config.kernel_sources_digest(root) != before


def test_kernels_cache_in_a_digest_folder_and_leave_numba_config_alone():
    folder = config.kernel_cache_dir()
    assert folder.name == f"fastgrad-kernels-{config.kernel_sources_digest()}"
    dispatcher = kernels.incremental.hidden_sweep
    assert dispatcher._cache._cache_path.startswith(str(folder))
    assert numba.config.CACHE_DIR != str(folder)


def test_default_threads(monkeypatch):
    monkeypatch.delenv(config.THREADS_ENV, raising=False)
    assert config.default_threads() == config.max_threads()
    monkeypatch.setenv(config.THREADS_ENV, "1")
    assert config.default_threads() == 1
    monkeypatch.setenv(config.THREADS_ENV, "many")
    with pytest.raises(ValueError, match=config.THREADS_ENV):
        config.default_threads()
    assert config.n_chunks(2, 3) == 3 and config.n_chunks(2, 1000) == 8
