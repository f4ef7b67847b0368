"""JSON from clients: finite numbers only, nesting bounded.

Python's ``json`` reads ``NaN``, ``Infinity`` and ``1e400`` (as inf), which no spec means and
which break comparisons and JSON output later; and a document nested 100,000 levels deep makes
it (and every recursive walk after it) raise ``RecursionError``. Both are the client's mistake:
``BadRequest`` (400), before any parsing.
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


def _depth(text: str) -> int:
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRINGS.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def _refuse_constant(name: str) -> Any:
    raise BadRequest(f"{name} is not a JSON number: only finite numbers are accepted",
                     code="invalid_json")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadRequest(f"the number {text[:40]} is out of range", code="invalid_json")
    return value


def loads(data: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` for client bodies: 400 ``invalid_json`` for malformed JSON, non-finite
    numbers or nesting deeper than ``max_depth``."""
    try:
        text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
    except UnicodeDecodeError as e:
        raise BadRequest(f"body is not valid JSON: {e}", code="invalid_json") from None
    if _depth(text) > max_depth:
        raise BadRequest(f"the JSON is nested deeper than {max_depth} levels",
                         code="invalid_json", max_depth=max_depth)
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite)
    except ValueError as e:  # JSONDecodeError, or an integer over Python's digit limit
        raise BadRequest(f"body is not valid JSON: {str(e)[:200]}", code="invalid_json") from None
