"""fastgrad.distributed on a real Dask LocalCluster: bitwise the one-machine result, faults.

Clusters run on the loopback address with single-threaded worker processes;
every cluster and client is closed by its fixture or test.
"""

from __future__ import annotations

import importlib.util
import os
import re
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from numba import njit

import fastgrad
from fastgrad import cli, distributed, methods, reference, reference_conv
from fastgrad.arch import make_arch
from fastgrad.convarch import check_conv_batch, make_conv_arch
from fastgrad.distributed import ClusterError, Journal, connect
from fastgrad.inputs import check_batch

HAS_DASK = importlib.util.find_spec("distributed") is not None
needs_dask = pytest.mark.skipif(not HAS_DASK, reason='needs pip install "fastgrad[distributed]"')


def start_cluster(n_workers):
    import dask.distributed as dd

    cluster = dd.LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                              host="127.0.0.1", dashboard_address=None,
                              scheduler_kwargs=distributed.NO_DASHBOARD)
    try:
        return cluster, dd.Client(cluster, set_as_default=False)
    except BaseException:
        cluster.close()
        raise


@pytest.fixture(scope="module", params=[1, 2, 3], ids=lambda n: f"{n}workers")
def client(request):
    """A client of a LocalCluster of 1, 2 or 3 single-threaded worker processes."""
    if not HAS_DASK:
        pytest.skip('needs pip install "fastgrad[distributed]"')
    cluster, client = start_cluster(request.param)
    try:
        yield client
    finally:
        client.close()  # the client first: closing the cluster under it warns
        cluster.close()


def loss_f(x, weights, pair):
    """A plain Python f with nested ``args``: a smooth scalar of every element of ``x``."""
    scale, shift = pair
    return float(np.sum(np.tanh(x * weights)) * scale + np.sum((x - shift) ** 2) * 0.5)


@njit(cache=False)
def loss_jitted(x, weights, scale):
    total = 0.0
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            total += np.sin(x[i, j] * weights[i, j]) * scale + x[i, j] ** 3 * 0.25
    return total


def small_net(activation="relu"):
    return fastgrad.MultiLayerNet(20, [8], 3, activation=activation, weight_init_std=0.3,
                                  weight_decay_lambda=0.05, seed=3)


def small_batch():
    rng = np.random.default_rng(4)
    return rng.random((9, 20)), np.arange(9) % 3


def same_bits(a, b):
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_bits(a[k], b[k]) for k in a)
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


@pytest.fixture(scope="module")
def warm_jit_range():
    """Compile the range kernel here first, so the workers load it from Numba's disk cache
    instead of each compiling it (tens of seconds on a busy machine)."""
    net = small_net()
    x, t = small_batch()
    params, x, labels = check_batch(net.params, x, t)
    methods.jit_gradient_range(params, x, labels, 1e-4, 1, 0, 1, net.arch)


# -- bitwise the one-machine result -----------------------------------------------------------

@needs_dask
@pytest.mark.parametrize("chunk_size", [7, 50])
@pytest.mark.parametrize("method", ["reference", "jit"])
def test_net_gradient_is_bitwise_the_one_machine_result(client, warm_jit_range, method,
                                                       chunk_size):
    net = small_net()
    x, t = small_batch()
    before = {k: v.copy() for k, v in net.params.items()}
    one = net.numerical_gradient(x, t, method=method)
    spread = net.numerical_gradient(x, t, method=method, client=client, chunk_size=chunk_size)
    assert same_bits(one, spread)
    assert same_bits(net.params, before)  # parameters never left modified


def tiny_convnet():
    """Padding and stride 2, so that the cluster's job carries the convolution's shape."""
    return fastgrad.SimpleConvNet((2, 11, 11), {"filter_num": 3, "filter_size": 3, "pad": 1,
                                              "stride": 2}, hidden_size=5, output_size=4,
                                  weight_init_std=0.3, seed=2)


def tiny_conv_batch():
    rng = np.random.default_rng(7)
    return rng.random((3, 2, 11, 11)), np.array([0, 3, 1])


