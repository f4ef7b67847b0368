"""Which character separates a file's cells: the ``delimiter`` option, or found from the header.

Excel writes ``;`` in many locales and tabs for "Unicode text". Without the option, a header
is read with commas unless it only splits into the spec's columns with another delimiter: then
that one is used (and the upload's answer says so). A header that stays one long cell holding a
``;``, tab or ``|`` is refused with a message naming that delimiter, rather than listing every
column of the spec as missing.
"""

from __future__ import annotations

import csv
import io
import re
from typing import Any, Mapping

from ..errors import BadRequest, FileRejected

# What the option accepts (the character itself, or its name), and how each is called.
NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}
_ALIASES = {**{c: c for c in NAMES}, **{n: c for c, n in NAMES.items()}, "\\t": "\t",
            "tsv": "\t", "csv": ","}
_OTHERS = (";", "\t", "|")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def parse_delimiter(value: str | None) -> str | None:
    """The ``delimiter`` option (``,`` ``;`` tab ``|``, or comma/semicolon/tab/pipe)."""
    if value is None or value == "":
        return None
    found = _ALIASES.get(value) or _ALIASES.get(value.strip().lower())
    if found is None:
        raise BadRequest("delimiter must be one of ',', ';', tab ('\\t' or 'tab') or '|'",
                         code="invalid_field", field="delimiter")
    return found


def shown(delimiter: str) -> str:
    return "tab" if delimiter == "\t" else f"'{delimiter}'"


def _names(raw: bytes, delimiter: str) -> list[str]:
    text = raw.decode("utf-8", "replace").lstrip("\ufeff")
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error:
        return []
    return [c.strip() for c in rows[0]] if rows else []


def choose_delimiter(raw: bytes, schema: Mapping[str, Any]) -> tuple[str, bool]:
    """``(delimiter, detected)`` for a file whose header is ``raw`` (UTF-8 bytes)."""
    declared = set(schema)
    required = {c for c, r in schema.items() if isinstance(r, Mapping) and r.get("required")}

    def fits(names: list[str]) -> bool:
        return required <= set(names) and bool(declared & set(names))

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return ",", False  # not text: the header's own checks refuse it
    if _CONTROL.search(text):
        return ",", False
    commas = _names(raw, ",")
    if not declared or fits(commas):
        return ",", False
    for delimiter in _OTHERS:
        if fits(_names(raw, delimiter)):
            return delimiter, True
    named = [n for n in commas if n]
    if len(named) == 1 and named[0] not in declared:
        for delimiter in _OTHERS:
            if delimiter in named[0]:
                split = [n for n in _names(raw, delimiter) if n]
                missing = sorted(required - set(split))
                raise FileRejected(
                    f"the header is one column holding {shown(delimiter)}: the file is "
                    f"separated by {NAMES[delimiter]}s, not commas, and split that way its "
                    f"columns are not the spec's (missing: {', '.join(missing) or 'none'}; "
                    f"found: {', '.join(split[:20])}). Fix the header, then upload it with "
                    f"delimiter={'tab' if delimiter == chr(9) else delimiter}",
                    code="wrong_delimiter", line=1, delimiter=delimiter, columns=split[:50],
                    missing=missing[:50])
    return ",", False
