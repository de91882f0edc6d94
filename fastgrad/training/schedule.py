"""When a run measures its accuracies, and how (the book's once-per-epoch evaluation)."""

from __future__ import annotations

import numpy as np

from fastgrad import reference

EVAL_CHUNK = 10_000  # rows per accuracy matmul: bounds memory on the 60k training set


def accuracy(params, x, labels, activation="sigmoid"):
    """Fraction of ``x`` whose arg-max prediction is the label."""
    correct = 0
    for s in range(0, len(x), EVAL_CHUNK):
        y = reference.predict(params, x[s:s + EVAL_CHUNK], activation)
        correct += int(np.count_nonzero(np.argmax(y, axis=1) == labels[s:s + EVAL_CHUNK]))
    return correct / len(x)


class EvalSchedule:
    """The steps after which the full train and test accuracies are measured.

    As in the book's ``train_neuralnet.py``: at ``i = 0, iter_per_epoch, ...``
    (``i`` counting from 0, after that step's update), ``iter_per_epoch =
    max(train_size / batch_size, 1)``; or every ``eval_every`` steps.
    """

    def __init__(self, n_train, batch_size, eval_every=None):
        self.per_epoch = max(n_train / batch_size, 1)
        self.eval_every = eval_every

    def due(self, i, measured):
        """Whether step ``i`` (0-based) is measured, ``measured`` records having been made."""
        if self.eval_every:
            return i % self.eval_every == 0
        return i >= measured * self.per_epoch

    def epoch(self, i):
        """The book's epoch number at step ``i``."""
        return i / self.per_epoch
