"""Other libraries' numerical gradients beside fastgrad's, on a smaller net.

SciPy's 3-point ``approx_derivative`` copies the whole parameter vector for
every step, so on all 39,760 parameters it costs about twice the reference;
the peers therefore run on 784-10-10 with 10 digits, next to fastgrad's
methods on the same workload (group ``peers``). PyTorch is optional.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from fastgrad import config, reference
from fastgrad.bench.machine import blas_limits
from fastgrad.methods import METHODS
from fastgrad.validate import BACKPROP_TOL, compare

PEER = (10, 10)  # hidden, batch


def _unflatten(theta, shapes):
    out, start = {}, 0
    for name, shape in shapes.items():
        size = int(np.prod(shape))
        out[name] = theta[start:start + size].reshape(shape)
        start += size
    return out


def _flat(params):
    return np.concatenate([params[k].ravel() for k in reference.PARAM_NAMES])


@pytest.fixture
def peer(workload, benchmark):
    w = workload(*PEER)
    benchmark.group = f"peers: {w.label()}"
    benchmark.extra_info.update(layers=list(w.layers), batch=w.batch)
    return w


@pytest.mark.parametrize("method", list(METHODS))
def test_fastgrad(benchmark, method, peer, references, warm_kernels):
    w, entry = peer, METHODS[method]
    with blas_limits(1):
        grad = benchmark(entry.func, w.params, w.x, w.labels, w.h, config.default_threads(),
                         w.arch)
    if method == "reference":
        # the sampled reference is the reference's own loop: check it against an
        # independent value, the analytic gradient of the same loss (O(h^2) away)
        exact = reference.backprop_gradient(w.params, w.x, w.labels, exact=True)
        err = compare(grad, exact, method, "analytic", BACKPROP_TOL).max_abs
        benchmark.extra_info["max_abs_error_vs_analytic"] = err
        assert err <= BACKPROP_TOL, f"reference vs analytic on {w.label()}: {err:.3e}"
    else:
        references.check(method, grad, w, benchmark)


def test_scipy_approx_derivative(benchmark, peer, references):
    numdiff = pytest.importorskip("scipy.optimize._numdiff",
                                  reason="SciPy is not installed: its peer is skipped")
    w = peer
    shapes = {k: w.params[k].shape for k in reference.PARAM_NAMES}

    def loss(theta):
        return reference.loss(_unflatten(theta, shapes), w.x, w.labels)

    def run():
        # abs_step: the same absolute h as the book, not SciPy's relative default
        return numdiff.approx_derivative(loss, _flat(w.params), method="3-point", abs_step=w.h)

    with blas_limits(1):
        flat = benchmark.pedantic(run, rounds=3, iterations=1)
    references.check("reference", _unflatten(flat, shapes), w, benchmark)
    benchmark.extra_info["peer"] = "scipy.optimize._numdiff.approx_derivative(method='3-point')"


def test_torch_numerical_jacobian(benchmark, peer, references):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: its peer is skipped")
    import importlib

    # the module, not the function ``torch.autograd.gradcheck`` that shadows it
    gradcheck = importlib.import_module("torch.autograd.gradcheck")
    numerical_jacobian = getattr(gradcheck, "get_numerical_jacobian", None)
    if numerical_jacobian is None:
        pytest.skip(f"torch {torch.__version__} has no numerical-Jacobian helper")

    w = peer
    shapes = {k: w.params[k].shape for k in reference.PARAM_NAMES}
    x = torch.from_numpy(w.x)
    labels = torch.from_numpy(w.labels)

    def loss(inputs):  # torch passes the inputs as one tuple
        (theta,) = inputs
        p = _unflatten(theta, shapes)
        z1 = torch.sigmoid(x @ p["W1"] + p["b1"])
        y = torch.softmax(z1 @ p["W2"] + p["b2"], dim=1)
        return -torch.log(y[torch.arange(len(labels)), labels] + 1e-7).sum() / len(labels)

    def run():
        # torch differences only the inputs that require a gradient
        theta = torch.from_numpy(_flat(w.params)).requires_grad_()
        with warnings.catch_warnings():  # the function is deprecated but still the peer
            warnings.simplefilter("ignore")
            return numerical_jacobian(loss, (theta,), eps=w.h)[0]

    jac = benchmark.pedantic(run, rounds=1, iterations=1)
    grad = _unflatten(jac.reshape(-1).numpy(), shapes)
    references.check("reference", grad, w, benchmark)
    benchmark.extra_info["peer"] = "torch.autograd.gradcheck.get_numerical_jacobian"