@needs_dask
@pytest.mark.parametrize("chunk_size", [None, 11])
def test_conv_reference_is_bitwise_the_one_machine_result(client, chunk_size):
    net = tiny_convnet()
    x, t = tiny_conv_batch()
    conv = make_conv_arch(2, 1)
    params, x, labels, _ = check_conv_batch(net.params, x, t, conv)
    before = {k: v.copy() for k, v in params.items()}
    one = reference_conv.numerical_gradient(params, x, labels, 1e-4, conv)
    spread = distributed.conv_reference_gradient(client, params, x, labels, 1e-4, conv,
                                                 chunk_size=chunk_size)
    assert list(spread) == list(one) and same_bits(one, spread)
    assert same_bits(params, before)


@needs_dask
def test_net_gradient_default_chunks_and_whole_task_methods(client, warm_jit_range):
    net = small_net("sigmoid")
    x, t = small_batch()
    for method in ("reference", "jit", "incremental"):
        one = net.numerical_gradient(x, t, method=method)
        assert same_bits(one, net.numerical_gradient(x, t, method=method, client=client))


@needs_dask
@pytest.mark.parametrize("chunk_size", [1, 13])
def test_function_gradient_is_bitwise_the_one_machine_result(client, chunk_size):
    rng = np.random.default_rng(5)
    x, weights = rng.standard_normal((4, 6)), rng.standard_normal((4, 6))
    x_before = x.copy()
    args = (weights, (1.5, 0.25))
    one = fastgrad.numerical_gradient(loss_f, x, args=args)
    spread = fastgrad.numerical_gradient(loss_f, x, args=args, client=client,
                                         chunk_size=chunk_size)
    assert same_bits(one, spread)
    assert np.array_equal(x, x_before)


@needs_dask
def test_jitted_function_gradient_is_bitwise_the_one_machine_result(client):
    """A Numba ``f``: the compiled parallel loop here, the book's loop through its dispatcher
    on the workers (each worker compiles ``f`` once: a few chunks keep the test short)."""
    rng = np.random.default_rng(5)
    x, weights = rng.standard_normal((4, 6)), rng.standard_normal((4, 6))
    one = fastgrad.numerical_gradient(loss_jitted, x, args=(weights, 2.0))
    spread = fastgrad.numerical_gradient(loss_jitted, x, args=(weights, 2.0), client=client,
                                         chunk_size=7)
    assert same_bits(one, spread)


@needs_dask
def test_gradcheck_full_mode_on_a_cluster(client):
    rng = np.random.default_rng(6)
    x, weights = rng.standard_normal(10), rng.standard_normal(10)
    args = (weights, (1.0, 0.5))

    def grad(x, weights, pair):
        return weights * (1 - np.tanh(x * weights) ** 2) * pair[0] + (x - pair[1])

    here = fastgrad.gradcheck(loss_f, x, grad, args=args)
    there = fastgrad.gradcheck(loss_f, x, grad, args=args, client=client, chunk_size=3)
    assert here.ok and there.ok
    assert (here.max_abs, here.worst) == (there.max_abs, there.worst)


@needs_dask
def test_errors_of_f_reach_the_caller_with_the_index(client):
    def bad(x):
        if x[2] > 1.05:
            return float("nan")
        return float(np.sum(x))

    with pytest.raises(ValueError, match=r"f must return a finite value, got nan at "
                                         r"x \+ h\*e\[\(2,\)\]"):
        fastgrad.numerical_gradient(bad, np.array([0.0, 0.5, 1.0, 0.2]), h=0.1, client=client,
                                    chunk_size=1)


# -- faults -------------------------------------------------------------------------------------

def dies_once(x, marker, index, base):
    """Kill this worker process the first time entry ``index`` is perturbed (``marker`` absent)."""
    if x.reshape(-1)[index] != base and not os.path.exists(marker):
        Path(marker).touch()
        os._exit(1)  # a worker lost mid-task: no cleanup, no reply
    time.sleep(0.002)  # slow enough that the other chunks are still running
    return float(np.sum(np.sin(x)) + np.sum(x * x))


