"""Seeded test cases shared by the test modules."""

from __future__ import annotations

import numpy as np


def make_case(n_in, n_hidden, n_out, batch, seed, density=0.3, std=0.5):
    """Seeded params, MNIST-like sparse inputs in [0, 1] and integer labels.

    ``std`` larger than the book's 0.01 makes the gradients large enough for
    an error to show.
    """
    rng = np.random.default_rng(seed)
    params = {
        "W1": std * rng.standard_normal((n_in, n_hidden)),
        "b1": 0.1 * rng.standard_normal(n_hidden),
        "W2": std * rng.standard_normal((n_hidden, n_out)),
        "b2": 0.1 * rng.standard_normal(n_out),
    }
    x = rng.random((batch, n_in)) * (rng.random((batch, n_in)) < density)
    t = rng.integers(0, n_out, size=batch)
    return params, x.astype(np.float32), t
