"""Dates as cQube's users write them (CQUBE-PROCESSING.md §1.5).

cQube hard-codes ``dd/MM/yy`` with the pivot yy < 30 → 20yy, else 19yy; it turns a four-digit
year into year 39xx and refuses ISO dates. Here all three forms a person writes are read
correctly: ``dd/MM/yy``, ``dd/MM/yyyy`` and ``yyyy-MM-dd``.
"""

from __future__ import annotations

import datetime

FORMATS = "dd/MM/yy, dd/MM/yyyy or yyyy-MM-dd"
PIVOT = 30  # two-digit years below this are 20yy, the others 19yy (cQube's dateparser.ts)


def parse_cqube_date(text: str) -> datetime.date:
    """The date in ``text``; ValueError (naming the accepted forms) when it is none of them."""
    parts = text.split("/")
    try:
        if len(parts) == 3:
            day, month, year = parts
            if not (0 < len(day) <= 2 and 0 < len(month) <= 2 and len(year) in (2, 4)
                    and (day + month + year).isdigit() and (day + month + year).isascii()):
                raise ValueError
            y = int(year)
            if len(year) == 2:
                y += 2000 if y < PIVOT else 1900
            return datetime.date(y, int(month), int(day))
        if len(text) == 10 and text[4] == "-" and text[7] == "-":
            digits = text[:4] + text[5:7] + text[8:]
            if digits.isdigit() and digits.isascii():
                return datetime.date(int(text[:4]), int(text[5:7]), int(text[8:]))
    except ValueError:
        pass
    raise ValueError(f"{text!r} is not a date ({FORMATS})")