@needs_dask
def test_a_worker_killed_mid_run_loses_nothing(client, tmp_path):
    """With one worker, the only copy of the inputs dies too: they are recomputed."""
    n_workers = len(client.nthreads())
    x = np.linspace(-1.0, 1.0, 60)
    done = tmp_path / "done"
    done.touch()
    one = fastgrad.numerical_gradient(dies_once, x, args=(str(done), 37, x[37]))
    marker = tmp_path / "killed"
    try:
        spread = fastgrad.numerical_gradient(dies_once, x, args=(str(marker), 37, x[37]),
                                             client=client, chunk_size=5)
    finally:
        client.wait_for_workers(n_workers, timeout=25)  # the nanny's restart, for the next test
    assert marker.exists()  # a worker did die inside a chunk (only a worker runs os._exit)
    assert same_bits(one, spread)


class StopClient(Exception):
    """Stands for a client killed after some chunks."""


@needs_dask
def test_a_killed_client_resumes_from_the_journal(client, tmp_path):
    net = small_net()
    x, t = small_batch()
    params, x, labels = check_batch(net.params, x, t)
    arch = net.arch
    one = reference.net_numerical_gradient(params, x, labels, 1e-4, *arch)
    n_chunks = -(-sum(v.size for v in params.values()) // 40)  # 195 entries: 5 chunks

    def stop_after_two(start, stop, source):
        if len(list(tmp_path.glob("chunk-*.npy"))) >= 2:
            raise StopClient

    with pytest.raises(StopClient):
        distributed.net_gradient(client, "reference", params, x, labels, 1e-4, arch,
                                 chunk_size=40, journal=Journal(tmp_path), on_chunk=stop_after_two)
    kept = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in tmp_path.glob("chunk-*")}
    assert len(kept) == 2

    # a fresh run in the same folder is refused; another run's journal is not resumed
    with pytest.raises(FileExistsError, match="already holds a journal"):
        distributed.net_gradient(client, "reference", params, x, labels, 1e-4, arch,
                                 chunk_size=40, journal=Journal(tmp_path))
    with pytest.raises(ValueError, match="belongs to another run.*differs in h"):
        distributed.net_gradient(client, "reference", params, x, labels, 2e-4, arch,
                                 chunk_size=40, journal=Journal(tmp_path, resume=True))

    seen = []
    resumed = distributed.net_gradient(  # chunk size taken from the manifest
        client, "reference", params, x, labels, 1e-4, arch,
        journal=Journal(tmp_path, resume=True), on_chunk=lambda a, b, s: seen.append((a, s)))
    assert same_bits(one, resumed)
    from_journal = sorted(a for a, s in seen if s == "journal")
    computed = sorted(a for a, s in seen if s == "computed")
    assert len(from_journal) == 2 and len(computed) == n_chunks - 2
    assert not set(from_journal) & set(computed)  # nothing it had was computed again
    assert all((tmp_path / name).stat().st_ino == ino and
               (tmp_path / name).stat().st_mtime_ns == mtime
               for name, (ino, mtime) in kept.items())
    assert len(list(tmp_path.glob("chunk-*.npy"))) == n_chunks
    assert not list(tmp_path.glob(".*part"))  # no temp file left behind


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@needs_dask
def test_an_unreachable_scheduler_is_a_clear_error_within_the_timeout():
    address = f"tcp://127.0.0.1:{_free_port()}"
    start = time.perf_counter()
    with pytest.raises(ClusterError, match=f"cannot reach a Dask scheduler at {address} "
                                           f"within 2 s"):
        with connect(address, timeout=2):
            pass
    assert time.perf_counter() - start < 15


@needs_dask
def test_workers_with_another_fastgrad_version_are_refused(client, monkeypatch):
    distributed.check_client(client)
    monkeypatch.setattr(fastgrad, "__version__", "0.0.1")
    with pytest.raises(ClusterError, match=r"do not run fastgrad 0\.0\.1 like this client: "
                                           r"tcp://127\.0\.0\.1:\d+: fastgrad 0\.1\.0"):
        fastgrad.numerical_gradient(loss_f, np.ones(3), args=(np.ones(3), (1.0, 0.0)),
                                    client=client)


def hide_fastgrad():
    sys.modules["_fastgrad_hidden"] = sys.modules["fastgrad"]
    sys.modules["fastgrad"] = None  # an import of fastgrad fails in this process


def restore_fastgrad():
    sys.modules["fastgrad"] = sys.modules.pop("_fastgrad_hidden")


