"""Translate a cQube spec (the JSON body of ``POST /api/spec/*``) into a Cerberus schema.

cQube validates a row with AJV (JSON Schema draft 2019-09, ``allErrors``, ajv-formats); this
gives each keyword the Cerberus rule with the same verdict on a CSV cell (see CQUBE.md §2):

* ``type``: ``string`` stays text; ``number`` coerces with ``number`` (ints kept as int),
  ``integer`` and ``boolean`` with their coercers. A list may add ``"null"`` to one of them: a
  blank cell is then no value (``nullable``; for text, ``coerce: text``). A blank cell of a
  number, integer or boolean column is always no value (never 0), unless ``shouldnotnull``.
* ``shouldnotnull`` / ``shouldNotNull`` true: when the column is in the file, a cell blank after
  trimming fails (text and numbers alike: ``not_nullable``). It does **not** make the column
  required; only ``input.required`` does. A name in ``required`` but missing from
  ``properties`` (real specs have such typos) becomes a required column with no other rule and
  ``meta.undeclared``.
* ``enum``/``const`` → ``allowed`` (values that can never equal a cell of the column's type —
  ``true`` in a number column, objects — are left out, so Python's ``True == 1`` cannot match);
  ``minimum``/``maximum`` → ``min``/``max``; ``exclusiveMinimum``/``exclusiveMaximum`` →
  ``exclusive_min``/``exclusive_max``; ``multipleOf`` → ``multiple_of`` (numbers only);
  ``minLength``/``maxLength`` → ``minlength``/``maxlength``; ``pattern`` → ``pattern`` (an
  unanchored search, as JSON Schema means it; a Python regular expression); ``format`` →
  ``format`` (the ajv-formats formats, checked on the text; see ``formats``).
* ``unique`` → ``meta.unique`` only (cQube marks key columns with it; the key is their
  combination, so per-column uniqueness would reject valid files).
* Annotations (``title``, ``description``, ``default``, ``examples``, ``$comment``,
  ``deprecated``, ``readOnly``, ``writeOnly``) change nothing; ``indexes`` and ``psql_schema``
  (cQube's database hints) are metadata. Both stay in the stored original body.
* ``input.additionalProperties``: absent or true, columns the spec does not declare pass through
  to the output (``spec_allows_unknown``); false refuses them (``unknown_column``).
* Anything else (an unknown keyword at any level, a bad value, a keyword we cannot honour such
  as ``anyOf``) raises ``InvalidSpec`` naming the keyword and the field, with details
  ``{"keyword": ..., "field": ...}``: nothing is silently dropped.
"""

from __future__ import annotations

import math
import re
from typing import Any

from ingest_server.errors import InvalidSpec

from .definition import Extensions, check_cerberus_schema
from .formats import FORMATS

__all__ = ["translate_cqube_spec", "check_cerberus_schema", "spec_allows_unknown"]

ANNOTATIONS = frozenset({"title", "description", "default", "examples", "$comment",
                         "deprecated", "readOnly", "writeOnly", "$schema", "$id"})
_METADATA = frozenset({"indexes", "psql_schema"})
_TOP_KEYS = frozenset({"program", "input"}) | ANNOTATIONS | _METADATA
_INPUT_KEYS = frozenset({"type", "properties", "required", "additionalProperties"}) \
    | ANNOTATIONS | _METADATA
_NUMERIC = {"minimum": "min", "maximum": "max", "exclusiveMinimum": "exclusive_min",
            "exclusiveMaximum": "exclusive_max", "multipleOf": "multiple_of"}
_LENGTHS = {"minLength": "minlength", "maxLength": "maxlength"}
_FIELD_KEYS = frozenset({"type", "shouldnotnull", "shouldNotNull", "unique", "format", "enum",
                         "const", "pattern", *_NUMERIC, *_LENGTHS}) | ANNOTATIONS | _METADATA
_TYPES = {
    "string": {"type": "string"},
    "number": {"type": "number", "coerce": "number"},
    "integer": {"type": "integer", "coerce": "integer"},
    "boolean": {"type": "boolean", "coerce": "boolean"},
}


def _bad(message: str, keyword: str | None, field: str | None) -> InvalidSpec:
    return InvalidSpec(message, keyword=keyword, field=field)


def _check_keys(obj: dict, allowed: frozenset, where: str, field: str | None) -> None:
    for key in obj:
        if key not in allowed:
            raise _bad(f"unknown keyword {key!r} in {where} (not one this server can honour)",
                       key, field)


def _column_type(name: str, prop: dict) -> tuple[str, bool]:
    """The column's one JSON type and whether ``"null"`` is allowed too."""
    kind = prop.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    nullable = "null" in kinds
    rest = [k for k in kinds if k != "null"]
    if len(rest) != 1 or rest[0] not in _TYPES or len(set(kinds)) != len(kinds):
        raise _bad(f"property {name!r}: type must be one of {', '.join(_TYPES)}, optionally "
                   f"in a list with \"null\", got {kind!r}", "type", name)
    return rest[0], nullable


def _matches_type(value: Any, kind: str) -> bool:
    """Whether a JSON value can equal a cell of a column of this type (for enum/const)."""
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return kind == "number" or float(value).is_integer()


