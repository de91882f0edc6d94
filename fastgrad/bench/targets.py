"""Targets files: the thresholds a benchmark's figures are held to, and the judging.

The thresholds are data, never code: a targets file (TOML; a checkout keeps
its own in ``bench/targets.toml``) lists the levels, best first, and for each
figure, by its id, a threshold per level::

    levels = ["gold", "required"]             # best first

    [targets.deep-relu-incremental-speedup]   # a figure's id
    what = "784-[100]x4-10 ReLU: incremental vs the book's loop"
    better = "higher"                         # or "lower"
    unit = "min"                              # optional: the thresholds' unit
    by = "python bench/some_script.py"        # optional: what measures it
    gold = 10000                              # a threshold per level, any may be left out
    required = 3000

:func:`load_targets` refuses a file that is not one, naming the key. A figure
meets a level when it is at least (``better = "higher"``) or at most
(``"lower"``) that level's threshold, and is marked with the best level it
meets, else ``MISSED``. A figure known within an interval (the rounds' spread
of a run against a saved baseline) claims a level above the last only when the
whole interval is beyond the threshold, and misses the last only when the
whole interval misses it ("within noise" when part of it meets it), so noise
can neither earn nor fail a level. No level name is written in this package.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser as the tomli package
    import tomli as tomllib

#: Where a checkout keeps its targets, relative to its root (the current directory).
DEFAULT_FILE = Path("bench", "targets.toml")
#: The mark of a figure that meets no level.
MISSED = "MISSED"
_TARGET_KEYS = ("what", "better", "unit", "by")


# --- the targets file ---------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One figure's thresholds: ``{level: threshold}``, and which way is better."""

    id: str
    what: str
    better: str  # "higher" or "lower"
    thresholds: dict = field(default_factory=dict)
    unit: str | None = None
    by: str | None = None

    @property
    def higher_is_better(self):
        return self.better == "higher"


@dataclass(frozen=True)
class Targets:
    """A targets file: its levels, best first, and its targets by figure id."""

    path: str
    levels: tuple
    targets: dict


def default_file():
    """``bench/targets.toml`` under the current directory (a checkout's root), if it exists."""
    return DEFAULT_FILE if DEFAULT_FILE.is_file() else None


def _number(value, where):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{where}: expected a finite number, got {value!r}")
    return float(value)


def _text(value, where):
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: expected a non-empty string, got {value!r}")
    return value


def load_targets(path):
    """Read and check a targets file (the format in the module docstring).

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Not valid TOML, or not a targets file: each message names the file and
        the key (levels missing or repeated, an unknown key, a threshold that
        is not a number, ``better`` neither "higher" nor "lower", or a better
        level easier to meet than a worse one).
    """
    path = Path(path).expanduser()
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"targets file {path} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML ({exc})") from None
    unknown = set(data) - {"levels", "targets"}
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {sorted(unknown)}; expected 'levels' and "
                         "'targets'")
    levels = data.get("levels")
    if (not isinstance(levels, list) or not levels
            or not all(isinstance(v, str) and v.strip() for v in levels)):
        raise ValueError(f"{path}: 'levels' must list the level names, best first")
    if len(set(levels)) != len(levels) or MISSED in levels or set(levels) & set(_TARGET_KEYS):
        raise ValueError(f"{path}: 'levels' must be distinct names other than {MISSED!r} and "
                         f"{', '.join(repr(k) for k in _TARGET_KEYS)}, got {levels}")
    tables = data.get("targets", {})
    if not isinstance(tables, dict):
        raise ValueError(f"{path}: 'targets' must be a table of [targets.<figure>] tables")
    targets = {}
    for name, spec in tables.items():
        where = f"{path}: [targets.{name}]"
        if not isinstance(spec, dict):
            raise ValueError(f"{where}: expected a table")
        unknown = set(spec) - set(levels) - set(_TARGET_KEYS)
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; expected "
                             f"{', '.join(_TARGET_KEYS)} or a level of {levels}")
        better = spec.get("better")
        if better not in ("higher", "lower"):
            raise ValueError(f"{where}: 'better' must be \"higher\" or \"lower\", got {better!r}")
        thresholds = {lv: _number(spec[lv], f"{where} {lv}") for lv in levels if lv in spec}
        if not thresholds:
            raise ValueError(f"{where}: no threshold for any level of {levels}")
        given = list(thresholds.values())  # best level first
        ordered = all((a >= b) if better == "higher" else (a <= b)
                      for a, b in zip(given, given[1:], strict=False))
        if not ordered:
            raise ValueError(f"{where}: a better level must be at least as hard to meet as a "
                             f"worse one (better = {better!r}), got {thresholds}")
        targets[name] = Target(name, _text(spec.get("what"), f"{where} what"), better,
                               thresholds,
                               None if "unit" not in spec else _text(spec["unit"], f"{where} unit"),
                               None if "by" not in spec else _text(spec["by"], f"{where} by"))
    return Targets(str(path), tuple(levels), targets)


