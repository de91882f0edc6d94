"""The one definition of abs / relative gradient error (fastgrad.compare), on hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest

from fastgrad import validate
from fastgrad.compare import REL_FLOOR, abs_error, relative_error
from fastgrad.reference import PARAM_NAMES


def test_ordinary_values_are_relative_to_the_larger_magnitude():
    rel = relative_error([1.0, -2.0, 0.5], [1.1, -2.2, 0.25])
    np.testing.assert_allclose(rel, [0.1 / 1.1, 0.2 / 2.2, 0.25 / 0.5], rtol=1e-15)
    np.testing.assert_allclose(abs_error([1.0, -2.0], [1.1, -2.2]), [0.1, 0.2], rtol=1e-14)


def test_tiny_gradients_are_measured_against_the_floor():
    # the case of the issue: a 1e-9 gradient off by rounding noise (1e-12) was
    # reported as rel 1e-3; against the floor it is 1e-6, as it should read
    rel = relative_error([1e-9 + 1e-12], [1e-9])
    assert rel[0] == pytest.approx(1e-12 / REL_FLOOR, rel=1e-3)
    assert relative_error([3e-7], [1e-7])[0] == pytest.approx(2e-7 / REL_FLOOR)
    # right at the floor and above it the floor no longer matters
    assert relative_error([2e-6], [1e-6])[0] == pytest.approx(0.5)


def test_zeros():
    assert relative_error([0.0, 0.0], [0.0, -0.0]).tolist() == [0.0, 0.0]
    # 0 vs 1e-12: tiny, not 100 % (the unfloored definition says 1.0)
    assert relative_error([0.0], [1e-12])[0] == pytest.approx(1e-6)
    # 0 vs a real gradient: fully wrong
    assert relative_error([0.0], [0.3])[0] == 1.0


def test_large_values_and_symmetry():
    got, want = np.array([1e12, -3e300]), np.array([1e12 + 1e-4 * 1e12, -3e300 * (1 + 1e-9)])
    rel = relative_error(got, want)
    np.testing.assert_allclose(rel, [1e-4 / (1 + 1e-4), 1e-9 / (1 + 1e-9)], rtol=1e-6)
    np.testing.assert_array_equal(rel, relative_error(want, got))
    assert np.all(rel <= 2.0) and relative_error([1.0], [-1.0])[0] == 2.0  # opposite signs


def test_non_finite_elements_count_as_infinite_without_warnings():
    got = np.array([np.nan, np.inf, 1.0, np.inf, 1.0])
    want = np.array([1.0, 1.0, np.nan, np.inf, 1.0])
    with np.errstate(all="raise"):
        rel = relative_error(got, want)
        diff = abs_error(got, want)
    assert rel.tolist() == [np.inf] * 4 + [0.0]
    assert diff.tolist() == [np.inf] * 4 + [0.0]


def test_floor_argument_and_shapes_are_checked():
    assert relative_error([0.0], [1e-3], floor=1e-2)[0] == pytest.approx(0.1)
    for bad in (0.0, -1e-6, np.inf, np.nan, True, "1e-6", None):
        with pytest.raises(ValueError, match="floor"):
            relative_error([1.0], [1.0], floor=bad)
    with pytest.raises(ValueError, match="shape"):
        relative_error(np.zeros(3), np.zeros((3, 1)))
    with pytest.raises(ValueError, match="shape"):
        abs_error(np.zeros(2), np.zeros(3))


def test_inputs_are_not_modified():
    got, want = np.array([1.0, np.nan]), np.array([2.0, 3.0])
    relative_error(got, want)
    assert got[0] == 1.0 and np.isnan(got[1]) and want.tolist() == [2.0, 3.0]


def test_validate_reports_use_this_definition():
    rng = np.random.default_rng(0)
    want = {n: rng.standard_normal((3, 2)) for n in PARAM_NAMES}
    want["W1"][0, 0] = 1e-9  # a near-zero gradient with rounding noise on top
    got = {n: w.copy() for n, w in want.items()}
    got["W1"][0, 0] += 1e-12
    got["b2"][1, 1] *= 1 + 1e-5
    report = validate.compare(got, want, "m", "reference", tol=1e-9)
    by_name = {t.name: t for t in report.tensors}
    for name in PARAM_NAMES:
        assert by_name[name].max_rel == pytest.approx(
            relative_error(got[name], want[name]).max(), rel=1e-12, abs=0)
    assert by_name["W1"].max_rel == pytest.approx(1e-6, rel=1e-3)  # was 1e-3 unfloored
    assert by_name["b2"].max_rel == pytest.approx(1e-5 / (1 + 1e-5), rel=1e-6)
    assert by_name["b1"].max_rel == 0.0


def test_huge_values_of_opposite_sign_do_not_overflow():
    with np.errstate(all="raise"):
        assert relative_error([1e308], [-1e308])[0] == 2.0
        assert abs_error([1e308], [-1e308])[0] == np.inf


def test_check_table_says_what_max_rel_is(capsys):
    from fastgrad import cli

    assert cli.main(["check", "--batch", "2", "--hidden", "3", "--synthetic",
                     "--methods", "incremental"]) == 0
    out = capsys.readouterr().out
    definition = "max rel = max |a - b| / max(|a|, |b|, 1e-06)"
    assert definition in out and out.index(definition) < out.index("max rel  worst")
