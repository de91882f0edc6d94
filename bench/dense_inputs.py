"""Inputs and first-layer paths shared by the dense-kernel benchmarks.

``batch_of(name, batch)`` gives float64 input batches: real MNIST (about 18%
lit), Fashion-MNIST (about 50%), Fashion standardised per pixel (about 98%,
with negatives) and seeded synthetic batches of any density. ``first_layer``
runs the hidden pre-activations of a batch either dense or sparse (CSR).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from fastgrad.config import JIT_OPTIONS, PARALLEL_OPTIONS
from fastgrad.kernels import dense
from fastgrad.kernels.forward import dense_to_csr, sample_hidden
from fastgrad.standard import real_batch, standardise

DATASETS = ("mnist", "fashion", "standardised")


def synthetic(batch, density, n_in=784, seed=0):
    """Positive pixels in (0, 1], each lit with probability ``density``."""
    rng = np.random.default_rng(seed)
    lit = rng.random((batch, n_in)) < density
    return np.where(lit, rng.integers(1, 256, size=(batch, n_in)) / 255.0, 0.0)


def batch_of(name, batch):
    """The first ``batch`` test images of ``name`` as float64, or None when not found."""
    dataset = "fashion" if name == "standardised" else name
    found = real_batch(batch, dataset)
    if found is None:
        return None
    x = found[0].astype(np.float64)
    if name == "standardised":
        from fastgrad.data import load_test_set

        x = standardise(x, load_test_set(dataset)[0])  # as fastgrad bench --data dense
    return np.ascontiguousarray(x)


def layer(n_in, hidden, seed=0):
    """Weights scaled like the book's ``weight_init_std=0.01`` net."""
    rng = np.random.default_rng(seed)
    W = 0.01 * rng.standard_normal((n_in, hidden))
    b = np.zeros(hidden)
    Wp = np.empty(dense.packed_size(n_in, hidden))
    dense.pack(W, Wp)
    return W, Wp, b


@njit(**{**JIT_OPTIONS, "cache": False})
def csr_hidden(W, b, indptr, indices, values, out):
    """Hidden pre-activations through the per-sample sparse kernel (the jit method's path)."""
    for n in range(out.shape[0]):
        sample_hidden(W, b, indptr, indices, values, n, out[n])


def first_layer(path, x, W, Wp, b):
    """``run()`` computing ``x @ W + b`` by ``path``: 'dense' (packed W), 'dense+pack'
    (packing W each call), 'sparse' (CSR, packed W) or 'csr' (forward.sample_hidden)."""
    out = np.empty((x.shape[0], W.shape[1]))
    if path == "dense":
        return lambda: dense.affine_packed(x, Wp, b, out) or out
    if path == "dense+pack":
        return lambda: dense.affine(x, W, b, out) or out
    indptr, indices, values = dense_to_csr(x)
    if path == "sparse":
        return lambda: dense.sparse_affine(indptr, indices, values, W, Wp, b, out) or out
    return lambda: csr_hidden(W, b, indptr, indices, values, out) or out


# --- BLAS inside Numba ---------------------------------------------------------------
# Numba compiles np.dot on 2-D float64 arrays to a dgemm call through SciPy's
# cython_blas (so SciPy must be installed); the caller holds BLAS at one thread.


@njit(**{**JIT_OPTIONS, "cache": False})
def blas_affine(z, W, b, out):
    """``out = z @ W + b`` through BLAS called from compiled code."""
    np.dot(z, W, out)
    for s in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[s, j] += b[j]


@njit(**{**PARALLEL_OPTIONS, "cache": False})
def perturbed_layers(z, W, b, n_items, n_chunks, use_blas):
    """Like the jit method: per chunk a copy of the weights, perturbed in place item by item,
    one dense layer per item. Returns each item's output summed in order (any changed bit
    of an output shows there), to compare across thread counts."""
    n_in, n_out = W.shape
    res = np.empty(n_items)
    for c in prange(n_chunks):
        mine = W.copy()
        packed = np.empty(dense.packed_size(n_in, n_out))
        dense.pack(W, packed)
        out = np.empty((z.shape[0], n_out))
        for i in range(c * n_items // n_chunks, (c + 1) * n_items // n_chunks):
            k, j = (i * 7919) % n_in, i % n_out
            original = mine[k, j]
            p = dense.packed_index(n_in, n_out, k, j)
            mine[k, j] = packed[p] = original + 1e-4
            if use_blas:
                blas_affine(z, mine, b, out)
            else:
                dense.affine_packed(z, packed, b, out)
            mine[k, j] = packed[p] = original
            total = 0.0
            for s in range(out.shape[0]):
                for q in range(n_out):
                    total += out[s, q]
            res[i] = total
    return res


# --- whole forward pass (784-H-10 sigmoid net), as the jit method would run it ---------


@njit(**{**JIT_OPTIONS, "cache": False})
def dense_net_loss(x, csr_ok, indptr, indices, values, W1, Wp1, b1, Wp2, b2, labels, a1, a2):
    """Batch loss with the dense kernels: sparse or dense first layer, then dense."""
    if csr_ok:
        dense.sparse_affine(indptr, indices, values, W1, Wp1, b1, a1)
    else:
        dense.affine_packed(x, Wp1, b1, a1)
    dense.sigmoid_(a1)
    dense.affine_packed(a1, Wp2, b2, a2)
    return dense.loss_from_logits(a2, labels)


def net_losses(x, labels, hidden=50, seed=0):
    """``{name: run()}`` for one batch loss: 'batch_loss' (today's kernel), 'dense',
    'sparse' and 'auto' (by :data:`dense.DENSE_MIN_DENSITY`)."""
    from fastgrad.kernels.forward import batch_loss

    W1, Wp1, b1 = layer(x.shape[1], hidden, seed)
    W2, Wp2, b2 = layer(hidden, 10, seed + 1)
    b1 += 0.1  # non-zero biases, so that they are exercised
    b2 -= 0.1
    indptr, indices, values = dense_to_csr(x)
    a1, a2 = np.empty((x.shape[0], hidden)), np.empty((x.shape[0], 10))
    s1, s2 = np.empty(hidden), np.empty(10)
    sparse_ok = np.count_nonzero(x) / x.size < dense.DENSE_MIN_DENSITY

    def ours(use_csr):
        return lambda: dense_net_loss(x, use_csr, indptr, indices, values, W1, Wp1, b1, Wp2,
                                      b2, labels, a1, a2)

    return {"batch_loss": lambda: batch_loss(W1, b1, W2, b2, indptr, indices, values, labels,
                                             s1, s2),
            "dense": ours(False), "sparse": ours(True), "auto": ours(sparse_ok)}
