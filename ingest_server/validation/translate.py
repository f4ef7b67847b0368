"""Translate a cQube spec (the JSON body of ``POST /api/spec/*``) into a Cerberus schema.

cQube bodies look like ``{"program": name, "input": {"type": "object", "properties": {col:
{"type": ..., "shouldnotnull": bool, "unique": bool, "format": ...}}, "required": [...]}}``.

* ``type``: ``string`` stays text; ``number`` coerces with ``number`` (ints accepted, kept as
  int); ``integer`` and ``boolean`` with their coercers. ``format: date`` / ``date-time`` on a
  string makes a ``date`` / ``datetime`` column (ISO text, see ``definition``).
* ``shouldnotnull`` (or ``shouldNotNull``) true: the column must be present (``required``) and
  never blank: ``empty: False`` for text, ``nullable: False`` for coerced types (a blank cell
  coerces to ``None``). Otherwise blank cells are allowed (``nullable: True`` when coerced).
  A whitespace-only text cell is not empty, as in cQube.
* ``required`` list: the column must be present in the file (``required: True``). A name listed
  there but missing from ``properties`` (several real specs have such typos) becomes a required
  column with no other rule, with ``meta.undeclared`` set so the spec API can point it out.
* ``unique`` goes to the field's ``meta`` only. cQube uses it to mark the key columns, and the key
  is the combination (district, block, cluster, school...), so enforcing per-column uniqueness
  would reject valid files.
* Anything else (an unknown keyword at any level, a bad value) raises ``InvalidSpec`` naming the
  keyword and the field, with details ``{"keyword": ..., "field": ...}``: nothing is silently
  dropped.
"""

from __future__ import annotations

from typing import Any

from ingest_server.errors import InvalidSpec

from .definition import Extensions, check_cerberus_schema

__all__ = ["translate_cqube_spec", "check_cerberus_schema"]

_TOP_KEYS = frozenset({"program", "input"})
_INPUT_KEYS = frozenset({"type", "properties", "required"})
_FIELD_KEYS = frozenset({"type", "shouldnotnull", "shouldNotNull", "unique", "format"})
_TYPES = {
    "string": {"type": "string"},
    "number": {"type": "number", "coerce": "number"},
    "integer": {"type": "integer", "coerce": "integer"},
    "boolean": {"type": "boolean", "coerce": "boolean"},
}
_FORMATS = {
    "date": {"type": "date", "coerce": "date"},
    "date-time": {"type": "datetime", "coerce": "datetime"},
}


def _bad(message: str, keyword: str | None, field: str | None) -> InvalidSpec:
    return InvalidSpec(message, keyword=keyword, field=field)


def _check_keys(obj: dict, allowed: frozenset, where: str, field: str | None) -> None:
    for key in obj:
        if key not in allowed:
            raise _bad(f"unknown keyword {key!r} in {where}", key, field)


def _translate_field(name: str, prop: Any) -> dict:
    if not isinstance(prop, dict):
        raise _bad(f"property {name!r} must be an object", None, name)
    _check_keys(prop, _FIELD_KEYS, f"property {name!r}", name)
    kind = prop.get("type")
    if kind not in _TYPES:
        raise _bad(f"property {name!r}: type must be one of {', '.join(_TYPES)}, got {kind!r}",
                   "type", name)
    rules = dict(_TYPES[kind])
    if "format" in prop:
        fmt = prop["format"]
        if kind != "string" or fmt not in _FORMATS:
            raise _bad(f"property {name!r}: format must be one of {', '.join(_FORMATS)} "
                       f"on a string, got {fmt!r} on {kind!r}", "format", name)
        rules = dict(_FORMATS[fmt])
    flags = {k: prop[k] for k in ("shouldnotnull", "shouldNotNull") if k in prop}
    for key, value in flags.items():
        if not isinstance(value, bool):
            raise _bad(f"property {name!r}: {key} must be true or false", key, name)
    if len(set(flags.values())) > 1:
        raise _bad(f"property {name!r}: shouldnotnull and shouldNotNull disagree",
                   "shouldNotNull", name)
    not_null = any(flags.values())
    if not_null:
        rules["required"] = True
        if "coerce" in rules:
            rules["nullable"] = False
        else:
            rules["empty"] = False
    elif "coerce" in rules:
        rules["nullable"] = True
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