def _number_keyword(name: str, key: str, value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _bad(f"property {name!r}: {key} must be a number", key, name)
    if key == "multipleOf" and value <= 0:
        raise _bad(f"property {name!r}: multipleOf must be greater than 0", key, name)
    return value


def _value_rules(name: str, prop: dict, kind: str) -> dict:
    rules: dict[str, Any] = {}
    if "enum" in prop or "const" in prop:
        if "enum" in prop and not isinstance(prop["enum"], list):
            raise _bad(f"property {name!r}: enum must be a list", "enum", name)
        allowed = None
        for key in ("enum", "const"):
            if key in prop:
                values = prop[key] if key == "enum" else [prop[key]]
                fitting = [v for v in values if _matches_type(v, kind)]
                allowed = fitting if allowed is None else [v for v in allowed if v in fitting]
        rules["allowed"] = allowed
    numeric = kind in ("number", "integer")
    for key, rule in _NUMERIC.items():
        if key in prop:
            value = _number_keyword(name, key, prop[key])
            if numeric:  # JSON Schema applies numeric keywords to numbers only
                rules[rule] = value
    for key, rule in _LENGTHS.items():
        if key in prop:
            value = prop[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise _bad(f"property {name!r}: {key} must be a whole number >= 0", key, name)
            if kind == "string":  # a number column's cells are numbers, which have no length
                rules[rule] = value
    if "pattern" in prop:
        pattern = prop["pattern"]
        try:
            re.compile(pattern)
        except (re.error, TypeError, RecursionError, OverflowError) as exc:
            raise _bad(f"property {name!r}: pattern is not a regular expression this server "
                       f"can run: {exc}", "pattern", name) from None
        if kind == "string":
            rules["pattern"] = pattern
    if "format" in prop:
        fmt = prop["format"]
        if fmt not in FORMATS:
            raise _bad(f"property {name!r}: unknown format {fmt!r} (known: "
                       f"{', '.join(sorted(FORMATS))})", "format", name)
        if kind == "string":  # formats only look at strings
            rules["format"] = fmt
    return rules


def _translate_field(name: str, prop: Any) -> dict:
    if not isinstance(prop, dict):
        raise _bad(f"property {name!r} must be an object", None, name)
    _check_keys(prop, _FIELD_KEYS, f"property {name!r}", name)
    kind, null_allowed = _column_type(name, prop)
    flags = {k: prop[k] for k in ("shouldnotnull", "shouldNotNull") if k in prop}
    for key, value in flags.items():
        if not isinstance(value, bool):
            raise _bad(f"property {name!r}: {key} must be true or false", key, name)
    if len(set(flags.values())) > 1:
        raise _bad(f"property {name!r}: shouldnotnull and shouldNotNull disagree",
                   "shouldNotNull", name)
    not_null = any(flags.values())
    rules = dict(_TYPES[kind])
    if not_null or null_allowed or kind != "string":
        rules.setdefault("coerce", "text")
        rules["nullable"] = not not_null
    rules.update(_value_rules(name, prop, kind))
    if "unique" in prop:
        if not isinstance(prop["unique"], bool):
            raise _bad(f"property {name!r}: unique must be true or false", "unique", name)
        rules["meta"] = {"unique": prop["unique"]}
    return rules


def translate_cqube_spec(body: Any, extensions: Extensions | None = None) -> dict:
    """The Cerberus schema for a cQube spec body (checked by Cerberus's schema validator)."""
    if not isinstance(body, dict):
        raise _bad("a spec must be a JSON object", None, None)
    _check_keys(body, _TOP_KEYS, "the spec", None)
    program = body.get("program")
    if not isinstance(program, str) or not program.strip():
        raise _bad("the spec needs a non-empty 'program' name", "program", None)
    spec_input = body.get("input")
    if not isinstance(spec_input, dict):
        raise _bad("the spec needs an 'input' object", "input", None)
    _check_keys(spec_input, _INPUT_KEYS, "'input'", None)
    if spec_input.get("type", "object") != "object":
        raise _bad("'input.type' must be 'object'", "type", None)
    if not isinstance(spec_input.get("additionalProperties", True), bool):
        raise _bad("'input.additionalProperties' must be true or false (a schema for extra "
                   "columns is not supported)", "additionalProperties", None)
    props = spec_input.get("properties")
    if not isinstance(props, dict) or not props:
        raise _bad("'input.properties' must be a non-empty object", "properties", None)
    required = spec_input.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) and r for r in required):
        raise _bad("'input.required' must be a list of column names", "required", None)
    schema: dict[str, dict] = {}
    for name, prop in props.items():
        if not name:
            raise _bad("property names must not be empty", None, name)
        schema[name] = _translate_field(name, prop)
    for name in required:
        if name in schema:
            schema[name]["required"] = True
        else:
            schema[name] = {"required": True, "meta": {"undeclared": True}}
    check_cerberus_schema(schema, extensions)
    return schema


def spec_allows_unknown(source: Any) -> bool:
    """Whether columns a cQube spec does not declare pass through (no ``additionalProperties:
    false``). Native Cerberus specs (no cQube source) refuse them, as before."""
    if not isinstance(source, dict) or not isinstance(source.get("input"), dict):
        return False
    return source["input"].get("additionalProperties", True) is not False
