"""Workloads beyond the standard one: the data choices and the deep nets.

* every method on MNIST, Fashion-MNIST and the dense standardised batch
  (``fastgrad bench --data``; synthetic stand-ins, labelled, when the files are
  absent), 784-50-10;
* the deep nets of the targets table (784-[100]x4-10 ReLU with He and sigmoid
  with Xavier initialisation, batch 128) and a small deep net the smoke run
  can afford.

Each benchmark checks the gradient it timed against the reference (sampled on
these workloads: the book's loop on a seeded sample of entries per tensor).
``fastgrad bench --targets`` gives the ratios of the targets table in one run.
"""

from __future__ import annotations

import pytest

from fastgrad.standard import DATA_CHOICES

big = pytest.mark.big
DEEP = (100, 100, 100, 100)
NETS = {"relu": {"activation": "relu", "weight_init": "relu"},
        "sigmoid": {"activation": "sigmoid", "weight_init": "sigmoid"}}


@pytest.mark.parametrize("data", DATA_CHOICES)
@pytest.mark.parametrize(("method", "batch"), [
    ("incremental", 100), ("backprop", 100), ("jit", 10),
    pytest.param("jit", 100, marks=big), pytest.param("reference", 100, marks=big)])
def test_data(benchmark, measure, data, method, batch, workload, references, warm_kernels):
    w = workload(50, batch, data)
    benchmark.group = f"data {data}: {w.label()}"
    slow = method in ("jit", "reference") and batch >= 100
    grad = measure(method, w, rounds=1 if slow else None)
    references.check(method, grad, w, benchmark)


@pytest.mark.parametrize("net", list(NETS))
@pytest.mark.parametrize(("method", "hidden", "batch"), [
    ("incremental", (20, 20, 20), 16), ("backprop", (20, 20, 20), 16), ("jit", (20, 20, 20), 4),
    pytest.param("incremental", DEEP, 128, marks=big),
    pytest.param("backprop", DEEP, 128, marks=big),
    pytest.param("jit", DEEP, 2, marks=big)])
def test_deep(benchmark, measure, net, method, hidden, batch, workload, references,
              warm_kernels):
    w = workload(hidden, batch, **NETS[net])
    benchmark.group = f"deep {net}: {w.label()}"
    grad = measure(method, w, rounds=1 if method == "jit" else None)
    references.check(method, grad, w, benchmark)
