"""The JSON Schema keywords Cerberus has no rule for, as rules of ``IngestValidator``.

``format`` (ajv-formats), ``exclusive_min``/``exclusive_max`` (``exclusiveMinimum``/``Maximum``),
``multiple_of`` (``multipleOf``) and ``pattern`` (an unanchored ``re.search``, unlike Cerberus's
anchored ``regex``). Each is a plain function ``fails(constraint, value) -> bool`` with JSON
Schema's scope: numeric keywords ignore anything but numbers (booleans included), ``format`` and
``pattern`` anything but text, and all of them ignore ``None`` (a blank cell read as null). The
Cerberus validator (``definition``) and the compiled engine (``fields``) call the same functions.
"""

from __future__ import annotations

import functools
import re
from fractions import Fraction
from typing import Any, Callable

from cerberus import errors

from .formats import FORMATS

# Free codes in Cerberus's "value" group (0x41-0x48 are its own).
FORMAT_MISMATCH = errors.ErrorDefinition(0x4A, "format")
EXCLUSIVE_MIN = errors.ErrorDefinition(0x4B, "exclusive_min")
EXCLUSIVE_MAX = errors.ErrorDefinition(0x4C, "exclusive_max")
NOT_MULTIPLE = errors.ErrorDefinition(0x4D, "multiple_of")
# ``pattern`` is ``regex``'s idea (one code for one idea): same error code, its own rule name.
PATTERN_MISMATCH = errors.ErrorDefinition(errors.REGEX_MISMATCH.code, "pattern")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def format_fails(name: str, value: Any) -> bool:
    return isinstance(value, str) and not FORMATS[name](value)


def exclusive_min_fails(bound: Any, value: Any) -> bool:
    return _number(value) and value <= bound


def exclusive_max_fails(bound: Any, value: Any) -> bool:
    return _number(value) and value >= bound


def multiple_of_fails(divisor: Any, value: Any) -> bool:
    """As the ``jsonschema`` package decides it (a float quotient must be integral)."""
    if not _number(value):
        return False
    if isinstance(divisor, float):
        quotient = value / divisor
        try:
            return int(quotient) != quotient
        except OverflowError:
            return (Fraction(value) / Fraction(divisor)).denominator != 1
    return bool(value % divisor)


@functools.lru_cache(maxsize=1024)
def _search(pattern: str) -> Callable[[str], Any]:
    return re.compile(pattern).search


def pattern_fails(pattern: str, value: Any) -> bool:
    return isinstance(value, str) and _search(pattern)(value) is None


# rule -> (fails, error definition); the order of this table is not the order of checks.
KEYWORD_RULES: dict[str, tuple[Callable[[Any, Any], bool], errors.ErrorDefinition]] = {
    "format": (format_fails, FORMAT_MISMATCH),
    "exclusive_min": (exclusive_min_fails, EXCLUSIVE_MIN),
    "exclusive_max": (exclusive_max_fails, EXCLUSIVE_MAX),
    "multiple_of": (multiple_of_fails, NOT_MULTIPLE),
    "pattern": (pattern_fails, PATTERN_MISMATCH),
}
# Cerberus reads a rule's own schema from its method's docstring.
RULE_SCHEMAS = {
    "format": {"type": "string", "allowed": sorted(FORMATS)},
    "exclusive_min": {"type": "number"},
    "exclusive_max": {"type": "number"},
    "multiple_of": {"type": "number"},
    "pattern": {"type": "string"},
}
CODES = {FORMAT_MISMATCH.code: "format_mismatch", EXCLUSIVE_MIN.code: "exclusive_min_value",
         EXCLUSIVE_MAX.code: "exclusive_max_value", NOT_MULTIPLE.code: "not_multiple"}
