"""Seconds and ratios as fastgrad's reports and figures print them.

Three significant figures at most, a unit chosen so the number is between 1
and 1,000 (seconds, milliseconds, microseconds), ratios with a trailing ``x``:
the same figure reads the same in a table, a progress line and a plot.
"""

from __future__ import annotations


def format_seconds(s):
    """``12.3 s``, ``456 ms``, ``7.89 us``; ``-`` for None."""
    if s is None:
        return "-"
    for scale, unit in ((1.0, "s"), (1e-3, "ms"), (1e-6, "us")):
        if s >= scale or unit == "us":
            v = s / scale
            return f"{v:.0f} {unit}" if v >= 100 else f"{v:.1f} {unit}" if v >= 10 \
                else f"{v:.2f} {unit}"
    return "-"  # unreachable


def format_ratio(r):
    """``1,234x``, ``12.3x``, ``1.23x``; ``-`` for None."""
    if r is None:
        return "-"
    return f"{r:,.0f}x" if r >= 100 else f"{r:.1f}x" if r >= 10 else f"{r:.2f}x"
