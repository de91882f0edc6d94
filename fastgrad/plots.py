"""Every figure fastgrad draws: training curves like the book's figures 4-11, 4-12 and
6-9, the Taylor test's residuals, and the benchmark's (methods and thread scaling,
the optimizer comparison by gradient method).

This is the only module that imports matplotlib, the optional ``plot`` extra,
and only when a plot is drawn: without it each function raises ImportError.
Figures use the Agg canvas directly instead of pyplot, so nothing changes the
caller's backend and no figure is left open; each PNG is written atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fastgrad.files import atomic_write
from fastgrad.standard import architecture, net_phrase
from fastgrad.units import format_ratio, format_seconds

__all__ = ["plot_benchmark", "plot_comparison", "plot_history", "plot_method_comparison",
           "plot_taylor", "smooth_curve"]

SMOOTH = 100  # iterations in the moving average drawn over the noisy minibatch loss



def _figure(figsize):
    """A figure with one set of axes, drawn off-screen (no display needed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots()

def _moving_average(values, window):
    window = max(1, min(window, len(values)))
    kernel = np.ones(window) / window
    return np.convolve(values, kernel, mode="valid"), window


def smooth_curve(x):
    """The book's ``common/util.py`` smoothing: an 11-point Kaiser window, ends mirrored.

    Returns an array as long as ``x`` (``x`` itself when shorter than the window).
    """
    window = 11
    x = np.asarray(x, dtype=np.float64)
    if len(x) < window:
        return x
    padded = np.r_[x[window - 1:0:-1], x, x[-1:-window:-1]]
    w = np.kaiser(window, 2)
    y = np.convolve(w / w.sum(), padded, mode="valid")
    return y[5:len(y) - 5]


def describe(config):
    """``784-100-100-10 relu net (init he) on mnist`` and the like, from a run's configuration."""
    decay = config.get("weight_decay_lambda", 0)
    return (f"{architecture(config)} (init {config['weight_init_std']}"
            f"{f', decay {decay:g}' if decay else ''}) on {config['dataset']}")


def plot_history(history, path, *, dpi=120):
    """Draw the loss per iteration and the train/test accuracy per epoch into a PNG.

    Parameters
    ----------
    history : fastgrad.training.History
    path : str or PathLike
        The PNG to write (atomically).

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ImportError
        matplotlib is not installed (``pip install 'fastgrad[plot]'``).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cfg = history.config
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax_loss, ax_acc = fig.subplots(1, 2)

    losses = np.asarray(history.losses)
    steps = np.arange(1, len(losses) + 1)
    ax_loss.plot(steps, losses, color="tab:blue", linewidth=0.6, alpha=0.45,
                 label="minibatch loss")
    if len(losses) >= 2:
        smooth, window = _moving_average(losses, SMOOTH)
        ax_loss.plot(steps[window - 1:], smooth, color="tab:blue", linewidth=1.8,
                     label=f"mean of last {window}")
    ax_loss.set(xlabel="iteration", ylabel="loss", title="training loss")
    ax_loss.set_ylim(bottom=0)
    ax_loss.grid(alpha=0.3)
    ax_loss.legend(loc="upper right")

    epochs = [r.epoch for r in history.epochs]
    train = [r.train_acc for r in history.epochs]
    test = [r.test_acc for r in history.epochs]
    final_epoch = _final_epoch(history)
    if final_epoch is not None:  # the run ended between two epochs: its last point
        epochs, train, test = (epochs + [final_epoch], train + [history.final_train_acc],
                               test + [history.final_test_acc])
    ax_acc.plot(epochs, train, "o-", color="tab:blue", markersize=4, label="train acc")
    ax_acc.plot(epochs, test, "s--", color="tab:orange", markersize=4, label="test acc")
    ax_acc.set(xlabel="epochs", ylabel="accuracy", title="accuracy on the full sets",
               ylim=(0, 1.0))
    ax_acc.grid(alpha=0.3)
    ax_acc.legend(loc="lower right")
    if history.final_test_acc is not None:
        ax_acc.annotate(f"final: train {history.final_train_acc:.4f}, "
                        f"test {history.final_test_acc:.4f}",
                        xy=(0.98, 0.22), xycoords="axes fraction", ha="right", fontsize=9)

    # two lines: a convnet's description alone fills the figure's width
    fig.suptitle(f"{describe(cfg)}\n{cfg['method']} gradient, {cfg['optimizer']} lr "
                 f"{cfg['lr']:g}, batch {cfg['batch_size']}, {history.iterations} iterations, "
                 f"seed {cfg['seed']}", fontsize=10)
    return atomic_write(Path(path), lambda fh: fig.savefig(fh, format="png", dpi=dpi))


def _final_epoch(history):
    """The epoch of the final accuracies when no epoch record holds them, else None.

    Epoch records sit at iteration ``1 + k * per_epoch`` (epoch ``k``); the
    final accuracies are measured after the last iteration.
    """
    if history.final_test_acc is None or not history.epochs:
        return None
    last = history.epochs[-1]
    if last.iteration >= history.iterations:
        return None
    later = [r for r in history.epochs if r.epoch > 0]
    if not later:
        return None
    per_epoch = (later[0].iteration - 1) / later[0].epoch
    return (history.iterations - 1) / per_epoch


def plot_comparison(histories, path, *, dpi=100):
    """The book's Figure 6-9: each optimizer's smoothed loss per iteration, in one PNG.

    Parameters
    ----------
    histories : dict
        ``{optimizer name: History}``, drawn in this order.
    path : str or PathLike
        The PNG to write (atomically).

    Returns
    -------
    pathlib.Path
    """
    fig, ax = _figure((7, 4.5))
    markers = {"sgd": "o", "momentum": "x", "nesterov": "+", "adagrad": "s", "rmsprop": "^",
               "adam": "D"}
    top = 0.0
    for name, history in histories.items():
        losses = smooth_curve(history.losses)
        steps = np.arange(1, len(losses) + 1)
        acc = history.final_test_acc
        label = name if acc is None else f"{name} (test acc {acc:.4f})"
        ax.plot(steps, losses, marker=markers.get(name), markevery=max(len(steps) // 10, 1),
                markersize=5, linewidth=1.2, label=label)
        top = max(top, float(np.percentile(losses, 95)) if len(losses) else 0.0)
    ax.set(xlabel="iterations", ylabel="loss (smoothed)", ylim=(0, max(1.0, min(top, 3.0))))
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right")
    cfg = next(iter(histories.values())).config
    ax.set_title(f"{describe(cfg)}\n{cfg['method']} gradient, batch {cfg['batch_size']}, "
                 f"seed {cfg['seed']}", fontsize=9)
    return atomic_write(Path(path), lambda fh: fig.savefig(fh, format="png", dpi=dpi))


def plot_taylor(rows, path, *, dpi=120):
    """Draw the Taylor test's residuals against the step on log-log axes into a PNG.

    Parameters
    ----------
    rows : sequence of dict
        ``GradcheckReport.slopes`` of a ``mode="taylor"`` check: per direction
        ``steps``, ``residuals``, ``floor``, ``slope``, ``window``, ``status``.
    path : str or PathLike
        The PNG to write (atomically).

    Returns
    -------
    pathlib.Path
    """
    fig, ax = _figure((7.5, 5))
    colors = ("tab:blue", "tab:green", "tab:red", "tab:purple", "tab:orange", "tab:brown")
    for i, row in enumerate(rows):
        color = colors[i % len(colors)]
        t, r = np.asarray(row["steps"]), np.asarray(row["residuals"])
        shown = np.where(r > 0, r, np.nan)  # log axes cannot show exact zeros
        slope = "n/a" if row["slope"] is None else f"{row['slope']:.2f}"
        ax.loglog(t, shown, "o-", color=color, markersize=3, linewidth=1.0,
                  label=f"direction {row['direction']}: slope {slope} ({row['status']})")
        ax.axhline(row["floor"], color=color, linewidth=0.6, linestyle=":")
        if row["window"] is not None:
            lo, hi = row["window"]
            inside = (t >= lo) & (t <= hi)
            ax.loglog(t[inside], shown[inside], "o", color=color, markersize=6,
                      markerfacecolor="none")
    for power, style in ((1, "--"), (2, "-.")):  # reference slopes through the first curve
        if rows:
            t = np.asarray(rows[0]["steps"])
            r0 = np.nanmax(np.asarray(rows[0]["residuals"]))
            ax.loglog(t, r0 * (t / t.max()) ** power, style, color="gray", linewidth=0.8,
                      label=f"slope {power} ({'wrong' if power == 1 else 'right'} gradient)")
    ax.set(xlabel="step t", ylabel="|f(x + t v) − f(x) − t v·g|")
    fig.suptitle("Taylor test: residual of the first-order expansion")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="lower right", fontsize=8)
    return atomic_write(Path(path), lambda fh: fig.savefig(fh, format="png", dpi=dpi))


def plot_method_comparison(histories, path, *, dpi=100):
    """Each optimizer's smoothed loss, incremental solid and backprop dashed, in one PNG.

    Parameters
    ----------
    histories : dict
        ``{"incremental": {optimizer: History}, "backprop": {optimizer: History}}``,
        as from :func:`fastgrad.bench.training.run_comparison`; the optimizers
        are drawn in the order of the incremental runs.
    path : str or PathLike
        The PNG to write (atomically).

    Returns
    -------
    pathlib.Path
    """
    fig, ax = _figure((7, 4.5))
    styles = {"incremental": "-", "backprop": "--"}
    names = list(histories["incremental"])
    top = 1.0
    for i, name in enumerate(names):
        for method, style in styles.items():
            hist = histories[method][name]
            losses = smooth_curve(hist.losses)
            ax.plot(range(1, len(losses) + 1), losses, style, color=f"C{i}", linewidth=1.2,
                    label=f"{name}, {method} (test acc {hist.final_test_acc:.4f})")
            if len(losses):
                top = max(top, min(float(np.percentile(losses, 95)), 3.0))
    cfg = histories["incremental"][names[0]].config
    ax.set(xlabel="iterations", ylabel="loss (smoothed)", ylim=(0, top))
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title("The book's optimizer comparison: incremental numerical gradient (solid) vs "
                 f"backprop (dashed)\n{describe(cfg)}, batch {cfg['batch_size']}, seed "
                 f"{cfg['seed']}, same minibatches", fontsize=9)
    return atomic_write(Path(path), lambda fh: fig.savefig(fh, format="png", dpi=dpi))


def plot_benchmark(report, path, *, dpi=120):
    """The methods' times and their thread scaling from a ``fastgrad bench`` report, as a PNG.

    Parameters
    ----------
    report : dict
        A report as from :func:`fastgrad.bench.run.run_benchmark` (or saved
        with ``--json``): its main rows make the bars (log scale, each
        annotated with its time and its speed-up against the reference), the
        compiled rows and the machine ceiling the scaling curves.
    path : str or PathLike
        The PNG to write (atomically).

    Returns
    -------
    pathlib.Path
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.5))
    FigureCanvasAgg(fig)  # Agg, without touching pyplot's global backend
    left, right = fig.subplots(1, 2)
    main = [r for r in report["timings"] if r["main"]]
    left.bar([r["method"] for r in main], [r["median_s"] for r in main], color="tab:blue")
    left.set_yscale("log")
    left.set_ylabel("seconds per gradient (median)")
    left.set_title("methods")
    for i, r in enumerate(main):
        left.annotate(f"{format_seconds(r['median_s'])}\n"
                      f"{format_ratio(r['speedup_vs_reference'])}",
                      (i, r["median_s"]), ha="center", va="bottom", fontsize=8)
    top, ticks = 1, {1}
    for name in dict.fromkeys(r["method"] for r in report["timings"] if r["threads"]):
        rows = [r for r in report["timings"] if r["method"] == name and r["speedup_vs_1_thread"]]
        if len(rows) > 1:
            xs = [r["threads"] for r in rows]
            right.plot(xs, [r["speedup_vs_1_thread"] for r in rows], "o-", label=name)
            top = max(top, *xs)
            ticks.update(xs)
    ceiling = [c for c in (report.get("ceiling") or {}).get("rows", [])
               if c["speedup_vs_1_thread"]]
    if len(ceiling) > 1:
        right.plot([c["threads"] for c in ceiling], [c["speedup_vs_1_thread"] for c in ceiling],
                   "s:", color="grey", label="machine ceiling (same rounds)")
    right.plot([1, top], [1, top], "k--", lw=0.8, label="ideal")
    right.set_xticks(sorted(ticks))
    right.set_xlabel("Numba threads")
    right.set_ylabel("speed-up vs 1 thread")
    right.set_title("thread scaling")
    right.legend()
    w = report["workload"]
    net = net_phrase(w["layers"], w.get("activation", "sigmoid"), w.get("weight_init"),
                     w.get("weight_decay"))
    fig.suptitle(f"fastgrad {net}, batch {w['batch']} ({w['data']}) on "
                 f"{report['environment']['cpu']}")
    fig.tight_layout()
    return atomic_write(Path(path), lambda fh: fig.savefig(fh, format="png", dpi=dpi))


