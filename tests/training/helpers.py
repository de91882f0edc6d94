"""What the training tests share: a small learnable problem, a run on it, run comparisons.

Small synthetic problems only (20 inputs, 8 hidden units, 3 classes; 784 inputs
for the CLI), so each module runs in seconds; the real data is never touched.
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from fastgrad import methods
from fastgrad.training import train

#: A 20-8-3 net trained by batches of 50 at lr 1.0: learns :data:`DATA` in ~100 steps.
SMALL = {"hidden_size": 8, "output_size": 3, "batch_size": 50, "lr": 1.0}


def blobs(n_train=500, n_test=100, n_in=20, n_classes=3, seed=0):
    """Sparse inputs in [0, 1] around one centre per class: learnable in a few epochs."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 1, (n_classes, n_in)) * (rng.uniform(size=(n_classes, n_in)) < 0.6)
    t = rng.integers(0, n_classes, n_train + n_test)
    x = np.clip(centres[t] + 0.15 * rng.standard_normal((len(t), n_in)), 0, 1)
    x[x < 0.1] = 0.0  # sparse, like MNIST pixels
    return (x[:n_train], t[:n_train]), (x[n_train:], t[n_train:])


#: The training and test sets most tests train on: 500 and 100 samples of 20 inputs.
DATA = blobs()


def run(**kwargs):
    """``train`` on :data:`DATA` with the :data:`SMALL` net, ``kwargs`` on top."""
    return train(DATA, **{**SMALL, **kwargs})


def swap_gradient(monkeypatch, fake, method=methods.DEFAULT_METHOD):
    """Make ``fake`` the registry function that ``train`` calls for ``method``
    (on dense minibatches: the method's CSR entry is taken away)."""
    monkeypatch.setitem(methods.METHODS, method,
                        dataclasses.replace(methods.METHODS[method], func=fake, csr_func=None))


def same(a, b):
    """Bitwise equality of two runs (timings aside)."""
    assert a.losses.tobytes() == b.losses.tobytes()
    assert a.epochs == b.epochs
    assert list(a.params) == list(b.params)
    for name in a.params:
        assert a.params[name].tobytes() == b.params[name].tobytes(), name
    assert (a.final_train_acc, a.final_test_acc) == (b.final_train_acc, b.final_test_acc)
    assert {k: v for k, v in a.config.items() if k != "iters"} == \
        {k: v for k, v in b.config.items() if k != "iters"}


def bytes_and_listing(path):
    """A file's bytes and its folder's listing: what a refused or failed write must leave."""
    return path.read_bytes(), sorted(os.listdir(path.parent))


def rewrite(path, drop=(), **replace):
    """Rewrite the checkpoint ``path`` without the arrays ``drop``, with ``replace`` set."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k not in drop}
    arrays.update(replace)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def meta_with(path, **changes):
    """The checkpoint's ``meta`` text with ``changes`` made, ready for :func:`rewrite`."""
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
    meta.update(changes)
    return np.array(json.dumps(meta))
