"""bench/render_scaling.py: the Dask guide's scaling tables, rendered from a saved run."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys

import pytest

from tests.bench.helpers import REPO

HAS_DASK = importlib.util.find_spec("distributed") is not None


def _script(name):
    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# the script imports render_results as its sibling (bench/ is on the path when run)
sys.modules.setdefault("render_results", _script("render_results"))
render_scaling = _script("render_scaling")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """A real ``distributed_scaling.py --smoke`` run (LocalClusters of 1 and 2 workers,
    process pools: about half a minute)."""
    if not HAS_DASK:
        pytest.skip('needs pip install "fastgrad[distributed]"')
    path = tmp_path_factory.mktemp("scaling") / "distributed-scaling-smoke.json"
    # a process of its own: the script's process pools import it by name
    subprocess.run([sys.executable, "bench/distributed_scaling.py", "--smoke", "--out",
                    str(path)], cwd=REPO, check=True, timeout=600, capture_output=True)
    return path


def test_the_smoke_run_renders_every_figure_from_its_json(smoke_run):
    record = render_scaling.load(smoke_run)
    text = render_scaling.render(record, smoke_run)
    assert "A `--smoke` run" in text and str(smoke_run.parent) not in text
    net, summary = record["net"], record["summary"]
    assert f"{net['parameters']:,} parameters" in text
    assert f"| {summary['efficiency_vs_ceiling']:.2f} |" in text
    for p in record["projection"]["this_job"] + record["projection"]["one_hour_job"]:
        assert f"| {p['workers']} | {p['chunks']:,} |" in text
    assert f"Measured {record['date']} on {record['cpu']}" in text
    assert "Command: `python bench/distributed_scaling.py --smoke --out`" in text
    # a verdict follows the figure, not the other way round
    missed = dict(record, summary=dict(summary, met={k: False for k in summary["met"]}))
    assert render_scaling.render(missed, smoke_run).count("**missed**") == 3
    # smoke runs are passed over as the page's default
    assert render_scaling.newest(smoke_run.parent) is None
    full = smoke_run.parent / "distributed-scaling-2030-01-01.json"
    full.write_text(json.dumps(dict(record, smoke=False)))
    assert render_scaling.newest(smoke_run.parent) == full


def test_other_json_is_not_a_run(tmp_path):
    path = tmp_path / "distributed-scaling-x.json"
    path.write_text(json.dumps({"schema": "fastgrad-bench/2"}))
    with pytest.raises(ValueError, match="not a distributed_scaling.py run"):
        render_scaling.load(path)
    assert render_scaling.newest(tmp_path) is None


def test_the_guide_holds_the_newest_run():
    want, source = render_scaling.block()
    assert render_scaling.current_block() == want, (
        f"{render_scaling.PAGE} differs from {source}: run python bench/render_scaling.py")
    assert render_scaling.main(["--check"]) == 0
    if source is None:
        assert want == render_scaling.NONE_YET
    else:  # the page's figures are the run's, the date included
        assert re.search(r"Measured \d{4}-\d\d-\d\d on ", want)
