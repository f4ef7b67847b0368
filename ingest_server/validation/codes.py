"""Stable error codes and human messages for row errors.

Codes are derived from Cerberus's error *codes* (and, for plugin rules, the rule name), never
from its message text, so they survive Cerberus upgrades and translations. Messages are written
for a person fixing the CSV: they say what was expected and quote the cell when that helps.
Both the Cerberus path (``to_row_error``) and the compiled engine build messages with
``message_for``, so the two produce the same text.
"""

from __future__ import annotations

from typing import Any

from cerberus import errors

from .keywords import CODES as KEYWORD_CODES

CODES: dict[int, str] = {
    errors.REQUIRED_FIELD.code: "required_field",
    errors.UNKNOWN_FIELD.code: "unknown_field",
    errors.DEPENDENCIES_FIELD.code: "dependency_missing",
    errors.DEPENDENCIES_FIELD_VALUE.code: "dependency_mismatch",
    errors.EXCLUDES_FIELD.code: "excluded_field",
    errors.EMPTY_NOT_ALLOWED.code: "empty_not_allowed",
    errors.NOT_NULLABLE.code: "not_nullable",
    errors.BAD_TYPE.code: "type_error",
    errors.BAD_TYPE_FOR_SCHEMA.code: "type_error",
    errors.ITEMS_LENGTH.code: "items_length",
    errors.MIN_LENGTH.code: "min_length",
    errors.MAX_LENGTH.code: "max_length",
    errors.REGEX_MISMATCH.code: "regex_mismatch",
    errors.MIN_VALUE.code: "min_value",
    errors.MAX_VALUE.code: "max_value",
    errors.UNALLOWED_VALUE.code: "not_allowed",
    errors.UNALLOWED_VALUES.code: "not_allowed",
    errors.FORBIDDEN_VALUE.code: "forbidden_value",
    errors.FORBIDDEN_VALUES.code: "forbidden_value",
    errors.MISSING_MEMBERS.code: "missing_members",
    errors.COERCION_FAILED.code: "coercion_failed",
    errors.RENAMING_FAILED.code: "renaming_failed",
    errors.READONLY_FIELD.code: "read_only",
    errors.SETTING_DEFAULT_FAILED.code: "default_failed",
    errors.MAPPING_SCHEMA.code: "schema_mismatch",
    errors.SEQUENCE_SCHEMA.code: "schema_mismatch",
    errors.KEYSRULES.code: "keysrules_mismatch",
    errors.VALUESRULES.code: "valuesrules_mismatch",
    errors.BAD_ITEMS.code: "items_mismatch",
    errors.NONEOF.code: "noneof_mismatch",
    errors.ONEOF.code: "oneof_mismatch",
    errors.ANYOF.code: "anyof_mismatch",
    errors.ALLOF.code: "allof_mismatch",
    **KEYWORD_CODES,
}
FALLBACK_CODE = "invalid_value"

_TYPE_WORDS = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "float": "a number",
    "boolean": "true or false (also yes/no, 1/0)",
    "date": "a date",
    "datetime": "a date and time (YYYY-MM-DD HH:MM[:SS])",
}
_MAX_SHOWN = 60


def code_for(code: int, rule: str | None) -> str:
    """The stable code of a Cerberus error; plugin rules give ``custom:<rule>``."""
    if code == errors.CUSTOM.code:
        return f"custom:{rule}" if rule else "custom"
    return CODES.get(code, FALLBACK_CODE)


def _show(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def _type_words(constraint: Any, rules: Any) -> str:
    types = [constraint] if isinstance(constraint, str) else list(constraint or ())
    words = []
    for name in types:
        word = _TYPE_WORDS.get(name, f"a value of type {name}")
        if name == "date":
            word += f" ({(rules or {}).get('date_format') or 'YYYY-MM-DD'})"
        words.append(word)
    return " or ".join(words)


def message_for(code: str, constraint: Any, value: Any, info: tuple = (),
                rules: Any = None) -> str:
    """A message for one error. ``value`` is the (coerced) value Cerberus saw."""
    if code == "type_error":
        return f"expected {_type_words(constraint, rules)}, got {_show(value)}"
    if code == "empty_not_allowed":
        return "a value is required but the cell is empty"
    if code == "not_nullable":
        return "a value is required but the cell is blank"
    if code == "not_allowed":
        allowed = ", ".join(_show(v) for v in list(constraint)[:10])
        return f"{_show(value)} is not one of the allowed values: {allowed}"
    if code == "forbidden_value":
        return f"{_show(value)} is not allowed here"
    if code == "min_value":
        return f"must be at least {_show(constraint)}, got {_show(value)}"
    if code == "max_value":
        return f"must be at most {_show(constraint)}, got {_show(value)}"
    if code == "min_length":
        return f"must be at least {constraint} characters long, got {info[0] if info else '?'}"
    if code == "max_length":
        return f"must be at most {constraint} characters long, got {info[0] if info else '?'}"
    if code == "exclusive_min_value":
        return f"must be greater than {_show(constraint)}, got {_show(value)}"
    if code == "exclusive_max_value":
        return f"must be less than {_show(constraint)}, got {_show(value)}"
    if code == "not_multiple":
        return f"must be a multiple of {_show(constraint)}, got {_show(value)}"
    if code == "format_mismatch":
        return f"{_show(value)} is not a valid {constraint}"
    if code == "regex_mismatch":
        return f"{_show(value)} does not match the pattern {constraint}"
    if code == "required_field":
        return "this column is required"
    if code == "unknown_field":
        return "this column is not in the spec"
    if code == "coercion_failed":
        return f"could not convert {_show(value)}: {info[0] if info else 'error'}"
    if code.startswith("custom") and info:
        return str(info[0])
    return f"{_show(value)} is not valid here ({code})"


def to_row_error(error: errors.ValidationError, schema: Any = None) -> tuple[str, str, str]:
    """Map one top-level Cerberus error to ``(column, code, message)``.

    ``schema`` (the validator's schema) lets messages mention a field's ``date_format``.
    """
    column = str(error.document_path[0]) if error.document_path else ""
    code = code_for(error.code, error.rule)
    rules = schema.get(column) if schema is not None and hasattr(schema, "get") else None
    return column, code, message_for(code, error.constraint, error.value, error.info, rules)
