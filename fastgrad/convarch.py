"""What a convolutional net computes besides its parameters, and the checks of its inputs.

The book's ``SimpleConvNet`` (chapter 7) is conv -> ReLU -> 2x2 max-pool with
stride 2 -> affine -> ReLU -> affine -> softmax with loss. Its sizes are read
off the parameters (``W1 (FN, C, FH, FW)``, ``b1 (FN,)``, ``W2 (FN*PH*PW,
hidden)``, ``b2``, ``W3 (hidden, out)``, ``b3``) and the input ``(N, C, H, W)``;
:class:`ConvArch` carries the rest, the convolution's stride and padding, the
way :class:`fastgrad.arch.Arch` carries a fully connected net's activation.

Every check returns clean values (C-contiguous float64 arrays, int64 labels)
or raises a ``ValueError`` / ``TypeError`` that names the argument and what
was expected; nothing it is given is modified.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np

from fastgrad import inputs

#: Parameter names of the convolutional net, in the order of the flat layout.
CONV_PARAM_NAMES = ("W1", "b1", "W2", "b2", "W3", "b3")
#: The pooling layer of the book's SimpleConvNet: 2x2 windows, stride 2.
POOL = 2


class ConvArch(NamedTuple):
    """Stride and zero padding of the convolution layer (``Convolution(W, b, stride, pad)``)."""

    stride: int = 1
    pad: int = 0


class ConvShape(NamedTuple):
    """Every size of a convolutional net on one input shape."""

    channels: int  # C
    height: int  # H
    width: int  # W
    filters: int  # FN
    filter_h: int  # FH
    filter_w: int  # FW
    out_h: int  # OH, the convolution's output
    out_w: int  # OW
    hidden: int
    classes: int

    @property
    def pool_h(self) -> int:
        return self.out_h // POOL

    @property
    def pool_w(self) -> int:
        return self.out_w // POOL

    @property
    def features(self) -> int:
        """Width of the pooled features (the rows of ``W2``)."""
        return self.filters * self.pool_h * self.pool_w


def _check_int(name, value, low):
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}")
    if value < low:
        raise ValueError(f"{name} must be at least {low}, got {value}")
    return int(value)


def make_conv_arch(stride=1, pad=0) -> ConvArch:
    """Validated :class:`ConvArch`."""
    return ConvArch(_check_int("stride", stride, 1), _check_int("pad", pad, 0))


def check_conv_arch(conv) -> ConvArch:
    """Return ``conv`` (a :class:`ConvArch` or ``(stride, pad)``), validated."""
    if isinstance(conv, tuple) and len(conv) == 2:
        return make_conv_arch(*conv)
    raise TypeError(f"conv must be a ConvArch(stride, pad), got {type(conv).__name__}")


def conv_output_size(size, filter_size, stride, pad, what="input"):
    """The book's ``(size + 2*pad - filter_size) / stride + 1``, refused unless whole and >= 1."""
    padded = size + 2 * pad
    if filter_size > padded:
        raise ValueError(f"conv_param: the filter ({filter_size}) is larger than the padded "
                         f"{what} ({size} + 2*pad = {padded})")
    if (padded - filter_size) % stride:
        raise ValueError(f"conv_param: stride {stride} does not fit: ({size} + 2*{pad} - "
                         f"{filter_size}) / {stride} + 1 = "
                         f"{(padded - filter_size) / stride + 1:g} is not a whole number")
    return (padded - filter_size) // stride + 1


def pooled_size(out_h, out_w):
    """``(PH, PW)`` of the 2x2 pooling with stride 2, refused for an odd convolution output.

    The book sizes ``W2`` as ``int(FN*(OH/2)*(OW/2))`` while its pooling layer
    gives ``FN*floor(OH/2)*floor(OW/2)`` features; for an odd ``OH`` or ``OW``
    the two differ and the affine layer crashes. Refused here, with the reason.
    """
    if out_h % POOL or out_w % POOL:
        raise ValueError(
            f"conv_param gives a {out_h}x{out_w} convolution output, which the 2x2 pooling "
            f"with stride 2 cannot tile: the book's SimpleConvNet would size W2 for "
            f"int(FN*(OH/2)*(OW/2)) features while the pooling gives FN*floor(OH/2)*"
            f"floor(OW/2), and crash in the affine layer; choose filter_size, pad and "
            f"stride so that (H + 2*pad - filter_size)/stride + 1 is even")
    return out_h // POOL, out_w // POOL


def check_input_dim(input_dim):
    """Return ``(C, H, W)`` as a tuple of positive ints."""
    if isinstance(input_dim, (str, bytes)) or not hasattr(input_dim, "__len__"):
        raise TypeError(f"input_dim must be a tuple (channels, height, width), "
                        f"got {type(input_dim).__name__}")
    if len(input_dim) != 3:
        raise ValueError(f"input_dim must be (channels, height, width), got {input_dim!r}")
    return tuple(_check_int(f"input_dim[{i}]", v, 1) for i, v in enumerate(input_dim))


