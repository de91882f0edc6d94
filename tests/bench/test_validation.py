"""fastgrad.bench.validation: the reference (full or sampled) and each method's check."""

from __future__ import annotations

import numpy as np
import pytest

from fastgrad.bench.validation import (
    ANALYTIC_TOL,
    SAMPLED_LABEL,
    TOL,
    check_gradient,
    compute_reference,
    tolerance,
    validate,
)
from fastgrad.bench.workload import load_conv_workload, load_workload
from fastgrad.methods import METHODS


def _err(method, grad, ref, w):
    return check_gradient(method, grad, ref, w).max_abs


def test_sampled_reference_is_bitwise_the_full_one_and_scaled(tiny):
    w, ref = tiny
    full = compute_reference(w, sample="all")
    assert not full.sampled and full.entries == w.n_params and full.scale == 1.0
    sampled = compute_reference(w, sample=4)
    assert sampled.sampled and 4 <= sampled.entries < w.n_params
    for name, values in sampled.grad.items():
        picked = ~np.isnan(values)
        assert picked.any()
        np.testing.assert_array_equal(ref[name][picked], values[picked])
    assert _err("jit", ref, sampled, w) == 0.0
    assert sampled.full_seconds == pytest.approx(sampled.seconds * w.n_params / sampled.entries)
    d = sampled.as_dict()
    assert d["label"] == SAMPLED_LABEL == "sampled, scaled" and d["entries"] == sampled.entries
    # 'auto' keeps the full loop on small nets
    assert not compute_reference(w).sampled


def test_deep_relu_methods_validate_on_the_sampled_entries():
    w = load_workload([4, 3], 5, synthetic=True, activation="relu", weight_init="relu",
                      weight_decay=0.1)
    ref = compute_reference(w, sample=3)
    for method in METHODS:
        v = validate(method, w, ref, threads=1)
        assert v.ok, v
        assert v.comparison.compared == ref.entries
    assert validate("backprop", w, ref).comparison.excusable  # ReLU kinks told apart


def test_validate_passes_good_and_fails_wrong_gradients(tiny):
    w, ref = tiny
    for method in METHODS:
        v = validate(method, w, ref, threads=1)
        assert v.ok, v
        assert v.tol == tolerance(method) == (ANALYTIC_TOL if method == "backprop" else TOL)
        d = v.as_dict()
        assert d["method"] == method and d["ok"] and d["max_abs_error"] <= d["tol"]
    wrong = {k: v.copy() for k, v in ref.items()}
    wrong["b2"][3] += 2e-9
    check = check_gradient("jit", wrong, ref, w)
    assert check.max_abs == pytest.approx(2e-9, rel=1e-3) and not check.ok
    with pytest.raises(ValueError, match="unknown method"):
        validate("nope", w, ref)


@pytest.mark.parametrize("net", ["mlp", "convnet"])
def test_backprop_on_relu_nets_excuses_kinks_but_not_a_wrong_entry(net):
    # large steps cross ReLU (and max-pool) kinks; backprop is still right there. The
    # convnet's at 1e-3: at 1e-2 a conv bias's step crosses so many kinks in its channel
    # that the one-sided stencil no longer tells them from a wrong entry
    if net == "mlp":
        w = load_workload([6, 5], 8, synthetic=True, activation="relu", weight_init="relu",
                          h=1e-2)
    else:
        w = load_conv_workload(6, 4, {"filter_num": 3, "filter_size": 3, "pad": 0,
                                      "stride": 1}, synthetic=True, h=1e-3)
    ref = compute_reference(w, sample="all")
    grad = METHODS["backprop"].func(w.params, w.x, w.labels, w.h, 1, w.arch) if net == "mlp" \
        else METHODS["backprop"].conv_func(w.params, w.x, w.labels, w.h, 1, w.conv)
    right = check_gradient("backprop", grad, ref, w)
    assert right.ok and right.excused > 0, right
    wrong = {k: v.copy() for k, v in grad.items()}
    wrong["W2"].reshape(-1)[0] += 1e-3
    assert not check_gradient("backprop", wrong, ref, w).ok
