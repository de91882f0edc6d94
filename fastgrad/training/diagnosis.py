"""What a run that does not learn says about itself: accuracy still at chance after an epoch.

A net that answers the same class for every input is at chance: its training
accuracy is the share of that class. After one epoch of the book's runs even a
slow optimizer is well above it, so a run still there is stuck, and most often
for one of two reasons: initial weights too small for its depth (each layer
shrinks the signal, and the gradient with it, until the output layer sees
nothing), or a learning rate that kills the units or barely moves them. The
loop reports it once, at the first accuracy measured after one epoch; a
non-finite loss stops the run instead (:class:`~fastgrad.training.TrainingDiverged`).
"""

from __future__ import annotations

import numpy as np

from fastgrad.network import INIT_GAINS, MATCHED_INIT, init_std

#: How far above chance a training accuracy must be to count as learning.
CHANCE_MARGIN = 0.02


def chance_level(labels, n_classes):
    """The training accuracy of a net that answers one class: ``1 / n_classes``, or the
    share of the most frequent label where the classes are unbalanced."""
    counts = np.bincount(labels, minlength=n_classes)
    return max(1.0 / n_classes, float(counts.max()) / max(len(labels), 1))


def likely_cause(config):
    """The likely reason a run with ``config`` (a run's configuration) stays at chance."""
    if config.get("net") == "convnet":
        # the book's SimpleConvNet takes a number for its initial weights, not He/Xavier
        return (f"learning rate too high or too low (lr {config['lr']:g}): try another "
                f"(--lr), or other initial weights (std {config['weight_init_std']:g}, "
                f"--weight-init)")
    hidden, activation = config["hidden_size_list"], config["activation"]
    init, matched = config["weight_init_std"], MATCHED_INIT[activation]
    advice = f"weight_init_std='{matched}' (--weight-init {matched})"
    if len(hidden) > 1 and not isinstance(init, str):
        suited = min(init_std(matched, n) for n in (config["input_size"], *hidden))
        if init < suited / 2:
            return (f"initial weights too small for {len(hidden)} hidden {activation} layers "
                    f"(std {init:g}; {matched} gives {suited:.2g} or more): try {advice}")
    cause = f"learning rate too high or too low (lr {config['lr']:g}): try another (--lr)"
    if isinstance(init, str) and INIT_GAINS[init] == INIT_GAINS[matched]:
        return cause
    return f"{cause}, or {advice}"


def chance_note(epochs, chance, config):
    """One line if the first accuracy measured after an epoch is at ``chance``, else None.

    ``epochs`` are the run's :class:`~fastgrad.checkpoint.EpochRecord` in order.
    """
    first = next((r for r in epochs if r.epoch >= 1), None)
    if first is None or first.train_acc > chance + CHANCE_MARGIN:
        return None
    return (f"training accuracy {first.train_acc:.4f} at epoch {first.epoch:g} is still at chance "
            f"({chance:.4f} for {config['output_size']} classes): {likely_cause(config)}")
