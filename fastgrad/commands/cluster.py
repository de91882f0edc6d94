"""The commands' ``--cluster``: its arguments, the connection, the check command's reference.

``fastgrad check`` and ``fastgrad bench`` take ``--cluster ADDRESS|local:N``
(:func:`add_cluster_arguments`) and open it with :func:`connect_cli`, which
reports a missing Dask extra as an environment error like an unreachable
scheduler. Everything Dask is in :mod:`fastgrad.distributed`, imported only
when a cluster is asked for.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

from fastgrad import distributed
from fastgrad.arch import SIGMOID


def add_cluster_arguments(parser, journal=True, what="compute the reference"):
    """``--cluster`` (its help begins with ``what``); with ``journal`` (the check command)
    also ``--full``, ``--out`` and ``--resume``."""
    parser.add_argument("--cluster", default=None, metavar="ADDRESS|local:N",
                        help=f"{what} on a Dask cluster: a running scheduler "
                             "(tcp://host:8786) or local:N, N single-threaded worker processes "
                             f"started here (needs {distributed.INSTALL_HINT})")
    if not journal:
        return
    parser.add_argument("--full", dest="sample", action="store_const", const="all",
                        help="every parameter through the reference, not a sample "
                             "(same as --sample all)")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="with --cluster: keep finished chunks of the reference in DIR "
                             "(one .npy each and a manifest of the run)")
    parser.add_argument("--resume", action="store_true",
                        help="with --out: continue the journal in DIR, recomputing nothing "
                             "it holds")


@contextmanager
def connect_cli(cluster):
    """:func:`fastgrad.distributed.connect` for a command: a missing Dask extra is a
    :class:`fastgrad.distributed.ClusterError` too, which the CLI reports in one line."""
    try:
        distributed.import_distributed()
    except ModuleNotFoundError as exc:
        raise distributed.ClusterError(str(exc)) from None
    with distributed.connect(cluster) as client:
        yield client


def cluster_reference(args, params, x, t, arch=SIGMOID, conv=None):
    """The check command's full reference on ``--cluster``: ``(gradient, seconds)``, or None.

    None (compute it here) without ``--cluster`` and when the reference is
    sampled (a sample takes seconds on one machine). ``conv`` (``(stride,
    pad)``) makes it the convolutional net's reference
    (:func:`fastgrad.distributed.conv_reference_gradient`), else the fully
    connected net's of ``arch``. ``seconds`` is the wall time of the gradient
    on the cluster, the start of a ``local:N`` cluster left out.
    """
    from fastgrad import inputs
    from fastgrad.validate import resolve_sample
    from fastgrad.validate_conv import resolve_conv_sample

    if args.cluster is None:
        if args.out is not None or args.resume:
            raise ValueError("--out and --resume keep the chunks of a --cluster run: "
                             "add --cluster")
        return None
    if args.resume and args.out is None:
        raise ValueError("--resume needs --out DIR (the journal to continue)")
    sampled = (resolve_conv_sample(args.sample) if conv is not None
               else resolve_sample(args.sample, params))
    if sampled is not None:
        print("--cluster: the reference is sampled (fast here); --full sends every "
              "parameter to the cluster")
        return None
    h = inputs.check_h(args.h, inputs.NET_H_RANGE)
    if conv is not None:
        from fastgrad.convarch import check_conv_batch

        params, x, labels, _ = check_conv_batch(params, x, t, conv)
    else:
        params, x, labels = inputs.check_batch(params, x, t)
    journal = distributed.Journal(args.out, resume=args.resume) if args.out is not None else None
    with connect_cli(args.cluster) as client:
        workers = client.nthreads()
        print(f"cluster {args.cluster}: {len(workers)} workers, {sum(workers.values())} "
              f"threads", flush=True)
        counts = {"journal": 0, "computed": 0}

        def count(start, stop, source):
            counts[source] += 1

        kw = {"journal": journal, "progress": True, "on_chunk": count}
        start = time.perf_counter()
        if conv is not None:
            grads = distributed.conv_reference_gradient(client, params, x, labels, h, conv, **kw)
        else:
            grads = distributed.net_gradient(client, "reference", params, x, labels, h, arch, **kw)
        seconds = time.perf_counter() - start
    print(f"reference on the cluster: {counts['computed']} chunks computed, "
          f"{counts['journal']} from the journal, {seconds:.1f} s")
    return grads, seconds
