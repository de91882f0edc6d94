"""Parameter chunks on a Dask cluster: the gradient of one machine, bitwise, on many.

The central difference is a sum of independent parts: entry ``p`` of the
gradient needs ``f(x + h e_p)`` and ``f(x - h e_p)`` and nothing else. The flat
parameter indices (a net's ``W1, b1, W2, ...`` back to back, or ``x.ravel()``
for anyone's ``f``) are split into contiguous chunks; each Dask task computes
one chunk on a worker with the chosen method and returns that slice, and the
client writes it into place. What this module guarantees:

- **Same bits.** Every entry is computed by the same code on the same inputs as
  on one machine (the book's loop of :mod:`fastgrad.reference`, or of
  :mod:`fastgrad.reference_conv` for the convolutional net, on a private
  copy, or the ``jit`` kernel's range entry
  :func:`fastgrad.kernels.full.full_gradient_range`), perturbing only that
  entry, so the result does not depend on the number of workers, their threads
  or the chunk size. The ``incremental`` method shares cached activations
  across all parameters, so it runs as one task (bitwise the same for any
  thread count, as on one machine).
- **Faults lose nothing.** The inputs travel as a task of the graph (the
  scheduler can recompute them), chunks whose worker dies are recomputed
  elsewhere, and a failing task is retried :data:`RETRIES` times; a journal
  (:class:`Journal`) keeps finished chunks on the client's disk so that a
  killed client resumes without recomputing them.
- **Clear failures.** A scheduler that cannot be reached, a cluster without
  workers, and workers without fastgrad or with another version each give one
  error naming the address or the versions, within a bounded time.

Dask is optional (``pip install "fastgrad[distributed]"``): it is imported
only when a client or a cluster is asked for.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import fastgrad
from fastgrad import config, generic, reference
from fastgrad.arch import SIGMOID, Arch
from fastgrad.convarch import CONV_PARAM_NAMES

#: How to get Dask, for the error raised when it is missing.
INSTALL_HINT = 'pip install "fastgrad[distributed]"'
#: Seconds to wait for a scheduler, for its first worker, or for the version probe.
CONNECT_TIMEOUT = 10.0
#: Compute per chunk the default chunk size aims at: long enough that the
#: scheduler's few milliseconds per task stay a small share of it.
TARGET_CHUNK_SECONDS = 1.0
#: Smallest compute per chunk the default shrinks to when that spreads the work
#: over more worker threads.
MIN_CHUNK_SECONDS = 0.1
#: Chunks per worker thread the default aims at (spare chunks even out the load).
CHUNKS_PER_WORKER_THREAD = 4
#: Times Dask reruns a chunk whose task raised (a worker that dies is handled
#: apart: its chunks go to the others).
RETRIES = 2
#: A local scheduler's HTTP server (health routes; no dashboard) on any free loopback port:
#: on its default 8787 a second cluster would warn that the port is taken.
NO_DASHBOARD = {"dashboard_address": "127.0.0.1:0"}
#: Methods computed chunk by chunk; every other one runs as a single task.
CHUNKED_METHODS = ("reference", "jit")


class ClusterError(ConnectionError):
    """The cluster cannot serve this client: no scheduler at the address, no workers, or
    workers without this version of fastgrad (an environment error, so an ``OSError``)."""


#: The Dask setting a ``local:N`` cluster leaves unset (see :func:`connect`); workers started
#: by hand take it from ``DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON__MALLOC_TRIM_THRESHOLD_=None``.
TRIM_ENV = "MALLOC_TRIM_THRESHOLD_"
NANNY_TRIM = f"distributed.nanny.pre-spawn-environ.{TRIM_ENV}"


def import_distributed():
    """``dask.distributed``, or a ``ModuleNotFoundError`` that says how to install it."""
    try:
        import dask.distributed as dd
    except ImportError as exc:
        raise ModuleNotFoundError(
            f"a Dask client needs the optional 'distributed' extra: {INSTALL_HINT} "
            f"({exc})", name="dask.distributed") from None
    return dd


# -- the cluster: connecting and checking its workers ---------------------------------------

def version_probe():
    """A function that returns ``fastgrad.__version__`` where it runs, or the ImportError.

    It is local, so cloudpickle sends it by value: a worker without fastgrad
    can still load it, and say so.
    """
    def fastgrad_version():
        try:
            import fastgrad as there
        except ImportError as exc:
            return exc
        return there.__version__

    return fastgrad_version


def _described(version):
    if isinstance(version, BaseException):
        return f"no fastgrad ({type(version).__name__}: {version})"
    return f"fastgrad {version}"


def check_client(client, timeout=CONNECT_TIMEOUT):
    """Check that ``client`` is a ``dask.distributed.Client`` whose workers run this fastgrad.

    Waits up to ``timeout`` seconds for a first worker and for every worker's
    ``fastgrad.__version__``; raises ``TypeError`` for another object and
    :class:`ClusterError` naming the scheduler or the versions otherwise.
    """
    dd = import_distributed()
    if not isinstance(client, dd.Client):
        raise TypeError(f"client must be a dask.distributed.Client or None, got "
                        f"{type(client).__name__}")
    address = client.scheduler.address if client.scheduler is not None else "?"
    try:
        client.wait_for_workers(1, timeout=timeout)
    except (TimeoutError, OSError) as exc:
        raise ClusterError(f"the Dask scheduler at {address} has no workers after "
                           f"{timeout:g} s: start some with `dask worker {address}` "
                           f"({type(exc).__name__})") from None
    try:
        # callback_timeout bounds the call on the client side (Client.sync)
        found = client.run(version_probe(), on_error="return", callback_timeout=timeout)
    except (TimeoutError, OSError) as exc:
        raise ClusterError(f"the workers of {address} did not report their fastgrad version "
                           f"within {timeout:g} s ({type(exc).__name__})") from None
    wrong = {worker: value for worker, value in found.items() if value != fastgrad.__version__}
    if wrong:
        listed = "; ".join(f"{worker}: {_described(value)}" for worker, value in
                           sorted(wrong.items()))
        raise ClusterError(f"workers of {address} do not run fastgrad {fastgrad.__version__} "
                           f"like this client: {listed}. Install the same version on every "
                           f"worker")


def _parse_cluster(address):
    if not isinstance(address, str) or not address.strip():
        raise ValueError(f"cluster must be a scheduler address such as tcp://host:8786 or "
                         f"local:N, got {address!r}")
    if address.startswith("local:"):
        count = address[len("local:"):]
        if not count.isdigit() or int(count) < 1:
            raise ValueError(f"local:N needs a positive worker count N, got {address!r}")
        return None, int(count)
    return address, None


@contextmanager
def connect(cluster, timeout=CONNECT_TIMEOUT):
    """A checked ``Client`` of ``cluster``, closed (with any cluster it started) on exit.

    Parameters
    ----------
    cluster : str
        A running scheduler's address (``tcp://host:8786``), or ``local:N``: a
        ``LocalCluster`` on this machine of ``N`` single-threaded worker
        processes, each with ``cores // N`` Numba threads (at least one).
    timeout : float
        Seconds to wait for the scheduler, for a first worker and for the
        workers' versions (see :func:`check_client`).
    """
    dd = import_distributed()
    address, count = _parse_cluster(cluster)
    local = None
    try:
        if count is not None:
            import dask

            threads = max(1, config.default_threads() // count)
            # Dask's nanny sets MALLOC_TRIM_THRESHOLD_ in its workers, which turns off
            # glibc's dynamic mmap threshold: each temporary of a loss evaluation over
            # 128 KiB is then mapped and unmapped afresh, and the reference loop runs
            # about 1.7 times slower (a third of it in the kernel). None unsets it; a
            # nanny started earlier in this process has also left it in os.environ,
            # which the workers would inherit, so it is held back while they start.
            held = os.environ.pop(TRIM_ENV, None)
            try:
                with dask.config.set({NANNY_TRIM: None}):
                    local = dd.LocalCluster(n_workers=count, threads_per_worker=1,
                                            processes=True, host="127.0.0.1",
                                            dashboard_address=None,
                                            env={config.THREADS_ENV: str(threads)},
                                            scheduler_kwargs=NO_DASHBOARD)
            finally:
                if held is not None:
                    os.environ[TRIM_ENV] = held
            address = local.scheduler_address
        try:
            client = dd.Client(address, timeout=f"{timeout}s", set_as_default=False)
        except (TimeoutError, OSError) as exc:
            raise ClusterError(f"cannot reach a Dask scheduler at {address} within "
                                  f"{timeout:g} s: start one with `dask scheduler` and pass "
                                  f"the address it prints ({exc})") from None
        try:
            check_client(client, timeout)
            yield client
        finally:
            client.close()
    finally:
        if local is not None:
            local.close()


# -- chunks -----------------------------------------------------------------------------------

def check_chunk_size(chunk_size):
    """``chunk_size`` as a positive int, or None for the default."""
    if chunk_size is None:
        return None
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)):
        raise TypeError(f"chunk_size must be a positive integer or None, "
                        f"got {type(chunk_size).__name__}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    return int(chunk_size)


def _check_threads(threads):
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    return int(threads)


def default_chunk_size(n_items, seconds_per_item, worker_threads):
    """Indices per chunk: about :data:`TARGET_CHUNK_SECONDS` of compute each.

    Fewer when that would leave worker threads idle (aiming at
    :data:`CHUNKS_PER_WORKER_THREAD` chunks per thread), but never under
    :data:`MIN_CHUNK_SECONDS` of compute, where the scheduler's few
    milliseconds per task would start to show.
    """
    per_item = max(float(seconds_per_item), 1e-9)
    size = math.ceil(TARGET_CHUNK_SECONDS / per_item)
    spread = math.ceil(n_items / (CHUNKS_PER_WORKER_THREAD * max(worker_threads, 1)))
    size = min(size, max(spread, math.ceil(MIN_CHUNK_SECONDS / per_item)))
    return max(1, min(size, n_items))


def chunk_bounds(n_items, chunk_size):
    """``[(start, stop), ...]``: contiguous chunks of ``chunk_size`` indices, ``n_items`` in all."""
    return [(start, min(start + chunk_size, n_items)) for start in range(0, n_items, chunk_size)]


def _worker_threads(threads):
    """Numba threads of a task: ``threads``, or the worker's cores over its task threads."""
    limit = config.max_threads()
    if threads is not None:
        return min(threads, limit)
    from distributed import get_worker

    return max(1, min(limit, config.default_threads() // get_worker().state.nthreads))


# -- what a task computes ------------------------------------------------------------------

@dataclass(frozen=True)
class NetJob:
    """A net's gradient: validated ``params``, batch and labels, step, architecture."""

    method: str
    params: dict
    x: np.ndarray
    labels: np.ndarray
    h: float
    arch: Arch = SIGMOID
    threads: int | None = None


@dataclass(frozen=True)
class FunctionJob:
    """Anyone's ``f``: the float64 point ``x``, the extra ``args``, the step."""

    f: object
    x: np.ndarray
    args: tuple
    h: float
    jitted: bool


def _chunk_indices(params, names, start, stop):
    """``{name: flat indices}``: the entries ``start:stop`` of the tensors ``names`` laid
    back to back."""
    out, offset = {}, 0
    for name in names:
        size = params[name].size
        if offset < stop and offset + size > start:
            out[name] = np.arange(max(start, offset), min(stop, offset + size)) - offset
        offset += size
    return out


def _chunk_values(grads, indices):
    """The entries ``indices`` of ``grads``, in flat order: one chunk's values."""
    return np.concatenate([grads[name].reshape(-1)[idx] for name, idx in indices.items()])


def net_chunk(job, start, stop):
    """Entries ``start:stop`` of the net's flat gradient (``jit``: before weight decay)."""
    if job.method == "jit":
        from fastgrad.methods import jit_gradient_range

        return jit_gradient_range(job.params, job.x, job.labels, job.h,
                                  _worker_threads(job.threads), start, stop, job.arch)
    # the book's loop restricted to this chunk's entries: the same values as the full loop
    indices = _chunk_indices(job.params, reference.param_names(job.params), start, stop)
    grads = reference.net_numerical_gradient(job.params, job.x, job.labels, job.h, *job.arch,
                                             indices=indices)
    return _chunk_values(grads, indices)


@dataclass(frozen=True)
class ConvJob:
    """The convolutional net's reference: validated ``params``, batch, labels, step, ``conv``."""

    params: dict
    x: np.ndarray
    labels: np.ndarray
    h: float
    conv: tuple  # fastgrad.convarch.ConvArch: (stride, pad)
    method: str = "reference"


def conv_chunk(job, start, stop):
    """Entries ``start:stop`` of the convnet's flat reference gradient (``W1, b1, ..., b3``).

    The book's loop of :func:`fastgrad.reference_conv.numerical_gradient`
    restricted to this chunk's entries: the same values as the full loop.
    """
    from fastgrad import reference_conv

    indices = _chunk_indices(job.params, CONV_PARAM_NAMES, start, stop)
    grads = reference_conv.numerical_gradient(job.params, job.x, job.labels, job.h, job.conv,
                                              indices=indices)
    return _chunk_values(grads, indices)


def net_whole(job):
    """The whole gradient dict of a method that does not split (``incremental``)."""
    from fastgrad.methods import METHODS

    return METHODS[job.method].func(job.params, job.x, job.labels, job.h,
                                    _worker_threads(job.threads), job.arch)


class _ChunkOfF:
    """``f`` for the book's loop over ``x.ravel()[start:stop]``: checked, named by index."""

    def __init__(self, f, work, start):
        self.f, self.work, self.start, self.calls = f, work, start, 0

    def __call__(self, _chunk, *args):
        k, self.calls = self.calls, self.calls + 1
        p = self.start + k // 2
        index = tuple(int(i) for i in np.unravel_index(p, self.work.shape))
        where = generic.point_name(index, +1 if k % 2 == 0 else -1)
        return generic.evaluate(self.f, self.work, args, where)


def function_chunk(job, start, stop):
    """Entries ``start:stop`` of ``f``'s gradient by the book's loop on a private copy.

    The loop perturbs a view of those entries inside the copy, and ``f`` sees
    the whole copy: each entry the same values as the full loop's. A jitted
    ``f`` is called through its dispatcher, one entry at a time.
    """
    work = job.x.copy()  # the job is shared by the tasks of a worker: perturb a copy
    args = generic.check_args(job.args, job.jitted)  # read-only again after the trip
    chunk = work.reshape(-1)[start:stop]
    return reference.numerical_gradient(_ChunkOfF(job.f, work, start), chunk, job.h, args)


def _identity(value):
    return value


# -- the journal ------------------------------------------------------------------------------

def _digest(*arrays):
    digest = hashlib.sha256()
    for arr in arrays:
        arr = np.ascontiguousarray(arr)
        digest.update(f"{arr.dtype.str}{arr.shape}".encode())
        digest.update(arr.tobytes())
    return digest.hexdigest()


def net_identity(job, chunk_size):
    """The manifest of a net's run (:class:`NetJob` or :class:`ConvJob`): what must match
    for a journal to be resumed."""
    if isinstance(job, ConvJob):
        names, net = CONV_PARAM_NAMES, {"net": "convnet", "stride": job.conv[0],
                                        "pad": job.conv[1]}
    else:
        names, net = reference.param_names(job.params), {"activation": job.arch[0],
                                                         "weight_decay": job.arch[1]}
    return {
        "format": 1,
        "method": job.method,
        "h": job.h,
        **net,
        "params_sha256": _digest(*(job.params[name] for name in names)),
        "param_shapes": {name: "x".join(map(str, job.params[name].shape)) for name in names},
        "x_sha256": _digest(job.x),
        "labels_sha256": _digest(job.labels),
        "chunk_size": chunk_size,
        "fastgrad": fastgrad.__version__,
    }


class Journal:
    """Finished chunks on disk under ``folder``: one ``.npy`` per chunk, and a manifest.

    Every file is written to a temp file and moved into place
    (:func:`fastgrad.checkpoint.atomic_write`), so a client killed at any
    moment leaves whole chunks only. ``resume=False`` refuses a folder that
    already holds a journal; ``resume=True`` requires its manifest to match
    the run's (method, step, hashes of params and batch, chunk size).
    """

    MANIFEST = "manifest.json"

    def __init__(self, folder, resume=False):
        self.folder = Path(folder)
        self.resume = bool(resume)

    @property
    def manifest_path(self):
        return self.folder / self.MANIFEST

    def stored_chunk_size(self):
        """The chunk size of the journal being resumed (None if there is none)."""
        if not (self.resume and self.manifest_path.is_file()):
            return None
        return self._read_manifest().get("chunk_size")

    def _read_manifest(self):
        try:
            return json.loads(self.manifest_path.read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read the journal manifest {self.manifest_path}: "
                             f"{exc}") from None

    def open(self, identity):
        """Write or check the manifest; return ``{(start, stop): values}`` already done."""
        from fastgrad.files import atomic_write

        if self.manifest_path.is_file():
            if not self.resume:
                raise FileExistsError(f"{self.folder} already holds a journal: resume it "
                                      f"(--resume) or choose another folder")
            stored = self._read_manifest()
            differ = sorted(k for k in set(stored) | set(identity)
                            if stored.get(k) != identity.get(k))
            if differ:
                raise ValueError(f"the journal in {self.folder} belongs to another run "
                                 f"(differs in {', '.join(differ)}): choose another folder")
        else:
            text = json.dumps(identity, indent=1).encode()
            atomic_write(self.manifest_path, lambda fh: fh.write(text))
        return self._load_chunks()

    def _chunk_path(self, start, stop):
        return self.folder / f"chunk-{start:012d}-{stop:012d}.npy"

    def _load_chunks(self):
        done = {}
        for path in sorted(self.folder.glob("chunk-*-*.npy")):
            start, stop = (int(part) for part in path.stem.split("-")[1:])
            try:
                values = np.load(path, allow_pickle=False)
            except (OSError, ValueError):
                continue  # unreadable: computed again and replaced
            if values.dtype == np.float64 and values.shape == (stop - start,):
                done[(start, stop)] = values
        return done

    def save(self, start, stop, values):
        """Store one finished chunk atomically."""
        from fastgrad.files import atomic_write

        atomic_write(self._chunk_path(start, stop), lambda fh: np.save(fh, values))


# -- running the chunks -------------------------------------------------------------------------

def run_chunks(client, task, job, n_items, chunk_size, *, journal=None, identity=None,
               progress=False, on_chunk=None, desc="chunks"):
    """The flat gradient of ``job``, ``task(job, start, stop)`` per chunk on ``client``.

    Parameters
    ----------
    client : dask.distributed.Client
        A checked client (:func:`check_client`).
    task : callable
        Module-level function returning the float64 values of entries ``start:stop``.
    job : NetJob or FunctionJob
        Sent once, as a task of the graph (so the scheduler can recompute it if
        every worker that held it dies).
    n_items, chunk_size : int
        Entries in all, entries per chunk.
    journal : Journal, optional
        Where finished chunks are kept; ``identity`` is its manifest.
    progress : bool
        Show a tqdm bar counting finished chunks.
    on_chunk : callable, optional
        ``on_chunk(start, stop, source)`` after each chunk, ``source``
        ``'journal'`` or ``'computed'``.

    Returns
    -------
    ndarray of float64, shape (n_items,)
    """
    dd = import_distributed()
    from tqdm import tqdm

    bounds = chunk_bounds(n_items, chunk_size)
    flat = np.empty(n_items)
    done = journal.open(identity) if journal is not None else {}
    todo = []
    for start, stop in bounds:
        if (start, stop) in done:
            flat[start:stop] = done[(start, stop)]
        else:
            todo.append((start, stop))
    bar = tqdm(total=len(bounds), initial=len(bounds) - len(todo), unit="chunk", desc=desc,
               disable=not progress)
    if on_chunk is not None:
        for start, stop in bounds:
            if (start, stop) in done:
                on_chunk(start, stop, "journal")
    futures = []
    try:
        if todo:
            job_future = client.submit(_identity, job, pure=False)
            futures = client.map(task, [job_future] * len(todo), [b[0] for b in todo],
                                 [b[1] for b in todo], pure=False, retries=RETRIES)
            where = {future.key: chunk for future, chunk in zip(futures, todo, strict=True)}
            for future in dd.as_completed(futures, loop=client.loop):
                start, stop = where[future.key]
                values = np.asarray(future.result(), dtype=np.float64)
                if values.shape != (stop - start,):
                    raise RuntimeError(f"chunk {start}:{stop} came back with shape "
                                       f"{values.shape}, expected ({stop - start},)")
                flat[start:stop] = values
                if journal is not None:
                    journal.save(start, stop, values)
                bar.update(1)
                if on_chunk is not None:
                    on_chunk(start, stop, "computed")
    finally:
        bar.close()
        # a client stopped early (an error, Ctrl-C) leaves no work behind on the cluster
        pending = [f for f in futures if not f.done()]
        if pending:
            client.cancel(pending)
    return flat


def best_seconds(call, repeats=3, budget_s=1.0):
    """The fastest of up to ``repeats`` timed calls (no more once ``budget_s`` is spent):
    one call can land on a busy moment (workers still starting, say), and a cost read too
    high makes chunks too small to pay their scheduling."""
    best, spent = math.inf, 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        took = time.perf_counter() - start
        best, spent = min(best, took), spent + took
        if spent >= budget_s:
            break
    return best


def _worker_thread_count(client):
    return sum(client.nthreads().values())


def net_gradient(client, method, params, x, labels, h, arch=SIGMOID, *, threads=None,
                 chunk_size=None, journal=None, progress=False, on_chunk=None):
    """A net's gradient by ``method`` on ``client``: the dict one machine returns, bitwise.

    ``params``, ``x``, ``labels`` validated (:func:`fastgrad.inputs.check_batch`);
    ``reference`` and ``jit`` run by chunks of flat parameters, any other
    method as one task. The default ``chunk_size`` comes from one NumPy loss
    evaluation timed here: two per entry, about
    :data:`TARGET_CHUNK_SECONDS` per chunk (:func:`default_chunk_size`).
    """
    check_client(client)
    chunk_size = check_chunk_size(chunk_size)
    job = NetJob(method, params, x, labels, h, arch, _check_threads(threads))
    if method not in CHUNKED_METHODS:
        if journal is not None:
            raise ValueError(f"a journal needs a method split by chunks {CHUNKED_METHODS}, "
                             f"got {method!r}")
        job_future = client.submit(_identity, job, pure=False)
        return client.submit(net_whole, job_future, pure=False, retries=RETRIES).result()
    flat = _run_net_chunks(client, net_chunk, job, chunk_size, journal, progress, on_chunk,
                           lambda: reference.loss(params, x, labels, *job.arch))
    from fastgrad.methods import gradient_from_flat

    return gradient_from_flat(flat, params, method, h, job.arch)


def _run_net_chunks(client, task, job, chunk_size, journal, progress, on_chunk, loss):
    """:func:`run_chunks` of a net's job; the default chunk size from ``loss()`` timed by
    :func:`best_seconds` (two per entry), or the one of the journal being resumed."""
    n_items = sum(v.size for v in job.params.values())
    if chunk_size is None and journal is not None:
        chunk_size = journal.stored_chunk_size()
    if chunk_size is None:
        chunk_size = default_chunk_size(n_items, 2 * best_seconds(loss),
                                        _worker_thread_count(client))
    identity = net_identity(job, chunk_size) if journal is not None else None
    return run_chunks(client, task, job, n_items, chunk_size, journal=journal,
                      identity=identity, progress=progress, on_chunk=on_chunk,
                      desc=f"{job.method} chunks")


def conv_reference_gradient(client, params, x, labels, h, conv, *, chunk_size=None,
                            journal=None, progress=False, on_chunk=None):
    """The convnet's reference gradient on ``client``, bitwise the one-machine dict.

    Chunks of the flat ``W1, b1, ..., b3`` run the book's loop
    (:func:`conv_chunk`) on the inputs validated by
    :func:`fastgrad.convarch.check_conv_batch`; ``conv`` is ``(stride, pad)``.
    The other arguments are those of :func:`net_gradient`.
    """
    from fastgrad import reference_conv
    from fastgrad.methods import gradient_from_flat

    check_client(client)
    chunk_size = check_chunk_size(chunk_size)
    job = ConvJob(params, x, labels, h, tuple(conv))
    flat = _run_net_chunks(client, conv_chunk, job, chunk_size, journal, progress, on_chunk,
                           lambda: reference_conv.loss(params, x, labels, conv))
    # W1, b1, W2, b2, W3, b3 is also the fully connected order of three layers
    return gradient_from_flat(flat, params, "reference", h)


def function_gradient(client, f, work, args, h, jitted, *, chunk_size=None, progress=False):
    """``f``'s central-difference gradient at ``work`` on ``client``, shaped like ``work``.

    ``work`` is the validated float64 copy and ``args`` the checked extra
    arguments (:func:`fastgrad.generic.prepare`). ``f`` is evaluated once here
    (errors before the long loop, and the cost of one call): the default chunk
    holds about :data:`TARGET_CHUNK_SECONDS` of calls (two per entry).
    """
    check_client(client)
    chunk_size = check_chunk_size(chunk_size)
    seconds = best_seconds(lambda: generic.evaluate(f, work, args))
    if chunk_size is None:
        chunk_size = default_chunk_size(work.size, 2 * seconds, _worker_thread_count(client))
    job = FunctionJob(f, work, args, h, jitted)
    flat = run_chunks(client, function_chunk, job, work.size, chunk_size, progress=progress,
                      desc="f chunks")
    return flat.reshape(work.shape)


@dataclass(frozen=True)
class ColumnJob:
    """Anyone's ``f`` at ``x + c h e_p`` for each offset ``c``: gradcheck's stencil."""

    f: object
    x: np.ndarray
    args: tuple
    h: float
    jitted: bool
    offsets: tuple
    out_shape: tuple


def column_chunk(job, start, stop):
    """Flat values ``start:stop`` of the stencil ``(x.size, offsets, outputs)``, by rows."""
    width = len(job.offsets) * int(np.prod(job.out_shape, dtype=np.int64))
    args = generic.check_args(job.args, job.jitted)
    values = generic.column_values_loop(job.f, job.x, args, job.h, job.offsets, job.out_shape,
                                        start // width, stop // width)
    return values.reshape(-1)


def function_columns(client, f, work, args, h, offsets, out_shape, jitted, *, chunk_size=None):
    """:func:`fastgrad.generic.column_values` on ``client``, chunks of ``chunk_size`` rows."""
    check_client(client)
    chunk_size = check_chunk_size(chunk_size)
    offsets = tuple(float(c) for c in offsets)
    if chunk_size is None:
        seconds = best_seconds(lambda: f(work, *args))
        chunk_size = default_chunk_size(work.size, len(offsets) * seconds,
                                        _worker_thread_count(client))
    job = ColumnJob(f, work, args, h, jitted, offsets, tuple(out_shape))
    width = len(offsets) * int(np.prod(out_shape, dtype=np.int64))
    flat = run_chunks(client, column_chunk, job, work.size * width, chunk_size * width,
                      desc="f chunks")
    return flat.reshape(work.size, len(offsets), -1)
