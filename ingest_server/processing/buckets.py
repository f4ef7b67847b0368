"""Time buckets and metric values of cQube's datasets (CQUBE-PROCESSING.md §2.4 step 1).

cQube's week is not ISO: week 1 is 1–7 January, weeks start on 1 January's weekday, and 30/31
December can be week 53; its ``year`` is the calendar year. ``week = "iso"`` gives ISO weeks with
the ISO year instead. Metrics are numbers (``12.7`` stays 12.7); ``metric = "parseint"`` copies
cQube's ``parseInt`` for bit-for-bit cQube numbers.
"""

from __future__ import annotations

import datetime
import re

# The time columns of each grain, in cQube's order, with their PostgreSQL types.
TIME_COLUMNS: dict[str | None, tuple[tuple[str, str], ...]] = {
    None: (),
    "Daily": (("date", "DATE"),),
    "Weekly": (("week", "integer"), ("year", "integer")),
    "Monthly": (("month", "integer"), ("year", "integer")),
    "Yearly": (("year", "integer"),),
}
WEEK_MODES = ("cqube", "iso")
METRIC_MODES = ("number", "parseint")


def cqube_week(day: datetime.date) -> tuple[int, int]:
    """(week, year) as cQube computes them: blocks of 7 days from 1 January."""
    return (day.timetuple().tm_yday - 1) // 7 + 1, day.year


def iso_week(day: datetime.date) -> tuple[int, int]:
    iso = day.isocalendar()
    return iso.week, iso.year


def time_values(grain: str | None, day: datetime.date, week: str = "cqube") -> tuple:
    """The values of the time columns of ``grain`` for ``day`` (see ``TIME_COLUMNS``)."""
    if grain is None:
        return ()
    if grain == "Daily":
        return (day,)
    if grain == "Weekly":
        return cqube_week(day) if week == "cqube" else iso_week(day)
    if grain == "Monthly":
        return day.month, day.year
    if grain == "Yearly":
        return (day.year,)
    raise ValueError(f"unknown grain {grain!r}")


_PARSEINT = re.compile(r"\s*([+-]?)(0[xX][0-9a-fA-F]+|\d+)")


def parse_int_js(text: str) -> float:
    """JavaScript's ``parseInt(text)`` (radix 10, or 16 after ``0x``); NaN when no digits."""
    m = _PARSEINT.match(text)
    if m is None:
        return float("nan")
    digits = m.group(2)
    value = int(digits, 16) if digits[:2] in ("0x", "0X") else int(digits)
    return float(-value if m.group(1) == "-" else value)


def metric_parser(mode: str):
    """``text -> float`` for ``processing.metric``; raises ValueError for a non-number."""
    if mode == "parseint":
        return parse_int_js
    if mode == "number":
        return _number
    raise ValueError(f"unknown metric mode {mode!r}")


def _number(text: str) -> float:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"not a finite number: {text!r}")
    return value