def plot_sweep(sweep, path, *, dpi=120):
    """Draw the curves on log-log axes into a PNG (matplotlib, the ``plot`` extra).

    Marks each curve's best h, and the truncation (slope 2) and rounding
    (slope -1) sides of the first curve.
    """
    from fastgrad import steps  # the step study's fit (it does not import this module)

    fig, ax = _figure((7.5, 5))
    for c, color in zip(sweep.curves, ("tab:blue", "tab:green", "tab:red", "tab:purple"),
                        strict=False):
        shown = np.where(c.errors > 0, c.errors, np.nan)  # log axes cannot show exact zeros
        ax.loglog(c.steps, shown, "o-", color=color, markersize=3, linewidth=1.2,
                  label=f"{c.name}: best h {c.best_h:.0e}")
        ax.loglog([c.best_h], [c.best_error], "*", color=color, markersize=14,
                  markeredgecolor="black")
    first = sweep.curves[0]
    # labels off the curves: below-left of the falling side, above-left of the rising one
    for side, text, slope, offset in (
            (first.truncation_side(), "truncation O(h²)", 2, (-30, -90)),
            (first.rounding_side(), "rounding O(ε/h)", -1, (-40, 40))):
        errors = first.errors[side]
        if side.sum() >= 1 and np.any(errors > 0):
            h0 = float(np.sqrt(first.steps[side].max() * first.steps[side].min()))
            e0 = float(np.exp(np.mean(np.log(errors[errors > 0]))))
            fitted = steps.format_slope(steps.fit_slope(first.steps[side], errors))
            ax.annotate(f"{first.name}: {text}\nslope {fitted} (ideal {slope:+d})",
                        xy=(h0, e0), xytext=offset,
                        textcoords="offset points", ha="center", fontsize=8,
                        arrowprops={"arrowstyle": "-", "color": "gray", "linewidth": 0.6})
    ax.invert_xaxis()  # h shrinks to the right, as one reads the book
    ax.set(xlabel="step h", ylabel="max |numerical − analytic|")
    fig.suptitle("central difference error vs step size")
    ax.set_title(sweep.description, fontsize=7, color="gray")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="lower left", fontsize=8)
    return atomic_write(path, lambda fh: fig.savefig(fh, format="png", dpi=dpi))
