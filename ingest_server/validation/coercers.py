"""The named coercers: how a CSV cell (always text) becomes a typed value.

Every coercer follows one rule so that a row error always keeps the user's original text:

* a blank cell (``""`` or only ASCII whitespace) becomes ``None`` (then ``nullable`` decides);
* a cell that parses becomes the typed value;
* anything else is returned **unchanged** (never raised, never turned into 0), so Cerberus's
  ``type`` rule reports it as ``type_error`` with the original text.

What parses is deliberately strict and predictable for data files:

* Surrounding ASCII whitespace (space, tab, CR, LF, VT, FF) is ignored: ``" 5 "`` is 5. Other
  spaces (no-break space, ideographic space, ...) are not whitespace here, so ``"\\xa05"`` fails.
* ``integer``: optional sign then ASCII digits: ``"+1"``, ``"-0"``, ``"01"`` (= 1) parse;
  ``"1.0"``, ``"1e3"``, ``"1_000"``, ``"١٢٣"`` (non-ASCII digits), ``"²"`` do not. Integers
  longer than Python's ``sys.get_int_max_str_digits()`` (4300 by default) do not parse.
* ``float``: an integer or a decimal with optional exponent (``"1.5"``, ``".5"``, ``"5."``,
  ``"1e3"``, ``"-2.5E-3"``) as a float. ``"NaN"``, ``"inf"``, ``"Infinity"``, underscores,
  hex and non-ASCII digits never parse, nor does a value that overflows to infinity (``"1e999"``).
* ``number``: an ``int`` when the text is an integer (as above), otherwise a ``float`` (as above).
* ``boolean``: ``true``/``false``, ``yes``/``no``, ``1``/``0`` in any letter case. Nothing else
  (``on``, ``t``, ``y``, ``2``) parses.
* ``date``: ``YYYY-MM-DD`` (ASCII digits, zero-padded, a real calendar day: ``2023-02-29``
  does not parse, ``0001-01-01`` and ``9999-12-31`` do).
* ``datetime``: ``YYYY-MM-DD`` then ``T`` or a space, ``HH:MM``, optional ``:SS`` and
  ``.f`` to ``.ffffff``, optional ``Z`` or ``±HH:MM`` offset.
* ``text``: the text unchanged, but a cell that is blank after trimming as JavaScript's
  ``trim()`` does (ASCII and Unicode white space, line terminators, BOM) becomes ``None``: a
  cQube ``shouldnotnull`` text column is ``{"type": "string", "coerce": "text", "nullable":
  False}``, so a whitespace-only cell fails like a blank number (``not_nullable``).
* With a ``date_format`` rule on the field, ``date`` and ``datetime`` use
  ``datetime.strptime(text, date_format)`` instead (see ``definition.IngestValidator``).

Non-text values (already typed, or ``None``) pass through unchanged.
"""

from __future__ import annotations

import math
import re
import string
from datetime import date, datetime
from typing import Any, Callable

_WS = string.whitespace  # ASCII only: " \t\n\r\x0b\x0c"
_INT = re.compile(r"[+-]?[0-9]+").fullmatch
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?").fullmatch
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}").fullmatch
_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?"
    r"(?:Z|[+-][0-9]{2}:[0-9]{2})?"
).fullmatch
# What JavaScript's String.prototype.trim() removes (ECMA-262 WhiteSpace and LineTerminator).
JS_WHITESPACE = ("\t\n\x0b\x0c\r \xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
                 "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff")
_TRUE = frozenset({"true", "yes", "1"})
_FALSE = frozenset({"false", "no", "0"})


def _text_coercer(parse: Callable[..., Any]) -> Callable[..., Any]:
    """A coercer from ``parse(text) -> value | None``, with the rule above: non-text passes
    through, a blank cell becomes ``None``, text that does not parse is returned unchanged."""

    def coerce(value: Any, *args: Any, **kwargs: Any) -> Any:
        if not isinstance(value, str):
            return value
        text = value.strip(_WS)
        if not text:
            return None
        parsed = parse(text, *args, **kwargs)
        return value if parsed is None else parsed

    coerce.__name__ = coerce.__qualname__ = "coerce_" + parse.__name__.removeprefix("_parse_")
    return coerce


def _parse_integer(text: str) -> int | None:
    if _INT(text):
        try:
            return int(text)
        except ValueError:  # longer than sys.get_int_max_str_digits()
            return None
    return None


def _parse_float(text: str) -> float | None:
    if _FLOAT(text):
        result = float(text)
        if math.isfinite(result):
            return result
    return None


def _parse_number(text: str) -> int | float | None:
    return _parse_integer(text) if _INT(text) else _parse_float(text)


def _parse_boolean(text: str) -> bool | None:
    if text.isascii():  # .lower() maps some non-ASCII letters onto ASCII ones
        low = text.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
    return None


def _parse_date(text: str, fmt: str | None = None) -> date | None:
    try:
        if fmt is not None:
            return datetime.strptime(text, fmt).date()
        if _DATE(text):
            return date(int(text[:4]), int(text[5:7]), int(text[8:]))
    except ValueError:
        pass
    return None


def _parse_datetime(text: str, fmt: str | None = None) -> datetime | None:
    try:
        if fmt is not None:
            return datetime.strptime(text, fmt)
        if _DATETIME(text):
            return datetime.fromisoformat(text)
    except ValueError:
        pass
    return None


def coerce_text(value: Any) -> Any:
    """Text stays as it is; text that is blank after a JavaScript ``trim()`` becomes ``None``."""
    if isinstance(value, str) and not value.strip(JS_WHITESPACE):
        return None
    return value


coerce_integer = _text_coercer(_parse_integer)
coerce_float = _text_coercer(_parse_float)
coerce_number = _text_coercer(_parse_number)
coerce_boolean = _text_coercer(_parse_boolean)
coerce_date = _text_coercer(_parse_date)
coerce_datetime = _text_coercer(_parse_datetime)


BUILTIN_COERCERS: dict[str, Callable[[Any], Any]] = {
    "integer": coerce_integer,
    "number": coerce_number,
    "float": coerce_float,
    "boolean": coerce_boolean,
    "date": coerce_date,
    "datetime": coerce_datetime,
    "text": coerce_text,
}
# Coercers that honour a field's ``date_format`` rule (called as ``f(value, fmt)``).
FORMAT_COERCERS = frozenset({"date", "datetime"})
