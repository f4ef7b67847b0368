"""Workbook cells as the text a CSV file would hold.

calamine gives typed cells: ``str``, ``float`` (every number, ``12.0`` for 12), ``int``, ``bool``,
``datetime.date``/``datetime``/``time``/``timedelta`` for date-formatted cells, and the error
text (``#DIV/0!``) for a formula's error. A formula gives the value Excel cached with it.

* whole numbers stay whole (``12``, not ``12.0``); others show 15 significant digits, as Excel
  shows them (``0.1 + 0.2`` is ``0.3``);
* dates take the column's layout in the spec (``date_layouts``): its ``date_format`` rule, the
  layout its plugin coercer reads (probed), ISO ``yyyy-MM-dd`` otherwise; a date-time at
  midnight in a column that is not a date-time is written as a date;
* booleans are ``true``/``false``.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any, Callable, Mapping

ISO_DATE = "%Y-%m-%d"
ISO_DATETIME = "%Y-%m-%d %H:%M:%S"
JSON_DATETIME = "%Y-%m-%dT%H:%M:%S"
# Layouts a plugin's date coercer may read (probed with an unambiguous day, 3 February 2001).
_PROBED = (ISO_DATE, "%d-%m-%Y", "%d/%m/%Y", "%d/%m/%y", "%d-%m-%y", "%m/%d/%Y", "%Y/%m/%d",
           "%d.%m.%Y")
_PROBE_DAY = date(2001, 2, 3)
_WHOLE_LIMIT = 1e16  # beyond this a float holds no exact integer worth spelling out

# A column's layout: (date layout, date-time layout or None when the column is not a date-time)
Layout = tuple[str, str | None]
DEFAULT_LAYOUT: Layout = (ISO_DATE, None)


def _probe(coercer: Callable[[Any], Any]) -> str | None:
    for layout in _PROBED:
        try:
            value = coercer(_PROBE_DAY.strftime(layout))
        except Exception:  # noqa: BLE001 - a plugin's coercer may raise anything on a probe
            continue
        if isinstance(value, datetime):
            value = value.date()
        if value == _PROBE_DAY:
            return layout
    return None


def column_layout(rules: Mapping[str, Any] | None,
                  coercers: Mapping[str, Callable[[Any], Any]] | None = None) -> Layout:
    """The text layout of a date in the column with these Cerberus ``rules``."""
    if not isinstance(rules, Mapping):
        return DEFAULT_LAYOUT
    coerce = rules.get("coerce")
    kind = rules.get("type")
    is_datetime = coerce == "datetime" or kind == "datetime"
    fmt = rules.get("date_format")
    if isinstance(fmt, str) and fmt:
        return (fmt, fmt) if is_datetime else (fmt, None)
    if is_datetime:
        return ISO_DATE, ISO_DATETIME
    if rules.get("format") == "date-time":
        return ISO_DATE, JSON_DATETIME
    if isinstance(coerce, str) and coerce not in ("date", "integer", "number", "float",
                                                  "boolean") and coercers:
        coercer = coercers.get(coerce)
        if coercer is not None:
            found = _probe(coercer)
            if found:
                return found, None
    return DEFAULT_LAYOUT


def date_layouts(header: list[str], schema: Mapping[str, Any],
                 coercers: Mapping[str, Callable[[Any], Any]] | None = None) -> list[Layout]:
    """One layout per header column (columns the spec does not know get ISO)."""
    return [column_layout(schema.get(name), coercers) for name in header]


def number_text(value: float) -> str:
    if value.is_integer() and abs(value) < _WHOLE_LIMIT:
        return str(int(value))
    return f"{value:.15g}"


def cell_text(value: Any, layout: Layout = DEFAULT_LAYOUT) -> str:
    """One cell as text (see the module's docstring)."""
    kind = type(value)
    if kind is str:
        return value
    if kind is float:
        return number_text(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind is datetime:
        if layout[1] is None and value.time() == time(0):
            return value.strftime(layout[0])
        return value.strftime(layout[1] or ISO_DATETIME)
    if kind is date:
        return value.strftime(layout[0])
    if kind is time:
        return value.isoformat()
    if kind is timedelta:
        seconds = int(value.total_seconds())
        sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
        return f"{sign}{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    if value is None:
        return ""
    return str(value)
