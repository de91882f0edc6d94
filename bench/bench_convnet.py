"""Run time of chapter 7's SimpleConvNet gradient methods, each validated before it is timed.

Small nets (a few thousand parameters), so the smoke run in the normal test
suite (``--benchmark-disable``) stays short; every gradient timed is checked
against the book's loop on every conv parameter and a seeded sample of the rest.
"""

from __future__ import annotations

import pytest

from fastgrad.methods import METHODS
from fastgrad.standard import standard_conv_workload
from fastgrad.validate import DEFAULT_TOL, compare
from fastgrad.validate_conv import conv_reference_gradient

NETS = {"3x3x3-5": ({"filter_num": 3, "filter_size": 3, "pad": 0, "stride": 1}, 5),
        "4x5x5-10": ({"filter_num": 4, "filter_size": 5, "pad": 0, "stride": 1}, 10)}


@pytest.fixture(scope="module", params=list(NETS))
def conv_case(request):
    conv_param, hidden = NETS[request.param]
    work = standard_conv_workload(4, hidden, conv_param, synthetic=True)
    net = work.net
    ref = conv_reference_gradient(net.params, work.x, work.t.astype("int64"), 1e-4, net.conv,
                                  sample=8)
    return request.param, work, ref


@pytest.mark.parametrize("method", ["jit", "incremental", "backprop"])
def test_conv_method(benchmark, method, conv_case):
    name, work, ref = conv_case
    net = work.net
    benchmark.group = f"convnet {name}, batch 4"
    func = METHODS[method].conv_func
    labels = work.t.astype("int64")
    grads = func(net.params, work.x, labels, 1e-4, 1, net.conv)  # validate first
    tol = DEFAULT_TOL if METHODS[method].numerical else float("inf")
    assert compare(grads, ref, method, "reference", tol).ok
    benchmark(func, net.params, work.x, labels, 1e-4, 1, net.conv)