@needs_dask
def test_a_worker_without_fastgrad_is_named(client):
    worker = sorted(client.nthreads())[0]
    client.run(hide_fastgrad, workers=[worker])
    try:
        with pytest.raises(ClusterError, match=f"{worker}: no fastgrad \\(ModuleNotFoundError"):
            distributed.check_client(client)
    finally:
        client.run(restore_fastgrad, workers=[worker])
    distributed.check_client(client)


def test_the_version_probe_loads_where_fastgrad_does_not():
    """The probe travels by value: a process that cannot import fastgrad still runs it."""
    cloudpickle = pytest.importorskip("cloudpickle")
    code = ("import pickle, sys; sys.modules['fastgrad'] = None; "
            "print(repr(pickle.loads(sys.stdin.buffer.read())()))")
    out = subprocess.run([sys.executable, "-c", code], input=cloudpickle.dumps(
        distributed.version_probe()), capture_output=True, timeout=60, check=True)
    assert out.stdout.decode().startswith("ModuleNotFoundError(")


@needs_dask
def test_bad_client_and_chunk_size_arguments(client):
    x, weights = np.ones(3), np.ones(3)
    with pytest.raises(TypeError, match="client must be a dask.distributed.Client"):
        fastgrad.numerical_gradient(loss_f, x, args=(weights, (1.0, 0.0)),
                                    client="tcp://127.0.0.1:8786")
    with pytest.raises(ValueError, match="chunk_size must be at least 1"):
        fastgrad.numerical_gradient(loss_f, x, args=(weights, (1.0, 0.0)), client=client,
                                    chunk_size=0)
    with pytest.raises(TypeError, match="chunk_size must be a positive integer"):
        small_net().numerical_gradient(*small_batch(), method="reference", client=client,
                                       chunk_size=2.5)


# -- without Dask --------------------------------------------------------------------------------

def test_without_the_extra_a_client_names_it(monkeypatch):
    for name in ("dask", "dask.distributed", "distributed"):
        monkeypatch.setitem(sys.modules, name, None)  # import of it fails
    x, weights = np.ones(3), np.ones(3)
    hint = r'pip install "fastgrad\[distributed\]"'
    with pytest.raises(ModuleNotFoundError, match=hint):
        fastgrad.numerical_gradient(loss_f, x, args=(weights, (1.0, 0.0)), client=object())
    with pytest.raises(ModuleNotFoundError, match=hint):
        small_net().numerical_gradient(*small_batch(), client=object())
    with pytest.raises(ModuleNotFoundError, match=hint):
        fastgrad.gradcheck(loss_f, x, np.ones(3), args=(weights, (1.0, 0.0)), client=object())


