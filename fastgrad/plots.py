"""Training curves like the book's figures 4-11 and 4-12 (matplotlib, optional).

matplotlib is the optional ``plot`` extra and is imported only when a plot is
drawn. Figures use the Agg canvas directly instead of pyplot, so nothing
changes the caller's backend and no figure is left open.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fastgrad.checkpoint import atomic_write

__all__ = ["plot_history"]

SMOOTH = 100  # iterations in the moving average drawn over the noisy minibatch loss


def _moving_average(values, window):
    window = max(1, min(window, len(values)))
    kernel = np.ones(window) / window
    return np.convolve(values, kernel, mode="valid"), window


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
    ax_acc.plot(epochs, [r.train_acc for r in history.epochs], "o-", color="tab:blue",
                markersize=4, label="train acc")
    ax_acc.plot(epochs, [r.test_acc for r in history.epochs], "s--", color="tab:orange",
                markersize=4, label="test acc")
    ax_acc.set(xlabel="epochs", ylabel="accuracy", title="accuracy on the full sets",
               ylim=(0, 1.0))
    ax_acc.grid(alpha=0.3)
    ax_acc.legend(loc="lower right")
    if history.final_test_acc is not None:
        ax_acc.annotate(f"final: train {history.final_train_acc:.4f}, "
                        f"test {history.final_test_acc:.4f}",
                        xy=(0.98, 0.22), xycoords="axes fraction", ha="right", fontsize=9)

    fig.suptitle(f"{cfg['input_size']}-{cfg['hidden_size']}-{cfg['output_size']} TwoLayerNet "
                 f"on {cfg['dataset']}: {cfg['method']} gradient, lr {cfg['lr']:g}, "
                 f"batch {cfg['batch_size']}, {history.iterations} iterations, "
                 f"seed {cfg['seed']}")
    return atomic_write(Path(path), lambda fh: fig.savefig(fh, format="png", dpi=dpi))
