"""Argument helpers shared by several subcommands: the network flags and ``--sample``.

Each helper only parses; the library validates the values it receives, so a
bad value fails with the same message from the CLI and from Python.
"""

from __future__ import annotations

from fastgrad.arch import ACTIVATIONS


def add_network_arguments(p):
    """``--hidden``, ``--activation``, ``--weight-init``, ``--weight-decay`` (check, bench)."""
    p.add_argument("--hidden", type=int, nargs="+", default=[50], metavar="N",
                   help="hidden widths, e.g. --hidden 100 100 100 100 (default 50)")
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