def conv_shape(input_dim, params, conv) -> ConvShape:
    """The sizes of ``params`` (already float arrays of the right ranks) on ``input_dim``.

    Checks that the convolution fits the input and that the parameter shapes chain.
    """
    c, height, width = input_dim
    filters, channels, filter_h, filter_w = params["W1"].shape
    if channels != c:
        raise ValueError(f"x has {c} channels but params['W1'] {params['W1'].shape} "
                         f"expects {channels}")
    out_h = conv_output_size(height, filter_h, conv.stride, conv.pad, "input height")
    out_w = conv_output_size(width, filter_w, conv.stride, conv.pad, "input width")
    pooled_size(out_h, out_w)
    hidden, classes = params["W3"].shape
    shape = ConvShape(c, height, width, filters, filter_h, filter_w, out_h, out_w, hidden,
                      classes)
    want = {"b1": (filters,), "W2": (shape.features, hidden), "b2": (hidden,),
            "b3": (classes,)}
    for name, expected in want.items():
        if params[name].shape != expected:
            why = (f" ({filters} filters x {shape.pool_h}x{shape.pool_w} pooled)"
                   if name == "W2" else "")
            raise ValueError(f"params[{name!r}] must have shape {expected}{why}, "
                             f"got {params[name].shape}")
    return shape


def _as_float64(value, name):
    if isinstance(value, np.ma.MaskedArray):
        raise TypeError(f"{name} must be a plain array, not a masked array")
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a numeric array, got {type(value).__name__}")
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name} must be a numeric array: {exc}") from None
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise TypeError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or Inf")
    return arr


def check_conv_params(params):
    """Return ``{W1, b1, W2, b2, W3, b3}`` as C-contiguous float64 arrays of the right ranks.

    Arrays already in that form are returned as they are (not copied): the
    kernels only read them and the reference perturbs a copy of its own.
    """
    if not hasattr(params, "keys"):
        raise TypeError(f"params must be a dict of arrays, got {type(params).__name__}")
    missing = [name for name in CONV_PARAM_NAMES if name not in params]
    if missing:
        raise ValueError(f"params is missing {', '.join(missing)}: a convolutional net has "
                         f"{', '.join(CONV_PARAM_NAMES)}")
    extra = sorted(map(str, set(params) - set(CONV_PARAM_NAMES)))
    if extra:
        raise ValueError(f"params has unexpected entries {', '.join(extra)}: expected "
                         f"{', '.join(CONV_PARAM_NAMES)}")
    ranks = {"W1": (4, "(filters, channels, filter_h, filter_w)"),
             "W2": (2, "(features, hidden)"), "W3": (2, "(hidden, classes)")}
    out = {}
    for name in CONV_PARAM_NAMES:
        arr = _as_float64(params[name], f"params[{name!r}]")
        ndim, what = ranks.get(name, (1, "(outputs,)"))
        if arr.ndim != ndim:
            raise ValueError(f"params[{name!r}] must have shape {what}, got {arr.shape}")
        if arr.size == 0:
            raise ValueError(f"params[{name!r}] must be non-empty, got shape {arr.shape}")
        out[name] = arr
    return out


def check_conv_x(x, input_dim=None):
    """Return the batch as C-contiguous float64 ``(N, C, H, W)``.

    ``x`` is ``(N, C, H, W)`` as the book's ``load_mnist(flatten=False)`` gives
    it, or flat rows ``(N, C*H*W)`` when ``input_dim`` says how to fold them.
    """
    arr = _as_float64(x, "x")
    if input_dim is not None:
        input_dim = check_input_dim(input_dim)
        flat = int(np.prod(input_dim))
        if arr.ndim == 2 and arr.shape[1] == flat:
            arr = arr.reshape((arr.shape[0], *input_dim))
        elif arr.ndim == 4 and arr.shape[1] != input_dim[0]:
            raise ValueError(f"x has {arr.shape[1]} channels, the net expects {input_dim[0]} "
                             f"(input_dim {input_dim}); got shape {arr.shape}")
        elif arr.ndim != 4 or arr.shape[1:] != input_dim:
            raise ValueError(f"x must have shape (batch, {', '.join(map(str, input_dim))}) or "
                             f"(batch, {flat}) to match input_dim, got {arr.shape}")
    elif arr.ndim != 4:
        raise ValueError(f"x must have shape (batch, channels, height, width), got {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError("x is an empty batch: need at least one sample")
    return arr


def check_conv_batch(params, x, t, conv, input_dim=None):
    """Validate ``(params, x, t)`` of a convolutional net with ``conv``.

    Returns ``(params, x, labels, shape)``: float64 params, ``x`` as
    ``(N, C, H, W)`` float64, int64 labels and the :class:`ConvShape`.
    """
    conv = check_conv_arch(conv)
    params = check_conv_params(params)
    x = check_conv_x(x, input_dim)
    shape = conv_shape(x.shape[1:], params, conv)
    labels = inputs.check_labels(t, x.shape[0], shape.classes)
    return params, x, labels, shape
