"""``fastgrad bench --cluster``: the chunked methods timed over a Dask cluster.

Each round is one whole gradient through
:func:`fastgrad.distributed.net_gradient` as a user calls it (the workers'
check, the default chunk size, every chunk on the cluster, the client putting
them together), with the workers' threads as they are. The last round's
gradient is checked against the reference like every other method's
(:func:`fastgrad.bench.validation.check_gradient`), and the report says which
cluster timed it: what it was asked for (``local:N`` or an address), its
scheduler, its workers and their threads.
"""

from __future__ import annotations

import statistics
import time

from fastgrad import distributed
from fastgrad.bench.timing import spread
from fastgrad.bench.validation import check_gradient

#: Methods timed over a cluster: those it splits by chunks (the others run as one task).
CLUSTER_METHODS = distributed.CHUNKED_METHODS


def describe_cluster(client, spec=None):
    """The cluster behind ``client`` as a report's dict; ``spec``: what the user passed."""
    threads = client.nthreads()
    return {"cluster": spec or client.scheduler.address,
            "scheduler": client.scheduler.address, "workers": len(threads),
            "threads_per_worker": sorted(threads.values())}


def cluster_label(info):
    """``local:2 (2 workers, 1 thread each)``: a report's cluster in a few words."""
    each = sorted(set(info["threads_per_worker"]))
    threads = (f"{each[0]} thread{'s' * (each[0] != 1)} each" if len(each) == 1 else
               f"{'/'.join(map(str, each))} threads")
    return f"{info['cluster']} ({info['workers']} workers, {threads})"


def _rounds(first_s, repeats, budget_s, min_rounds):
    """Rounds of a method whose first round took ``first_s``: up to ``repeats`` within
    ``budget_s`` (None: no budget), never under ``min_rounds``."""
    rounds = repeats if budget_s is None else min(repeats, int(budget_s // max(first_s, 1e-9)))
    return max(rounds, min_rounds, 1)


def time_on_cluster(client, method, workload, ref, *, repeats=5, budget_s=None, min_rounds=1):
    """Time ``method``'s whole gradient of ``workload`` over ``client``; check it against ``ref``.

    Parameters
    ----------
    client : dask.distributed.Client
    method : str
        One of :data:`CLUSTER_METHODS`.
    workload : fastgrad.bench.workload.Workload
        A fully connected net's workload.
    ref : fastgrad.bench.validation.Reference
        The one-machine reference the result is validated against.
    repeats, budget_s, min_rounds
        Timed rounds: up to ``repeats`` within about ``budget_s`` seconds (None:
        exactly ``repeats``), at least ``min_rounds``. A compiled method first
        runs once untimed, so that the workers load its kernel.

    Returns
    -------
    dict
        The report's row: ``median_s``, ``min_s``, ``spread``, ``rounds``,
        ``times_s``, ``max_abs_error``, ``ok``.
    """
    if method not in CLUSTER_METHODS:
        raise ValueError(f"method must be one of {CLUSTER_METHODS} on a cluster, got {method!r}")
    w = workload

    def call():
        return distributed.net_gradient(client, method, w.params, w.x, w.labels, w.h, w.arch)

    if method != "reference":  # compiled: the workers load (or compile) the kernel first
        call()
    times, result = [], None
    while not times or len(times) < _rounds(times[0], repeats, budget_s, min_rounds):
        start = time.perf_counter()
        result = call()
        times.append(time.perf_counter() - start)
    check = check_gradient(method, result, ref, workload)
    return {"method": method, "median_s": statistics.median(times), "min_s": min(times),
            "spread": list(spread(times)), "rounds": len(times), "times_s": times,
            "max_abs_error": check.max_abs, "ok": check.ok}


def cluster_report(client, spec, methods, workload, ref, *, repeats=5, budget_s=None,
                   min_rounds=1, say=None):
    """:func:`describe_cluster` with a ``timings`` row per method of ``methods`` it can split."""
    info = describe_cluster(client, spec)
    info["timings"] = []
    for method in (m for m in CLUSTER_METHODS if m in methods):
        if say is not None:
            say(f"time {method} over the cluster {cluster_label(info)}")
        row = time_on_cluster(client, method, workload, ref, repeats=repeats,
                              budget_s=budget_s, min_rounds=min_rounds)
        if say is not None:
            say(f"time {method} over the cluster: median {row['median_s']:.3g} s "
                f"({row['rounds']} rounds); result max |error| {row['max_abs_error']:.1e}"
                f"{'' if row['ok'] else ' FAILED'}")
        info["timings"].append(row)
    return info


def add_ratios(info, timings):
    """Speed-ups of the cluster's rows vs the one-machine ``timings`` of the same report:
    vs the reference, and vs the same method here (its main row)."""
    main = {r["method"]: r["median_s"] for r in timings if r["main"]}
    for row in info["timings"]:
        here = main.get(row["method"])
        row["speedup_vs_reference"] = (main["reference"] / row["median_s"]
                                       if "reference" in main else None)
        row["speedup_vs_one_machine"] = here / row["median_s"] if here else None
