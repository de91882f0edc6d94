"""The optimizer comparison's figures, measured by training with both gradients.

The book's chapter-6 comparison (Figure 6-9): 784-[100]x4-10 ReLU (He), batch
128, 2,000 iterations each of sgd, momentum, adagrad and adam, trained with
``incremental`` numerical gradients and again with ``backprop``, by the same
``fastgrad.train`` calls as ``fastgrad train --optimizer sgd momentum adagrad
adam``. Two figures come out: the whole incremental comparison in minutes, and
the worst optimizer's gap in final test accuracy between the two gradients, in
points. They are measured, never judged here: the thresholds they are held to
are data (a targets file, :mod:`fastgrad.bench.targets`).

The incremental kernels' cost grows with the share of non-zero pixels (~19%
on MNIST, ~50% on Fashion-MNIST), so the data matter: MNIST's training set
when found; else, when only MNIST's test files are present, the test digits
split in two, the first 8,000 to train on and the other 2,000 to measure
accuracy on, said so in the figures' notes.
"""

from __future__ import annotations

import time

from fastgrad import config, standard

OPTIMIZERS = ("sgd", "momentum", "adagrad", "adam")
NET = {"hidden_size_list": [100] * 4, "activation": "relu", "weight_init_std": "he"}
ITERS, BATCH, SPLIT = 2000, 128, 8000
#: The figures' names in a targets file: the whole incremental comparison (minutes) and
#: the worst optimizer's accuracy gap between the two gradients (points).
MINUTES, ACCURACY_GAP = "optimizer-comparison-minutes", "optimizer-comparison-accuracy-gap"


def load_data(name="mnist", n_train=SPLIT):
    """``(((x_train, t_train), (x_test, t_test)), description)``."""
    from fastgrad import data as fdata

    if name == "fashion":
        return fdata.load_mnist(dataset="fashion", progress=False), \
            "Fashion-MNIST (60,000 train / 10,000 test)"
    try:  # no mirrors: only a local copy counts
        return fdata.load_mnist(dataset="mnist", progress=False, mirrors=()), \
            "MNIST (60,000 train / 10,000 test)"
    except Exception as exc:  # noqa: BLE001 - any reason MNIST's training set is missing
        reason = str(exc).splitlines()[0][:120]
    found = standard.find_test_set("mnist")
    if found is None:
        raise FileNotFoundError(f"neither MNIST's training set ({reason}) nor its test "
                                "digits were found")
    x, t, _ = found
    if not 0 < n_train < len(x):
        raise ValueError(f"n_train must be in 1..{len(x) - 1}, got {n_train}")
    return (((x[:n_train], t[:n_train]), (x[n_train:], t[n_train:])),
            f"MNIST test digits split {n_train:,} to train / {len(x) - n_train:,} to measure "
            f"(MNIST's training images not found: {reason})")


def _train_all(method, data, iters, batch, threads, seed, say):
    import fastgrad

    # load (or compile) the kernels first: a one-off cost that `fastgrad bench` reports
    fastgrad.train(data, iters=1, batch_size=batch, method=method, threads=threads, **NET)
    out = {}
    for name in OPTIMIZERS:
        start = time.perf_counter()
        hist = fastgrad.train(data, iters=iters, batch_size=batch, optimizer=name,
                              method=method, threads=threads, seed=seed, eval_every=iters,
                              **NET)
        seconds = time.perf_counter() - start
        out[name] = (hist, seconds)
        say(f"{method:<12} {name:<9} {seconds:7.1f} s  {1e3 * hist.time_per_gradient:7.1f} ms "
            f"per gradient  final test acc {hist.final_test_acc:.4f}")
    return out


def run_comparison(data=None, *, described=None, iters=None, batch=None, threads=None,
                   seed=0, say=print):
    """Train every optimizer with both gradients; return ``(figures, histories, details)``.

    Parameters
    ----------
    data : ((x_train, t_train), (x_test, t_test)), optional
        Default :func:`load_data`.
    described : str, optional
        What ``data`` is, for the notes.
    iters, batch : int, optional
        Default :data:`ITERS` and :data:`BATCH` (the book's 2,000 and 128).
    threads : int, optional
        Numba threads (default: the configured default).
    seed : int
        Seed of the weights and of the minibatches, the same for both gradients.
    say : callable
        Receives one progress line per run.

    Returns
    -------
    figures : list of dict
        The two figures, unjudged: ``id`` (:data:`MINUTES`, :data:`ACCURACY_GAP`),
        ``workload`` (what was measured), ``figure``, ``unit`` and ``note``;
        :func:`fastgrad.bench.targets.judge_row` holds them to a targets file.
    histories : dict
        ``{method: {optimizer: History}}``.
    details : dict
        The settings and each run's seconds and summary, JSON-ready.
    """
    if data is None:
        data, described = load_data()
    iters = ITERS if iters is None else iters
    batch = BATCH if batch is None else batch
    threads = config.default_threads() if threads is None else threads
    label = f"784-[100]x4-10 ReLU (He), batch {batch}, {iters:,} iterations each"
    say(f"{label}, seed {seed}, {threads} threads; data: {described}")
    runs = {m: _train_all(m, data, iters, batch, threads, seed, say)
            for m in ("incremental", "backprop")}
    total = sum(s for _, s in runs["incremental"].values())
    gaps = {n: 100 * abs(runs["incremental"][n][0].final_test_acc
                         - runs["backprop"][n][0].final_test_acc) for n in OPTIMIZERS}
    worst = max(gaps, key=gaps.get)
    figures = [
        {"id": MINUTES,
         "workload": f"the book's optimizer comparison ({label} of "
                     f"{', '.join(OPTIMIZERS)}), incremental, {threads} threads (minutes)",
         "figure": total / 60, "unit": "min", "note": f"data: {described}; per optimizer "
         + ", ".join(f"{n} {s:.0f} s" for n, (_, s) in runs["incremental"].items())},
        {"id": ACCURACY_GAP,
         "workload": "that comparison: final test accuracy, incremental vs backprop, worst "
                     "optimizer (points)",
         "figure": gaps[worst], "unit": "points", "note": "; ".join(
             f"{n} {runs['incremental'][n][0].final_test_acc:.4f} vs "
             f"{runs['backprop'][n][0].final_test_acc:.4f} ({gaps[n]:.2f})"
             for n in OPTIMIZERS)},
    ]
    histories = {m: {n: h for n, (h, _) in r.items()} for m, r in runs.items()}
    details = {"data": described, "iters": iters, "batch": batch, "threads": threads,
               "seed": seed, "incremental_total_s": total,
               "runs": {m: {n: {"seconds": s, **h.to_dict()["summary"]}
                            for n, (h, s) in r.items()} for m, r in runs.items()}}
    return figures, histories, details
