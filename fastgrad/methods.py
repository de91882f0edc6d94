"""The one registry of gradient methods, shared by the tests, the benchmarks and the CLI.

Every entry takes already-validated inputs (see :func:`fastgrad.inputs.check_batch`)
``(params, x, labels, h, threads, arch, timer)`` and returns a dict shaped like
``params``; ``timer`` (:mod:`fastgrad.phases`) times its phases when asked.
``params`` is ``W1, b1, ..., W{L+1}, b{L+1}`` of any depth; ``arch``
(:class:`fastgrad.arch.Arch`, default the chapter-4 sigmoid net without weight
decay) names the activation and the weight decay.

Each method also serves chapter 7's convolutional net through its
``conv_func`` ``(params, x, labels, h, threads, conv, timer)``: ``params``
``W1 (FN, C, FH, FW), b1, W2, b2, W3, b3``, ``x`` ``(N, C, H, W)`` and ``conv``
a :class:`fastgrad.convarch.ConvArch` (stride, padding), validated by
:func:`compute_conv_gradient`.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import numba
import numpy as np

from fastgrad import config, inputs, reference, reference_conv
from fastgrad.arch import SIGMOID, Arch, make_arch
from fastgrad.convarch import check_conv_batch, make_conv_arch
from fastgrad.kernels.conv import conv_full_gradient, conv_prepare
from fastgrad.kernels.conv_incremental import conv_sweep
from fastgrad.kernels.deep import deep_finish, deep_prepare, deep_sweep
from fastgrad.kernels.dense import DENSE_COLUMNS_MAX_VISITED, DENSE_MIN_DENSITY, block_columns
from fastgrad.kernels.forward import dense_to_csr
from fastgrad.kernels.full import full_gradient, full_gradient_range
from fastgrad.kernels.incremental import cached_activations, finish, hidden_sweep
from fastgrad.kernels.layers import FIRST_COLUMNS, FIRST_DENSE, FIRST_SPARSE
from fastgrad.phases import no_timer


@dataclass(frozen=True)
class Method:
    """A gradient method: its function and what kind of gradient it computes."""

    name: str
    func: Callable
    numerical: bool  # central difference (True) or analytic (False)
    compiled: bool  # runs Numba kernels (threads apply)
    summary: str
    #: the same function on the batch's CSR ``(indptr, indices, values)`` (int64, float64)
    #: in place of ``x``, for methods that read only that; a training loop can then
    #: gather each minibatch's CSR from the training set's instead of scanning every pixel
    csr_func: Callable | None = None
    #: the same method for the convolutional net (see the module docstring)
    conv_func: Callable | None = None


@contextmanager
def numba_threads(threads):
    """Run the body with Numba limited to ``threads`` threads."""
    previous = numba.get_num_threads()
    if previous == threads:  # setting costs ~2 us, twice per call (training calls often)
        yield
        return
    numba.set_num_threads(threads)
    try:
        yield
    finally:
        numba.set_num_threads(previous)


def _reference(params, x, labels, h, threads, arch=SIGMOID, timer=no_timer):
    with timer("reference loop", "serial"):
        return reference.net_numerical_gradient(params, x, labels, h, *arch)


def _backprop(params, x, labels, h, threads, arch=SIGMOID, timer=no_timer):
    with timer("backprop", "serial"):
        return reference.backprop_gradient(params, x, labels, False, *arch)


def _flatten(params):
    """``(theta, sizes)``: the parameters back to back and the layer widths."""
    names = reference.param_names(params)
    theta = np.concatenate([params[name].ravel() for name in names])
    count = len(names) // 2
    sizes = np.array([params["W1"].shape[0]] + [params[f"W{i}"].shape[1]
                                                for i in range(1, count + 1)], dtype=np.int64)
    return theta, sizes


def _unflatten(flat, params):
    """Views of ``flat`` shaped like ``params`` (``flat`` is the method's own array)."""
    out, start = {}, 0
    for name in reference.param_names(params):
        size = params[name].size
        out[name] = flat[start:start + size].reshape(params[name].shape)
        start += size
    return out


def _add_decay(grads, params, h, weight_decay):
    """Add the central difference of ``0.5 * lambda * w ** 2`` to every weight's gradient.

    The decay term is separable, so its difference at ``w +- h`` is formed
    directly, from the same perturbed values the reference evaluates:
    ``0.5 * lambda * (w+ - w-) (w+ + w-) / 2h``.
    """
    if weight_decay == 0:
        return grads
    for name in grads:
        if name.startswith("W"):
            w = params[name]
            w_plus, w_minus = w + h, w - h
            grads[name] += 0.5 * weight_decay * (w_plus - w_minus) * (w_plus + w_minus) / (2 * h)
    return grads


def _weight_norms(params):
    """Bound on the spectral norm and the largest column norm of each weight matrix.

    ``sqrt(||W||_1 ||W||_inf)`` and the Frobenius norm both bound ``||W||_2``
    from above (the ReLU margins need an upper bound, not the value); they are
    cheap, and NumPy's reductions are deterministic, where an SVD would go
    through a threaded LAPACK and could flip a margin test between thread counts.
    """
    count = len(params) // 2
    spec, colmax = np.zeros(count), np.zeros(count)
    for m in range(1, count):  # the first layer's are never needed
        W = params[f"W{m + 1}"]
        absW = np.abs(W)
        spec[m] = min(np.sqrt(absW.sum(axis=0).max() * absW.sum(axis=1).max()),
                      np.sqrt(np.sum(W * W)))
        colmax[m] = np.sqrt(np.max(np.sum(W * W, axis=0)))
    return spec, colmax


def _two_layer_sigmoid(params, arch):
    return len(params) == 4 and arch.activation == "sigmoid"


#: First-layer kernels of the ``jit`` method (see :func:`jit_first_layer`).
JIT_PATHS = ("dense", "sparse")
_forced_jit_path = None


@contextmanager
def force_jit_path(path):
    """Run the body with the ``jit`` method's first layer forced ``'dense'`` or ``'sparse'``.

    For tests and benchmarks; ``None`` restores the choice by density.
    """
    global _forced_jit_path
    if path is not None and path not in JIT_PATHS:
        raise ValueError(f"path must be one of {JIT_PATHS} or None, got {path!r}")
    previous = _forced_jit_path
    _forced_jit_path = path
    try:
        yield
    finally:
        _forced_jit_path = previous


def jit_first_layer(x):
    """``(path, reason)``: the ``jit`` method's first-layer kernel for batch ``x``, and why.

    Dense (register-blocked) from :data:`DENSE_MIN_DENSITY` non-zero inputs up,
    else sparse (CSR, zeros skipped). The dense kernel also skips the columns
    zero in a whole block of 4 samples when that leaves out more than
    ``1 - DENSE_COLUMNS_MAX_VISITED`` of them. All give bitwise the same result.
    """
    return _first_layer_plan(x)[:2]


def _first_layer_plan(x):
    """``(path, reason, code, columns)`` (``columns`` None unless the code uses them)."""
    density = np.count_nonzero(x) / max(x.size, 1)
    if _forced_jit_path is not None:
        path = _forced_jit_path
        reason = f"first layer {path} (forced; density {density:.2f})"
    elif density >= DENSE_MIN_DENSITY:
        path = "dense"
        reason = f"first layer dense (density {density:.2f} >= {DENSE_MIN_DENSITY})"
    else:
        path = "sparse"
        reason = f"first layer sparse (density {density:.2f} < {DENSE_MIN_DENSITY})"
    if path == "sparse":
        return path, reason, FIRST_SPARSE, None
    kptr, kidx = block_columns(x)
    visited = kidx.size / max((kptr.size - 1) * x.shape[1], 1)
    if visited < DENSE_COLUMNS_MAX_VISITED:
        return path, (f"{reason}, skipping columns zero in a whole block of 4 samples "
                      f"({visited:.0%} visited)"), FIRST_COLUMNS, (kptr, kidx)
    return path, reason, FIRST_DENSE, None


def _jit_plan(params, x, labels):
    """``(theta, sizes, x, first-layer code, columns, labels)``: the ``jit`` kernel's inputs."""
    theta, sizes = _flatten(params)
    x = np.ascontiguousarray(x, dtype=np.float64)
    _, _, code, columns = _first_layer_plan(x)
    if columns is None:
        columns = (np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int64))
    return theta, sizes, x, code, columns, np.ascontiguousarray(labels, dtype=np.int64)


