"""fastgrad.units: seconds and ratios, three significant figures at most."""

from __future__ import annotations

import pytest

from fastgrad.units import format_ratio, format_seconds


@pytest.mark.parametrize(("seconds", "text"), [
    (204.4, "204 s"), (20.3, "20.3 s"), (1.0, "1.00 s"), (0.0107, "10.7 ms"),
    (0.000266, "266 us"), (2.04e-5, "20.4 us"), (5e-9, "0.01 us"), (0.0, "0.00 us"),
    (None, "-"),
])
def test_seconds(seconds, text):
    assert format_seconds(seconds) == text


@pytest.mark.parametrize(("ratio", "text"), [
    (25652.3, "25,652x"), (100.0, "100x"), (19.14, "19.1x"), (1.0, "1.00x"), (0.45, "0.45x"),
    (None, "-"),
])
def test_ratio(ratio, text):
    assert format_ratio(ratio) == text
