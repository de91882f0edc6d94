"""Argument helpers shared by several subcommands: the network flags and ``--sample``.

Each helper only parses; the library validates the values it receives, so a
bad value fails with the same message from the CLI and from Python.
"""

from __future__ import annotations

from fastgrad.arch import ACTIVATIONS


def add_network_arguments(p):
    """``--hidden``, ``--activation``, ``--weight-init``, ``--weight-decay`` (check, bench)."""
    p.add_argument("--hidden", type=int, nargs="+", default=None, metavar="N",
                   help="hidden widths, e.g. --hidden 100 100 100 100 (default 50; "
                        "--net convnet: one width, default 100)")
    p.add_argument("--activation", default="sigmoid", choices=list(ACTIVATIONS),
                   help="hidden activation (default sigmoid, the book's chapter 4)")
    p.add_argument("--weight-init", default=None, type=_init_arg, metavar="STD|NAME",
                   help="weight std or relu/he/sigmoid/xavier (default: 0.01 for one hidden "
                        "layer, else He for ReLU and Xavier for sigmoid)")
    p.add_argument("--weight-decay", type=float, default=0.0, metavar="LAMBDA",
                   help="L2 weight decay lambda (default 0)")


def _init_arg(text):
    try:
        return float(text)
    except ValueError:
        return text


def sample_arg(text):
    """``--sample``: 'all', 'auto' or a number of entries per tensor."""
    if text in ("all", "auto"):
        return text
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"--sample must be 'all', 'auto' or a number, got {text!r}") from None


#: Network kinds of ``--net``: the fully connected nets of chapters 4-6, chapter 7's convnet.
NETS = ("mlp", "convnet")
#: The book's ``SimpleConvNet`` defaults (``ch07/simple_convnet.py``).
CONVNET_DEFAULTS = {"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1, "hidden": 100}


def add_net_kind_arguments(p):
    """``--net`` and the convolutional net's ``--filters --filter-size --pad --stride``.

    ``--hidden`` (from :func:`add_network_arguments` or the subcommand's own)
    gives the convnet's hidden width; commands resolve its default by net kind
    with :func:`hidden_widths`.
    """
    p.add_argument("--net", choices=NETS, default="mlp",
                   help="mlp: the fully connected nets of chapters 4-6 (default); convnet: "
                        "chapter 7's SimpleConvNet (conv -> ReLU -> 2x2 max-pool -> affine -> "
                        "ReLU -> affine), input 1x28x28")
    g = p.add_argument_group("convolutional net (--net convnet)")
    g.add_argument("--filters", type=int, default=CONVNET_DEFAULTS["filter_num"], metavar="N",
                   help=f"convolution filters (default {CONVNET_DEFAULTS['filter_num']})")
    g.add_argument("--filter-size", type=int, default=CONVNET_DEFAULTS["filter_size"],
                   metavar="K", help="filter height and width "
                                     f"(default {CONVNET_DEFAULTS['filter_size']})")
    g.add_argument("--pad", type=int, default=CONVNET_DEFAULTS["pad"],
                   help=f"zero padding (default {CONVNET_DEFAULTS['pad']})")
    g.add_argument("--stride", type=int, default=CONVNET_DEFAULTS["stride"],
                   help=f"convolution stride (default {CONVNET_DEFAULTS['stride']})")


def conv_param(args):
    """The book's ``conv_param`` dict from the parsed ``--filters --filter-size --pad --stride``."""
    return {"filter_num": args.filters, "filter_size": args.filter_size, "pad": args.pad,
            "stride": args.stride}


def hidden_widths(args, mlp_default=(50,)):
    """``--hidden`` resolved by net kind: the MLP's widths, or the convnet's one width.

    ``None`` (not given) takes ``mlp_default`` for ``--net mlp`` and the book's 100
    for ``--net convnet``; a convnet takes exactly one width.
    """
    hidden = getattr(args, "hidden", None)
    if getattr(args, "net", "mlp") == "convnet":
        if hidden is None:
            return CONVNET_DEFAULTS["hidden"]
        if len(hidden) != 1:
            raise ValueError(f"--net convnet has one hidden layer: give one --hidden width, "
                             f"got {len(hidden)}")
        return hidden[0]
    return list(mlp_default) if hidden is None else list(hidden)