def _jit(params, x, labels, h, threads, arch=SIGMOID, timer=no_timer):
    with timer("flatten and plan", "serial"):
        theta, sizes, x, code, columns, labels = _jit_plan(params, x, labels)
    with numba_threads(threads):
        with timer("csr", "parallel", x.shape[0]):
            csr = dense_to_csr(x)
        chunks = config.n_chunks(threads, theta.size)
        with timer("perturbed forward passes", "parallel", chunks):
            flat = full_gradient(theta, sizes, arch.code, x, code, csr, columns, labels, h,
                                 chunks)
    with timer("unflatten", "serial"):
        return _add_decay(_unflatten(flat, params), params, h, arch.weight_decay)


def _incremental(params, x, labels, h, threads, arch=SIGMOID, timer=no_timer):
    with numba_threads(threads):
        with timer("csr", "parallel", x.shape[0]):
            csr = dense_to_csr(x)
    return _incremental_csr(params, csr, labels, h, threads, arch, timer)


def _incremental_csr(params, csr, labels, h, threads, arch=SIGMOID, timer=no_timer):
    indptr, indices, values = csr
    with numba_threads(threads):
        if _two_layer_sigmoid(params, arch):
            grads = _two_layer_incremental(params, indptr, indices, values, labels, h, timer)
        else:
            grads = _deep_incremental(params, indptr, indices, values, labels, h, arch, timer)
    with timer("weight decay", "serial"):
        return _add_decay(grads, params, h, arch.weight_decay)


