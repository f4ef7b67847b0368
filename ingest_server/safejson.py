"""JSON from clients: finite numbers only, nesting bounded.

Python's ``json`` reads ``NaN``, ``Infinity`` and ``1e400`` (as inf), which no spec means and
which break comparisons and JSON output later; a document nested 100,000 levels deep makes
it (and every recursive walk after it) raise ``RecursionError``; and a lone surrogate escape
(``"\\ud800"``) becomes a ``str`` that cannot be encoded as UTF-8 (not stored, not written, a
``UnicodeEncodeError`` wherever it goes). All are the client's mistake: ``BadRequest`` (400).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from .errors import BadRequest

MAX_DEPTH = 64
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")
# A surrogate escape (high or low half). Found only as a hint: the string literal holding it is
# decoded to tell a lone half from a pair, or from an escaped backslash followed by "ud800".
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _depth(text: str) -> int:
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRINGS.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def check_text(text: str) -> None:
    """400 when ``text`` (a decoded string of a JSON document) holds a lone surrogate."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise BadRequest(f"a string holds a lone surrogate (U+{ord(text[e.start]):04X}): "
                         "text must be valid Unicode", code="invalid_json") from None


def refuse_lone_surrogates(text: str) -> None:
    """400 when the JSON document ``text`` escapes half of a surrogate pair alone."""
    if _SURROGATE_ESCAPE.search(text) is None:
        return
    for literal in _STRINGS.finditer(text):
        if _SURROGATE_ESCAPE.search(literal.group()) is not None:
            try:
                value = json.loads(literal.group())
            except ValueError:
                continue  # malformed: json.loads of the whole document says where
            check_text(value)


def check_document(text: str, max_depth: int = MAX_DEPTH) -> None:
    """What ``loads`` checks before parsing: lone surrogate escapes and nesting depth."""
    refuse_lone_surrogates(text)
    # No deeper than it has brackets: most documents are done with two quick counts.
    if text.count("[") + text.count("{") > max_depth and _depth(text) > max_depth:
        raise BadRequest(f"the JSON is nested deeper than {max_depth} levels",
                         code="invalid_json", max_depth=max_depth)


def _refuse_constant(name: str) -> Any:
    raise BadRequest(f"{name} is not a JSON number: only finite numbers are accepted",
                     code="invalid_json")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadRequest(f"the number {text[:40]} is out of range", code="invalid_json")
    return value


def decoder() -> json.JSONDecoder:
    """A decoder refusing non-finite numbers (for documents ``check_document`` passed)."""
    return json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite)


def loads(data: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` for client bodies: 400 ``invalid_json`` for malformed JSON, non-finite
    numbers, lone surrogates or nesting deeper than ``max_depth``."""
    try:
        text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
    except UnicodeDecodeError as e:
        raise BadRequest(f"body is not valid JSON: {e}", code="invalid_json") from None
    if text is data:
        check_text(text)  # a str argument may hold raw surrogates; decoded bytes cannot
    check_document(text, max_depth)
    try:
        return decoder().decode(text)
    except ValueError as e:  # JSONDecodeError, or an integer over Python's digit limit
        raise BadRequest(f"body is not valid JSON: {str(e)[:200]}", code="invalid_json") from None
