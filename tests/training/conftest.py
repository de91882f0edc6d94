"""Fixtures of the training tests: no real data set, and a saved chapter-4 checkpoint."""

from __future__ import annotations

import pytest

from fastgrad import data
from tests.training.helpers import run


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """No test reaches a real data set: loading one fails the test."""
    # never the user cache, the Debian copy or the network
    monkeypatch.setenv(data.ENV_DATA_DIR, str(tmp_path / "data-cache"))
    monkeypatch.setattr(data, "SYSTEM_DIRS", {"mnist": (), "fashion": ()})

    def no_loading(*args, **kwargs):
        raise AssertionError("a test tried to load a real data set")

    monkeypatch.setattr(data, "load_mnist", no_loading)


@pytest.fixture
def saved(tmp_path):
    """The checkpoint of a 12-step chapter-4 run."""
    path = tmp_path / "c.npz"
    run(iters=12, checkpoint=path)
    return path