def _two_layer_incremental(params, indptr, indices, values, labels, h, timer):
    W1, b1, W2, b2 = (params[name] for name in reference.PARAM_NAMES)
    n_in, n_hidden = W1.shape
    n_out, n = W2.shape[1], labels.size
    with timer("allocate", "serial"):
        cache = (np.empty((n, n_hidden)), np.empty((n, n_hidden)), np.empty((n, n_hidden)),
                 np.empty((n, n_out)), np.empty((n, n_out)), np.empty(values.size),
                 np.empty(values.size), np.empty(n))
        gb2_rows = np.empty((n, n_out))
        gW1_t, gW1 = np.empty((n_hidden, n_in)), np.empty((n_in, n_hidden))
        gb1, gW2, gb2 = np.empty(n_hidden), np.empty((n_hidden, n_out)), np.empty(n_out)
        scale = 1.0 / (n * 2.0 * h)
    with timer("activations", "parallel", n):
        cached_activations(W1, b1, W2, b2, indptr, indices, values, labels, h, *cache, gb2_rows)
    with timer("hidden sweep", "parallel", n_hidden):
        hidden_sweep(W2, indptr, indices, values, labels, h, *cache, gW1_t, gb1, gW2, scale)
    with timer("finish", "parallel", n_in):
        finish(gW1_t, gb2_rows, scale, gW1, gb2)
    return {"W1": gW1, "b1": gb1, "W2": gW2, "b2": gb2}


def _deep_incremental(params, indptr, indices, values, labels, h, arch, timer):
    with timer("flatten", "serial"):
        theta, sizes = _flatten(params)
        spec, colmax = _weight_norms(params)
    args = (theta, sizes, arch.code, indptr, indices, values, labels, h, spec, colmax)
    n_units = int(sizes[1:-1].sum())
    with timer("activations", "parallel", labels.size):
        cache = deep_prepare(*args)
    with timer("hidden sweep", "parallel", n_units):
        sums = deep_sweep(*args, *cache)
    with timer("finish", "parallel", n_units):
        w_off, b_off, unit_off = cache[:3]
        flat = deep_finish(sums, sizes, w_off, b_off, unit_off, labels.size, h)
    return _unflatten(flat, params)


def pad_images(x, conv):
    """The batch zero-padded by ``conv.pad`` on both sides of each image, C-contiguous."""
    pad = conv.pad
    if pad == 0:
        return x
    return np.ascontiguousarray(np.pad(x, [(0, 0), (0, 0), (pad, pad), (pad, pad)]))


def _conv_reference(params, x, labels, h, threads, conv, timer=no_timer):
    with timer("reference loop", "serial"):
        return reference_conv.numerical_gradient(params, x, labels, h, conv)


def _conv_backprop(params, x, labels, h, threads, conv, timer=no_timer):
    with timer("backprop", "serial"):
        return reference_conv.backprop_gradient(params, x, labels, conv)


def _conv_dims(params, xpad, conv):
    filters, channels, filter_h, filter_w = params["W1"].shape
    hidden, classes = params["W3"].shape
    out_h = (xpad.shape[2] - filter_h) // conv.stride + 1
    out_w = (xpad.shape[3] - filter_w) // conv.stride + 1
    return np.array([channels, xpad.shape[2], xpad.shape[3], filters, filter_h, filter_w,
                     conv.stride, out_h, out_w, hidden, classes], dtype=np.int64)


