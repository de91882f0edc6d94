"""What the training loop asks of a network kind: minibatches, gradient, loss and accuracy.

The loop draws, updates and records the same way for every net; a model says
how its minibatch looks to the gradient and how its loss and accuracy are
computed, so the loop never branches on the kind.

- :class:`DenseModel`: the fully connected nets of chapters 4-6. The NumPy
  methods take dense rows; the compiled ones the minibatch's CSR, gathered
  from the training set's (see :mod:`fastgrad.training.minibatch`), and the
  loss after the update reads that CSR too.
- :class:`ConvModel`: chapter 7's ``SimpleConvNet``. Every method takes dense
  ``(N, C, H, W)`` float64 images (a convolution reads every pixel: no CSR);
  loss and accuracy come from the compiled forward pass for the compiled
  methods, from the NumPy reference (:mod:`fastgrad.reference_conv`) for the
  others.

The registry entry is looked up on each call, not kept, so a method swapped in
:data:`fastgrad.methods.METHODS` is the one used.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from fastgrad import methods, reference, reference_conv
from fastgrad.training import minibatch
from fastgrad.training import schedule as schedule_mod

#: Images per forward pass when the convnet's accuracy is measured: its im2col rows
#: (``N * OH * OW`` by ``C * FH * FW``) bound the memory, ~0.15 GB for the book's net.
CONV_EVAL_CHUNK = 1_000


class _Sparse(NamedTuple):
    """A compiled method's minibatch: what its gradient reads, and the CSR the loss reads."""

    gradient_input: object
    csr: tuple


class DenseModel:
    """A fully connected net: ``arch`` (:class:`fastgrad.arch.Arch`) and a gradient method."""

    def __init__(self, method_name, arch):
        self.method_name, self.arch = method_name, arch

    @property
    def method(self):
        return methods.METHODS[self.method_name]

    def sampler(self, x, threads):
        """A function ``pick -> minibatch`` of the training images ``x`` (2-d)."""
        method = self.method
        if not method.compiled:
            # fancy indexing copies: C-contiguous
            return lambda pick: np.ascontiguousarray(x[pick], dtype=np.float64)
        rows = minibatch.TrainingRows(x, threads)
        if method.csr_func is not None:
            def take(pick):
                csr = rows.sparse(pick)
                return _Sparse(csr, csr)
            return take
        return lambda pick: _Sparse(rows.dense(pick), rows.sparse(pick))

    def gradient(self, params, batch, labels, h, threads):
        method = self.method
        if isinstance(batch, _Sparse):
            func = method.csr_func if batch.gradient_input is batch.csr else method.func
            return func(params, batch.gradient_input, labels, h, threads, self.arch)
        return method.func(params, batch, labels, h, threads, self.arch)

    def loss(self, params, batch, labels, threads):
        if isinstance(batch, _Sparse):
            return float(minibatch.loss(params, batch.csr, labels, self.arch, threads))
        return float(reference.loss(params, batch, labels, *self.arch))

    def accuracy(self, params, x, labels, threads=None):
        return schedule_mod.accuracy(params, x, labels, self.arch.activation)


class ConvModel:
    """Chapter 7's convolutional net: ``conv`` (stride, pad), ``input_dim`` and a method."""

    def __init__(self, method_name, conv, input_dim):
        self.method_name, self.conv, self.input_dim = method_name, conv, tuple(input_dim)

    @property
    def method(self):
        return methods.METHODS[self.method_name]

    def _images(self, rows):
        return rows.reshape(len(rows), *self.input_dim)  # a view: rows are C-contiguous

    def sampler(self, x, threads):
        """A function ``pick -> (N, C, H, W)`` float64 images of the training rows ``x``."""
        if not self.method.compiled:
            return lambda pick: self._images(np.ascontiguousarray(x[pick], dtype=np.float64))
        return lambda pick: self._images(minibatch.gather(x, pick, threads))

    def gradient(self, params, batch, labels, h, threads):
        return self.method.conv_func(params, batch, labels, h, threads, self.conv)

    def loss(self, params, batch, labels, threads):
        if self.method.compiled:
            return float(minibatch.conv_loss(params, batch, labels, self.conv, threads))
        return float(reference_conv.loss(params, batch, labels, self.conv))

    def accuracy(self, params, x, labels, threads=None):
        """Fraction of the rows ``x`` whose arg-max score is the label."""
        correct = 0
        compiled = self.method.compiled
        for s in range(0, len(x), CONV_EVAL_CHUNK):
            images = self._images(np.asarray(x[s:s + CONV_EVAL_CHUNK], dtype=np.float64))
            if compiled:
                scores = minibatch.conv_scores(params, images, self.conv, threads)
            else:
                scores = reference_conv.predict(params, images, self.conv)
            correct += int(np.count_nonzero(np.argmax(scores, axis=1)
                                            == labels[s:s + CONV_EVAL_CHUNK]))
        return correct / len(x)
