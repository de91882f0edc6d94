"""The minibatches of a training run and their loss after the update, on the Numba threads.

The book draws each minibatch with replacement and records its loss after the
update. With NumPy those are serial work next to a ~3 ms chapter-4 gradient:
``x[pick]`` and its float64 conversion (~0.1 ms), the CSR the incremental
kernels read (a scan of every pixel, ~0.05 ms) and the loss, a dense BLAS
product of all 784 inputs on one core (~0.4 ms). Here the training set's CSR
is built once per run, each minibatch's CSR is copied out of it in parallel,
and the loss reads only the non-zero inputs, parallel over samples.

The convolutional net's loss and scores come from its compiled forward pass,
parallel over samples (:func:`conv_scores`): the NumPy im2col pass costs
about as much as a gradient.
"""

from __future__ import annotations

import numpy as np

from fastgrad import reference
from fastgrad.functions import cross_entropy_error, softmax
from fastgrad.kernels.batch import gather_csr, gather_rows, sample_log_probs
from fastgrad.kernels.conv import conv_logits
from fastgrad.kernels.forward import csr_as
from fastgrad.methods import numba_threads, pad_images


def gather(x, pick, threads):
    """``x[pick]`` as a new C-contiguous float64 array (``x`` 2-d, ``pick`` int64)."""
    out = np.empty((pick.size, x.shape[1]))
    with numba_threads(threads):
        gather_rows(x, pick, out)
    return out


class TrainingRows:
    """A training set's images, and their CSR for drawing minibatches in that form.

    The CSR keeps ``x``'s dtype and int32 column indices: 8 bytes per non-zero
    float32 pixel, so for MNIST's digits (about a fifth of the pixels lit)
    about 40% of the memory of ``x`` itself, built once per run.
    """

    def __init__(self, x, threads):
        self.x, self.threads = x, threads
        index = np.int32 if x.shape[1] <= np.iinfo(np.int32).max else np.int64
        with numba_threads(threads):
            self.csr = csr_as(x, np.empty(0, dtype=index), np.empty(0, dtype=x.dtype))

    def dense(self, pick):
        """Rows ``pick`` as a C-contiguous float64 array."""
        return gather(self.x, pick, self.threads)

    def sparse(self, pick):
        """Rows ``pick`` as CSR ``(indptr, indices, values)``, int64 and float64."""
        with numba_threads(self.threads):
            return gather_csr(*self.csr, pick)


def loss(params, csr, labels, arch, threads):
    """The book's loss of ``params`` on the batch whose CSR is ``csr``, as the reference's.

    ``labels`` are int64 and in range (the loop checks them once). Each
    sample's log probability comes from the kernel, their sum from NumPy, as
    in :func:`reference.loss`: the two agree to rounding.
    """
    count = reference.n_layers(params)
    weights = tuple(np.ascontiguousarray(params[f"W{i}"], dtype=np.float64)
                    for i in range(1, count + 1))
    biases = tuple(np.ascontiguousarray(params[f"b{i}"], dtype=np.float64)
                   for i in range(1, count + 1))
    log_probs = np.empty(labels.size)
    with numba_threads(threads):
        sample_log_probs(weights, biases, arch.code, *csr, labels, log_probs)
    return -np.sum(log_probs) / labels.size + reference.decay_term(params, arch.weight_decay)


def conv_scores(params, images, conv, threads):
    """The convolutional net's scores (logits) of ``images`` ``(N, C, H, W)``, compiled.

    ``threads`` Numba threads (None: as many as Numba has now).

    Each sample's forward pass is the jit method's, on its own thread: the
    scores agree with :func:`fastgrad.reference_conv.predict` to rounding,
    bitwise the same for any thread count.
    """
    xpad = pad_images(np.ascontiguousarray(images, dtype=np.float64), conv)
    weights = [np.ascontiguousarray(params[name], dtype=np.float64)
               for name in ("W1", "b1", "W2", "b2", "W3", "b3")]
    if threads is None:
        return conv_logits(xpad, *weights, conv.stride)
    with numba_threads(threads):
        return conv_logits(xpad, *weights, conv.stride)


def conv_loss(params, images, labels, conv, threads):
    """The book's loss of the convolutional net on ``images``: compiled scores, NumPy loss."""
    return cross_entropy_error(softmax(conv_scores(params, images, conv, threads)), labels)