def _conv_jit(params, x, labels, h, threads, conv, timer=no_timer):
    with timer("flatten and pad", "serial"):
        names = reference_conv.CONV_PARAM_NAMES
        theta = np.concatenate([params[name].ravel() for name in names])
        xpad = pad_images(x, conv)
        dims = _conv_dims(params, xpad, conv)
    with numba_threads(threads):
        chunks = config.n_chunks(threads, theta.size)
        with timer("perturbed forward passes", "parallel", chunks):
            flat = conv_full_gradient(theta, dims, xpad, labels, h, chunks)
    with timer("unflatten", "serial"):
        return _unflatten(flat, params)


#: The layers above the pooling: a two-layer ReLU net without weight decay.
_RELU = Arch("relu", 0.0)


def _conv_incremental(params, x, labels, h, threads, conv, timer=no_timer):
    W1 = params["W1"]
    filters, _, filter_h, filter_w = W1.shape
    with timer("pad", "serial"):
        xpad = pad_images(x, conv)
    with numba_threads(threads):
        with timer("conv forward", "parallel", labels.size):
            a1, features, a2, a3 = conv_prepare(xpad, W1, params["b1"], params["W2"],
                                                params["b2"], params["W3"], params["b3"],
                                                conv.stride, labels)
            csr = dense_to_csr(features)
        # the pooled features feed a two-layer ReLU net: the deep kernel's case
        upper = {"W1": params["W2"], "b1": params["b2"], "W2": params["W3"],
                 "b2": params["b3"]}
        grads = _deep_incremental(upper, *csr, labels, h, _RELU, timer)
        with timer("convolution sweep", "parallel", filters):
            sums = conv_sweep(xpad, params["W2"], params["W3"], conv.stride, filter_h,
                              filter_w, a1, a2, a3, labels, h)
    with timer("finish", "serial"):
        scale = 1.0 / (labels.size * 2.0 * h)
        return {"W1": (sums[:, :-1] * scale).reshape(W1.shape), "b1": sums[:, -1] * scale,
                "W2": grads["W1"], "b2": grads["b1"], "W3": grads["W2"], "b3": grads["b2"]}


METHODS = {
    m.name: m
    for m in (
        Method("reference", _reference, True, False,
               "NumPy, the book's loop: two full forward passes per parameter",
               conv_func=_conv_reference),
        Method("jit", _jit, True, True,
               "Numba, full compiled forward pass per parameter, prange over parameters",
               conv_func=_conv_jit),
        Method("incremental", _incremental, True, True,
               "Numba, recomputes only what each parameter moves, from cached activations",
               _incremental_csr, conv_func=_conv_incremental),
        Method("backprop", _backprop, False, False,
               "NumPy analytic backpropagation (chapter 5), for comparison",
               conv_func=_conv_backprop),
    )
}

#: Methods that compute the central difference (all but backprop).
NUMERICAL_METHODS = tuple(name for name, m in METHODS.items() if m.numerical)
#: Methods that run Numba kernels.
COMPILED_METHODS = tuple(name for name, m in METHODS.items() if m.compiled)
DEFAULT_METHOD = "incremental"


def check_method(method, allowed=None):
    """Return the :class:`Method` called ``method``; ``allowed`` limits the choice."""
    allowed = tuple(METHODS) if allowed is None else tuple(allowed)
    if not isinstance(method, str):
        raise TypeError(f"method must be a string, one of {allowed}, got {type(method).__name__}")
    if method not in allowed:
        raise ValueError(f"unknown method {method!r}: expected one of {allowed}")
    return METHODS[method]


def compute_gradient(method, params, x, t, h=1e-4, threads=None, *, activation="sigmoid",
                     weight_decay=0.0, client=None, chunk_size=None):
    """Validate the inputs and return the gradient of the loss by ``method``.

    Parameters
    ----------
    method : str
        A key of :data:`METHODS`.
    params : dict
        ``W1 (I,H1)``, ``b1 (H1,)``, ..., ``W{L+1} (HL,O)``, ``b{L+1} (O,)``; never modified.
    x : array_like, shape (batch, I)
        Inputs.
    t : array_like
        Integer labels ``(batch,)`` or one-hot rows ``(batch, O)``.
    h : float
        Central-difference step in ``[1e-300, 1]`` (ignored by ``backprop``).
    threads : int, optional
        Numba threads; default ``$FASTGRAD_THREADS`` or all cores.
    activation : {'sigmoid', 'relu'}
        Hidden activation.
    weight_decay : float
        L2 strength ``lambda`` (the loss adds ``0.5 * lambda * sum(W ** 2)``).
    client : dask.distributed.Client, optional
        Compute on this Dask cluster (the ``distributed`` extra): bitwise the
        same result. ``reference`` and ``jit`` are split by chunks of
        parameters, one task each; ``incremental`` (whose parameters share
        cached activations) runs as a single task. ``threads`` is then each
        task's Numba threads (default: the worker's cores over its task
        threads). See :mod:`fastgrad.distributed`.
    chunk_size : int, optional
        Parameters per task with a ``client``; default about one second of
        compute each, from one loss evaluation timed here.

    Returns
    -------
    dict
        Gradient arrays (float64) shaped like ``params``.
    """
    if client is not None:
        return _cluster_gradient(client, chunk_size, method, params, x, t, h, threads,
                                 activation, weight_decay)
    entry = check_method(method)
    arch = make_arch(activation, weight_decay)
    h = inputs.check_h(h, inputs.NET_H_RANGE)
    threads = inputs.check_threads(threads)
    params, x, labels = inputs.check_batch(params, x, t)
    return entry.func(params, x, labels, h, threads, arch)