def test_without_a_client_nothing_imports_dask():
    code = textwrap.dedent("""
        import sys
        import numpy as np
        import fastgrad
        from fastgrad import cli
        cli.build_parser()
        net = fastgrad.MultiLayerNet(4, [3], 2, seed=0)
        net.numerical_gradient(np.ones((2, 4)), [0, 1], method="reference")
        fastgrad.numerical_gradient(lambda x: float(np.sum(x ** 2)), np.ones(3))
        fastgrad.gradcheck(lambda x: float(np.sum(x ** 2)), np.ones(3), 2 * np.ones(3))
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("dask", "distributed"))
        print(loaded)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    assert out.stdout.strip() == "[]"


def test_default_chunk_size_aims_at_a_second_per_chunk():
    # 1 ms per entry: 1000 entries per chunk when there is work enough for every thread
    assert distributed.default_chunk_size(10**6, 1e-3, 16) == 1000
    # a small job spread over 4 threads, 4 chunks each, but never under 0.1 s per chunk
    assert distributed.default_chunk_size(3200, 1e-3, 4) == 200
    assert distributed.default_chunk_size(800, 1e-3, 4) == 100
    assert distributed.default_chunk_size(50, 1e-3, 4) == 50  # never above the job
    assert distributed.chunk_bounds(7, 3) == [(0, 3), (3, 6), (6, 7)]


# -- the CLI ---------------------------------------------------------------------------------------

@needs_dask
def test_connect_local_starts_and_closes_its_cluster():
    with connect("local:2") as client:
        assert sorted(client.nthreads().values()) == [1, 1]
        x = np.linspace(0.0, 1.0, 5)
        spread = fastgrad.numerical_gradient(loss_f, x, args=(x, (1.0, 0.0)), client=client)
        scheduler = client.scheduler.address
    assert same_bits(fastgrad.numerical_gradient(loss_f, x, args=(x, (1.0, 0.0))), spread)
    with pytest.raises(ClusterError, match=scheduler):  # the scheduler is gone
        with connect(scheduler, timeout=1):
            pass


@pytest.mark.parametrize("cluster", ["", "local:0", "local:x", 8786])
def test_bad_cluster_arguments(cluster):
    with pytest.raises(ValueError, match="local:N|scheduler address"):
        distributed._parse_cluster(cluster)


@needs_dask
def test_check_full_on_a_cluster_journals_and_resumes(client, tmp_path, capsys):
    argv = ["check", "--hidden", "4", "--batch", "5", "--synthetic", "--methods", "jit",
            "--cluster", client.scheduler.address, "--full", "--out", str(tmp_path)]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "0 from the journal" in out and "compared on every parameter" in out
    assert "nan" not in out  # the cluster reference's time is in its table row
    seconds = [float(v) for v in re.findall(r"ok \(tol 1e-0[79], (\S+) s\)", out)]
    assert len(seconds) == 2 and all(0 < v < 600 for v in seconds)  # jit, then the reference
    assert cli.main(argv + ["--resume"]) == 0
    out = capsys.readouterr().out
    assert "reference on the cluster: 0 chunks computed" in out
    assert "all methods within tolerance" in out


@needs_dask
def test_check_convnet_full_on_a_local_cluster(tmp_path, capsys):
    """The convnet's reference on local:2, journaled, resumed: every chunk from the journal."""
    argv = ["check", "--net", "convnet", "--filters", "2", "--filter-size", "3", "--hidden",
            "3", "--batch", "2", "--synthetic", "--methods", "incremental", "--cluster",
            "local:2", "--full", "--out", str(tmp_path)]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "cluster local:2: 2 workers, 2 threads" in out and "0 from the journal" in out
    assert "the book's loop on all" in out and "nan" not in out
    assert cli.main(argv + ["--resume"]) == 0
    out = capsys.readouterr().out
    assert "reference on the cluster: 0 chunks computed" in out
    assert "all methods within tolerance" in out


def test_check_journal_arguments_need_a_cluster(tmp_path, capsys):
    assert cli.main(["check", "--hidden", "4", "--batch", "5", "--synthetic",
                     "--out", str(tmp_path)]) == 2
    assert "--out and --resume keep the chunks of a --cluster run" in capsys.readouterr().err


def test_the_range_kernel_covers_the_whole_gradient_in_pieces():
    """Ranges of the jit kernel put together are the whole gradient, bit for bit."""
    net = small_net()
    x, t = small_batch()
    params, x, labels = check_batch(net.params, x, t)
    arch = make_arch("relu", 0.05)
    n = sum(v.size for v in params.values())
    pieces = np.concatenate([methods.jit_gradient_range(params, x, labels, 1e-4, 2, a, b, arch)
                             for a, b in distributed.chunk_bounds(n, 17)])
    whole = methods.compute_gradient("jit", params, x, labels, activation="relu",
                                     weight_decay=0.05)
    assert same_bits(methods.gradient_from_flat(pieces, params, "jit", 1e-4, arch), whole)


@needs_dask
def test_local_workers_keep_glibc_dynamic_mmap_threshold(monkeypatch):
    # Dask's nanny sets MALLOC_TRIM_THRESHOLD_, slowing the reference loop ~1.7x in its workers,
    # and leaves it in the parent's os.environ, as an earlier cluster here would have
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "65536")
    with connect("local:1") as client:
        seen = client.run(lambda: os.environ.get("MALLOC_TRIM_THRESHOLD_"))
        threads = client.run(lambda: os.environ.get("OPENBLAS_NUM_THREADS"))
    assert list(seen.values()) == [None]
    assert list(threads.values()) == ["1"]  # the rest of Dask's worker environment stays
    assert os.environ["MALLOC_TRIM_THRESHOLD_"] == "65536"  # this process's, as it was
