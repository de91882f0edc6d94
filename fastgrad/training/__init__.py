"""Training the book's networks by minibatches, with the book's optimizers and checkpoints.

Each iteration draws ``batch_size`` random training samples (with replacement,
like the book's ``np.random.choice``) from a seeded ``numpy.random.Generator``,
takes the gradient by the chosen method and lets the optimizer move the
parameters. As in the book's ``train_neuralnet.py`` the recorded loss is that of
the minibatch *after* its update, and the full train and test accuracies are
measured once per epoch.

- :mod:`~fastgrad.training.settings`: defaults, argument checks, resuming's identity rule;
- :mod:`~fastgrad.training.datasets`: the arrays, checked once and fingerprinted;
- :mod:`~fastgrad.training.schedule`: when and how accuracies are measured;
- :mod:`~fastgrad.training.model`: what the loop asks of a net kind (fully connected,
  convolutional): minibatches, gradient, loss, accuracy;
- :mod:`~fastgrad.training.loop`: the loop itself, Ctrl-C and divergence;
- :mod:`~fastgrad.training.diagnosis`: a run still at chance after an epoch, and why;
- :mod:`~fastgrad.training.commit`: the committed state, checkpoints and the history;
- :mod:`~fastgrad.training.run`: :func:`train`, which sets a run up.
"""

from fastgrad.checkpoint import EpochRecord, History
from fastgrad.training.loop import Step, TrainingDiverged, TrainingInterrupted
from fastgrad.training.run import train
from fastgrad.training.settings import CHECKS, DEFAULTS

__all__ = ["CHECKS", "DEFAULTS", "EpochRecord", "History", "Step", "TrainingDiverged",
           "TrainingInterrupted", "train"]