# Ranges of the flat parameters (W1.ravel(), b1, W2.ravel(), ...), for fastgrad.distributed:
# each entry of the central difference is independent of the others, so ranges computed
# apart and put together give the bits of the whole.

def jit_gradient_range(params, x, labels, h, threads, start, stop, arch=SIGMOID):
    """Entries ``start:stop`` of the ``jit`` gradient over the flat parameters.

    Before weight decay (:func:`gradient_from_flat` adds it); inputs validated.
    """
    theta, sizes, x, code, columns, labels = _jit_plan(params, x, labels)
    with numba_threads(threads):
        csr = dense_to_csr(x)
        return full_gradient_range(theta, sizes, arch.code, x, code, csr, columns, labels, h,
                                   start, stop, config.n_chunks(threads, stop - start))


def gradient_from_flat(flat, params, method, h, arch=SIGMOID):
    """The gradient dict of ``method`` from its flat entries (``jit``: weight decay added)."""
    grads = _unflatten(np.array(flat, dtype=np.float64), params)
    return _add_decay(grads, params, h, arch.weight_decay) if method == "jit" else grads


def _cluster_gradient(client, chunk_size, method, params, x, t, h, threads, activation,
                      weight_decay):
    """:func:`compute_gradient` on a Dask client (see :mod:`fastgrad.distributed`)."""
    from fastgrad import distributed

    distributed.import_distributed()  # a missing extra says so before anything else
    entry = check_method(method)
    arch = make_arch(activation, weight_decay)
    h = inputs.check_h(h, inputs.NET_H_RANGE)
    params, x, labels = inputs.check_batch(params, x, t)
    return distributed.net_gradient(client, entry.name, params, x, labels, h, arch,
                                    threads=threads, chunk_size=chunk_size)


def compute_conv_gradient(method, params, x, t, h=1e-4, threads=None, *, stride=1, pad=0,
                          input_dim=None):
    """Validate the inputs and return the convolutional net's gradient by ``method``.

    The net is chapter 7's ``SimpleConvNet`` (conv -> ReLU -> 2x2 max-pool with
    stride 2 -> affine -> ReLU -> affine -> softmax with loss).

    Parameters
    ----------
    method : str
        A key of :data:`METHODS`.
    params : dict
        ``W1 (FN, C, FH, FW)``, ``b1 (FN,)``, ``W2 (FN*PH*PW, hidden)``,
        ``b2 (hidden,)``, ``W3 (hidden, classes)``, ``b3 (classes,)``; never modified.
    x : array_like, shape (batch, C, H, W)
        Inputs; flat rows ``(batch, C*H*W)`` when ``input_dim`` is given.
    t : array_like
        Integer labels ``(batch,)`` or one-hot rows ``(batch, classes)``.
    h : float
        Central-difference step in ``[1e-300, 1]`` (ignored by ``backprop``).
    threads : int, optional
        Numba threads; default ``$FASTGRAD_THREADS`` or all cores.
    stride, pad : int
        The convolution's stride (>= 1) and zero padding (>= 0).
    input_dim : tuple of int, optional
        ``(C, H, W)`` of one input; checked against ``x`` when given.

    Returns
    -------
    dict
        Gradient arrays (float64) shaped like ``params``.
    """
    entry = check_method(method)
    conv = make_conv_arch(stride, pad)
    h = inputs.check_h(h, inputs.NET_H_RANGE)
    threads = inputs.check_threads(threads)
    params, x, labels, _ = check_conv_batch(params, x, t, conv, input_dim)
    return entry.conv_func(params, x, labels, h, threads, conv)
