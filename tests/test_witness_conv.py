"""The conv methods held to their rounding by the extended-precision witness.

Bound: each method's gradient is within ``C * eps64 * S / 2h`` of the
witness's (``S`` from :func:`tests.witness.conv_loss_scale`), the argument of
:mod:`tests.test_witness`: ``f+`` and ``f-`` are float64 evaluations of the
same loss, each off by about one rounding of the quantities of size ``S`` it
forms. Measured on these cases with seeds 0..3: reference and jit reach 1.51
units, incremental 0.48 (it sums per-sample differences formed from moved
activations). ``C`` leaves a factor of about 3 above that, and is far tighter
than the 1e-9 of the other tests.
"""

from __future__ import annotations

import numpy as np
import pytest

from fastgrad import config, reference_conv
from fastgrad.convarch import ConvArch
from fastgrad.methods import METHODS
from tests import witness
from tests.conv_cases import make_conv_case

pytestmark = pytest.mark.skipif(not witness.EXTENDED,
                                reason="np.longdouble is float64 on this platform")
#: bound in units of eps64 * S / 2h, per method
C = {"reference": 4.0, "jit": 4.0, "incremental": 1.5}
#: witness step convention matching each method (see tests/witness.py)
STEP = {"reference": "float64", "jit": "float64", "incremental": "exact"}

CASES = {
    "base": ({}, 1e-4),
    "kinks_and_switches": ({}, 1e-2),
    "pad1": ({"size": 8, "pad": 1}, 1e-4),
    "stride2": ({"size": 9, "stride": 2, "filters": 4}, 1e-4),
    "three_channels": ({"channels": 3, "size": 8}, 1e-2),
    "logits_800": ({}, 1e-4),
    "tied_windows": ({"density": 0.1}, 1e-2),
}


def build(name, seed=0):
    """``(params, x, labels, h, conv)`` of a named case."""
    kwargs, h = CASES[name]
    params, x, labels, conv = make_conv_case(
        **{"filters": 3, "size": 8, "hidden": 8, "classes": 5, "batch": 5, "seed": seed,
           **kwargs})
    if name == "logits_800":  # same softmax; exp(800) overflows unshifted
        params["b3"] = params["b3"] + 800.0
    if name == "tied_windows":  # binary inputs: every blank patch gives exactly b1
        x = (x > 0).astype(np.float64)
        params["b1"] = np.array([0.2, -0.1, 0.05])
    return params, x, labels, h, ConvArch(*conv)


def test_tied_windows_tie():
    params, x, _, _, conv = build("tied_windows")
    a1 = reference_conv.forward(params, x, conv)["conv"]
    windows = a1.reshape(*a1.shape[:2], 3, 2, 3, 2).transpose(0, 1, 2, 4, 3, 5)
    windows = windows.reshape(-1, 4)
    top = np.sort(windows, axis=1)
    assert np.sum((top[:, 3] == top[:, 2]) & (top[:, 3] > 0)) > 10


@pytest.mark.parametrize("name", list(CASES))
def test_conv_methods_within_their_rounding(name):
    params, x, labels, h, conv = build(name)
    unit = witness.conv_rounding_bound(params, x, labels, h, 1.0, conv)
    for step in ("float64", "exact"):
        want = witness.conv_numerical_gradient(params, x, labels, h, conv, step=step)
        for method in (m for m, s in STEP.items() if s == step):
            got = METHODS[method].conv_func(params, x, labels, h, config.max_threads(), conv)
            for k in want:
                assert np.all(np.isfinite(got[k])), f"{method} {k} not finite"
                err = float(np.max(np.abs(got[k].astype(witness.LD) - want[k])))
                assert err <= C[method] * unit, \
                    f"{method} {k}: {err / unit:.3g} units > {C[method]}"


def test_conv_witness_matches_exact_backprop():
    """The witness's conv net is the reference's: its central difference at a small step
    against the reference's analytic gradient of the same loss."""
    params, x, labels, _, conv = build("base", seed=1)
    got = witness.conv_numerical_gradient(params, x, labels, 1e-5, conv, step="exact")
    want = reference_conv.backprop_gradient(params, x, labels, conv, exact=True)
    for k in want:
        np.testing.assert_allclose(np.asarray(got[k], dtype=np.float64), want[k], rtol=0,
                                   atol=1e-9, err_msg=k)
    loss = reference_conv.loss(params, x, labels, conv)
    assert abs(float(witness.conv_loss(params, x, labels, conv)) - loss) <= 8e-16 * loss
