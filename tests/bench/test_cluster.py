"""``fastgrad bench --cluster``: the chunked methods timed over a real Dask LocalCluster.

Every cluster is closed by its fixture or by the command that started it.
"""

from __future__ import annotations

import importlib.util
import json
import socket
import time

import numpy as np
import pytest

from fastgrad import distributed
from fastgrad.bench.cluster import cluster_label, describe_cluster, time_on_cluster
from fastgrad.bench.validation import Reference, compute_reference
from fastgrad.bench.workload import load_workload
from fastgrad.cli import main
from tests.bench.helpers import TINY

HAS_DASK = importlib.util.find_spec("distributed") is not None
needs_dask = pytest.mark.skipif(not HAS_DASK, reason='needs pip install "fastgrad[distributed]"')
#: The tiny net, one round each, nothing but the reference on the cluster (backprop is the
#: cheapest method that may be named; jit would make each worker load its kernel).
QUICK_CLUSTER = ["bench", "--quick", *TINY, "--synthetic", "--no-compile", "--no-phases",
                 "--methods", "backprop", "--repeats", "1"]


@pytest.fixture(scope="module")
def client():
    """A client of a LocalCluster of one single-threaded worker process."""
    if not HAS_DASK:
        pytest.skip('needs pip install "fastgrad[distributed]"')
    import dask.distributed as dd

    cluster = dd.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                              host="127.0.0.1", dashboard_address=None,
                              scheduler_kwargs=distributed.NO_DASHBOARD)
    try:
        client = dd.Client(cluster, set_as_default=False)
        try:
            yield client
        finally:
            client.close()
    finally:
        cluster.close()


@pytest.fixture(scope="module")
def tiny_workload():
    workload = load_workload(5, 3, synthetic=True)
    return workload, compute_reference(workload)


@needs_dask
def test_the_reference_over_a_cluster_is_timed_and_validated(client, tiny_workload):
    workload, ref = tiny_workload
    row = time_on_cluster(client, "reference", workload, ref, repeats=2)
    assert row["method"] == "reference" and row["rounds"] == 2 and len(row["times_s"]) == 2
    assert row["min_s"] <= row["median_s"] and row["min_s"] > 0
    assert row["max_abs_error"] == 0.0 and row["ok"]  # bitwise the one-machine loop

    # a result that disagrees with the reference fails like any other method
    off = {k: v + (1e-6 if k == "b2" else 0.0) for k, v in ref.grad.items()}
    wrong = Reference(off, ref.seconds, ref.entries, ref.n_params, ref.sample)
    row = time_on_cluster(client, "reference", workload, wrong, repeats=1)
    assert not row["ok"] and row["max_abs_error"] == pytest.approx(1e-6, rel=1e-6)

    with pytest.raises(ValueError, match="method must be one of"):
        time_on_cluster(client, "backprop", workload, ref)


@needs_dask
def test_describe_cluster_names_workers_and_threads(client):
    info = describe_cluster(client, "tcp://somewhere:8786")
    assert info["scheduler"] == client.scheduler.address
    assert (info["workers"], info["threads_per_worker"]) == (1, [1])
    assert cluster_label(info) == "tcp://somewhere:8786 (1 workers, 1 thread each)"
    assert describe_cluster(client)["cluster"] == client.scheduler.address
    assert cluster_label({**info, "workers": 2, "threads_per_worker": [1, 4]}).endswith(
        "(2 workers, 1/4 threads)")


@needs_dask
def test_cli_bench_on_a_local_cluster(tmp_path, capsys):
    path = tmp_path / "r.json"
    assert main([*QUICK_CLUSTER, "--cluster", "local:2", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "over the Dask cluster local:2 (2 workers, 1 thread each), scheduler tcp://" in out
    report = json.loads(path.read_text())
    info = report["cluster"]
    assert (info["cluster"], info["workers"], info["threads_per_worker"]) == ("local:2", 2,
                                                                                [1, 1])
    (row,) = info["timings"]
    assert row["method"] == "reference" and row["ok"] and row["max_abs_error"] == 0.0
    here = next(r for r in report["timings"] if r["method"] == "reference")
    assert row["speedup_vs_reference"] == pytest.approx(here["median_s"] / row["median_s"])
    assert row["speedup_vs_one_machine"] == row["speedup_vs_reference"]
    assert np.isfinite(row["median_s"]) and report["ok"]
    # the command closed the cluster it started
    with pytest.raises(distributed.ClusterError, match="cannot reach"):
        with distributed.connect(info["scheduler"], timeout=1):
            pass


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@needs_dask
def test_cli_bench_with_an_unreachable_scheduler_fails_first(capsys):
    address = f"tcp://127.0.0.1:{_free_port()}"
    start = time.perf_counter()
    assert main([*QUICK_CLUSTER, "--cluster", address]) == 2
    err = capsys.readouterr().err
    assert f"fastgrad bench: error: cannot reach a Dask scheduler at {address}" in err
    assert "reference:" not in err  # nothing was measured first
    assert time.perf_counter() - start < 10 * distributed.CONNECT_TIMEOUT


@pytest.mark.parametrize("flags, message", [
    (["--net", "convnet"], "--cluster is not available with --net convnet"),
    (["--targets"], "--targets takes neither"),
])
def test_cli_bench_cluster_refused_where_it_means_nothing(flags, message, capsys):
    assert main(["bench", "--cluster", "local:2", *flags]) == 2
    assert message in capsys.readouterr().err
