"""The conv reference against independent arithmetic: direct convolution, the adjoint, backprop."""

from __future__ import annotations

import numpy as np
import pytest

from fastgrad import reference_conv as rc
from fastgrad.functions import LOG_EPS, softmax
from tests.conv_cases import make_conv_case


def direct_conv(x, W, b, stride, pad):
    """The convolution by its definition, one output at a time."""
    n, _, height, width = x.shape
    filters, _, fh, fw = W.shape
    xp = np.pad(x, [(0, 0), (0, 0), (pad, pad), (pad, pad)])
    oh = (height + 2 * pad - fh) // stride + 1
    ow = (width + 2 * pad - fw) // stride + 1
    out = np.empty((n, filters, oh, ow))
    for i in range(n):
        for f in range(filters):
            for oy in range(oh):
                for ox in range(ow):
                    patch = xp[i, :, oy * stride:oy * stride + fh, ox * stride:ox * stride + fw]
                    out[i, f, oy, ox] = np.sum(patch * W[f]) + b[f]
    return out


@pytest.mark.parametrize(("size", "fsize", "stride", "pad"),
                         [(8, 3, 1, 0), (9, 3, 2, 1), (7, 5, 1, 2), (10, 4, 2, 0)])
def test_im2col_convolution_is_the_direct_one(size, fsize, stride, pad):
    rng = np.random.default_rng(size)
    x = rng.standard_normal((2, 3, size, size))
    W, b = rng.standard_normal((4, 3, fsize, fsize)), rng.standard_normal(4)
    got, col = rc.conv_forward(x, W, b, stride, pad)
    np.testing.assert_allclose(got, direct_conv(x, W, b, stride, pad), rtol=0, atol=1e-12)
    # col2im is the adjoint of im2col: <im2col(x), c> = <x, col2im(c)>
    c = rng.standard_normal(col.shape)
    left = np.sum(col * c)
    right = np.sum(x * rc.col2im(c, x.shape, fsize, fsize, stride, pad))
    assert abs(left - right) <= 1e-10 * abs(left)


def test_pooling_takes_the_first_maximum():
    x = np.array([[[[1.0, 3.0, 0.0, 0.0],
                    [3.0, 2.0, 0.0, 0.0],
                    [-1.0, -2.0, 5.0, 4.0],
                    [-3.0, -1.0, 4.0, 5.0]]]])
    out, arg_max = rc.pool_forward(x)
    assert out.tolist() == [[[[3.0, 0.0], [-1.0, 5.0]]]]
    # row-major (dy, dx) order, the first of tied inputs wins
    assert arg_max.tolist() == [1, 0, 0, 0]
    back = rc.pool_backward(np.ones((1, 1, 2, 2)), x.shape, arg_max)
    assert back[0, 0].tolist() == [[0, 1, 1, 0], [0, 0, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]


@pytest.mark.parametrize(("kwargs", "seed"), [
    ({}, 0),
    ({"channels": 3, "size": 10}, 1),
    ({"size": 12, "pad": 1}, 2),
    ({"size": 13, "stride": 2, "pad": 0}, 3),
    ({"size": 11, "filter_size": 5, "stride": 2, "pad": 2}, 4),
])
def test_backprop_matches_the_central_difference_on_every_parameter(kwargs, seed):
    """The chapter-5 check on the conv net, every parameter."""
    params, x, labels, conv = make_conv_case(filters=3, hidden=6, classes=5, batch=4,
                                             seed=seed, **kwargs)
    num = rc.numerical_gradient(params, x, labels, 1e-5, conv)
    exact = rc.backprop_gradient(params, x, labels, conv, exact=True)
    for k in rc.CONV_PARAM_NAMES:
        assert num[k].shape == params[k].shape
        # truncation h^2 f'''/6 plus rounding, away from every kink here
        np.testing.assert_allclose(num[k], exact[k], rtol=0, atol=2e-9, err_msg=k)


def test_the_book_backprop_drops_the_log_epsilon():
    params, x, labels, conv = make_conv_case(batch=5, seed=5)
    book = rc.backprop_gradient(params, x, labels, conv)
    exact = rc.backprop_gradient(params, x, labels, conv, exact=True)
    y = softmax(rc.predict(params, x, conv))
    y_t = y[np.arange(5), labels]
    # the output error differs by the factor y_t / (y_t + 1e-7), per sample
    d_book = y.copy()
    d_book[np.arange(5), labels] -= 1
    d_exact = d_book * (y_t / (y_t + LOG_EPS))[:, None]
    np.testing.assert_allclose(book["b3"] - exact["b3"], (d_book - d_exact).sum(axis=0) / 5,
                               rtol=1e-6, atol=1e-20)
    assert float(np.max(np.abs(book["b3"] - exact["b3"]))) > 0


def test_sampled_indices_give_the_full_loop_values():
    params, x, labels, conv = make_conv_case(filters=2, hidden=4, classes=3, batch=3, seed=6)
    before = {k: v.copy() for k, v in params.items()}
    full = rc.numerical_gradient(params, x, labels, 1e-4, conv)
    some = {"W1": [0, 5, 17], "b3": [2]}
    part = rc.numerical_gradient(params, x, labels, 1e-4, conv, indices=some)
    for k in rc.CONV_PARAM_NAMES:
        flat, got = full[k].ravel(), part[k].ravel()
        chosen = some.get(k, [])
        assert np.array_equal(got[chosen], flat[chosen])
        assert np.isnan(np.delete(got, chosen)).all()
        assert np.array_equal(params[k], before[k])


def test_loss_is_the_book_cross_entropy():
    params, x, labels, conv = make_conv_case(batch=4, seed=7)
    scores = rc.predict(params, x, conv)
    e = np.exp(scores - scores.max(axis=1, keepdims=True))
    y = e / e.sum(axis=1, keepdims=True)
    want = -np.sum(np.log(y[np.arange(4), labels] + 1e-7)) / 4
    assert rc.loss(params, x, labels, conv) == pytest.approx(want, rel=1e-14)
