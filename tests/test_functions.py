"""Book semantics of the NumPy activation and loss functions."""

import numpy as np
import pytest

from fastgrad.functions import cross_entropy_error, sigmoid, sigmoid_grad, softmax


def test_sigmoid_values():
    assert sigmoid(0.0) == 0.5
    np.testing.assert_allclose(sigmoid(np.array([-1.0, 2.0])), 1 / (1 + np.exp([1.0, -2.0])))
    np.testing.assert_allclose(sigmoid_grad(np.array([0.0])), [0.25])


def test_softmax_is_shift_invariant_and_stable():
    a = np.array([[1.0, 2.0, 3.0], [1000.0, 1001.0, 1002.0]])
    y = softmax(a)
    np.testing.assert_allclose(y[0], y[1], rtol=1e-15)
    np.testing.assert_allclose(y.sum(axis=1), 1.0)
    assert np.all(np.isfinite(y))


def test_cross_entropy_matches_book_formula_for_labels_and_one_hot():
    y = np.array([[0.1, 0.7, 0.2], [0.5, 0.25, 0.25]])
    t = np.array([1, 0])
    expected = -(np.log(0.7 + 1e-7) + np.log(0.5 + 1e-7)) / 2
    assert cross_entropy_error(y, t) == pytest.approx(expected, rel=1e-15)
    assert cross_entropy_error(y, np.eye(3)[t]) == cross_entropy_error(y, t)


def test_cross_entropy_single_sample():
    y = np.array([0.2, 0.8])
    assert cross_entropy_error(y, np.array([0.0, 1.0])) == pytest.approx(-np.log(0.8 + 1e-7))
    assert cross_entropy_error(y, np.array(1)) == pytest.approx(-np.log(0.8 + 1e-7))