# --- judging --------------------------------------------------------------------------


def _meets(value, threshold, higher):
    return value >= threshold if higher else value <= threshold


def judge(value, target, levels):
    """The best of ``levels`` whose threshold in ``target`` ``value`` meets, else MISSED."""
    if value is None:
        return "not measured"
    for level in levels:
        if level in target.thresholds and _meets(value, target.thresholds[level],
                                                 target.higher_is_better):
            return level
    return MISSED


def judge_interval(value, low, high, target, levels):
    """As :func:`judge` for a figure known within ``[low, high]`` (the rounds' spread).

    A level above the last needs the whole interval beyond its threshold; the
    last is met by the figure itself, or "within noise" by the interval's
    better end.
    """
    higher = target.higher_is_better
    worse_end, better_end = (low, high) if higher else (high, low)
    named = [lv for lv in levels if lv in target.thresholds]
    *upper, last = named
    for level in upper:
        t = target.thresholds[level]
        if (worse_end > t) if higher else (worse_end < t):
            return level
    if _meets(value, target.thresholds[last], higher):
        return last
    if _meets(better_end, target.thresholds[last], higher):
        return f"{last} (within noise)"
    return MISSED


def judge_row(row, targets):
    """Add ``thresholds``, ``higher_is_better`` and ``met`` to a figure ``row`` (by its ``id``).

    A row whose id has no target in ``targets`` is marked "no target"; one with
    an ``interval`` is judged by :func:`judge_interval`.
    """
    target = targets.targets.get(row["id"])
    if target is None:
        return {**row, "thresholds": {}, "higher_is_better": None, "met": "no target"}
    if row.get("figure") is None:
        met = "not measured"
    elif row.get("interval"):
        met = judge_interval(row["figure"], *row["interval"], target, targets.levels)
    else:
        met = judge(row["figure"], target, targets.levels)
    return {**row, "thresholds": dict(target.thresholds),
            "higher_is_better": target.higher_is_better, "met": met}


def goal_text(target_or_row, level, levels):
    """A threshold as the table prints it: ``>= 3,000x``, ``<= 15 min``, ``no slower``."""
    if isinstance(target_or_row, Target):
        thresholds, higher = target_or_row.thresholds, target_or_row.higher_is_better
        unit, interval = target_or_row.unit, False
    else:
        thresholds, higher = target_or_row["thresholds"], target_or_row["higher_is_better"]
        unit, interval = target_or_row.get("unit"), bool(target_or_row.get("interval"))
    t = thresholds.get(level)
    if t is None:
        return "-"
    sign = ">=" if higher else "<="
    if unit:
        return f"{sign} {t:g} {unit}"
    if interval:  # a ratio to a baseline, judged beyond noise above the last level
        last = level == [lv for lv in levels if lv in thresholds][-1]
        if t == 1.0 and not higher:
            return "no slower" if last else "faster"
        return f"{sign} {t:g}x" if last else f"{'>' if higher else '<'} {t:g}x"
    return f"{sign} {t:,g}x"


def thresholds_text(target_or_row, levels):
    """``silver <= 15 min, gold <= 5 min``: every threshold, the last level first."""
    thresholds = (target_or_row.thresholds if isinstance(target_or_row, Target)
                  else target_or_row["thresholds"])
    return ", ".join(f"{lv} {goal_text(target_or_row, lv, levels)}" for lv in reversed(levels)
                     if lv in thresholds)
