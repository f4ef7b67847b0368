"""``IngestValidator``: the Cerberus validator that *is* the definition of a valid row.

CSV cells arrive as text, so a schema converts them with named coercers,
``"coerce": "integer" | "number" | "float" | "boolean" | "date" | "datetime"``. All of them turn
a blank cell (``""`` or ASCII whitespace only) into ``None`` and return a value that does not
parse unchanged, so the ``type`` rule reports ``type_error`` with the user's original text.
What parses (summary; the full rules are in ``coercers``): integers are ``[+-]?[0-9]+`` with
surrounding ASCII whitespace ignored (``"+1"``, ``"01"``, ``" 5 "`` parse); floats also take a
decimal point and an exponent (``"1e3"``); ``NaN``, ``inf``, ``1_000``, non-ASCII digits and
overflow to infinity never parse; booleans are true/false, yes/no, 1/0 in any case; dates are
ISO ``YYYY-MM-DD`` and datetimes ISO with ``T`` or a space.

Another date layout is given per field with the ``date_format`` rule (a ``strptime`` format):
``{"type": "date", "coerce": "date", "date_format": "%d-%m-%Y"}``. It only changes what the
``date`` and ``datetime`` coercers accept; as a validation rule it does nothing.

Plugins extend Cerberus through an ``Extensions`` value passed to ``make_validator_class``:
custom rules (``check(constraint, value)`` returns ``None`` when fine or an error message),
types (``predicate(value) -> bool``) and coercers (``coerce(value) -> value``). The compiled
engine calls the very same functions, which is what keeps its verdicts identical.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable

import cerberus
from cerberus import errors
from cerberus.schema import SchemaError
from cerberus.utils import TypeDefinition

from ingest_server.errors import InvalidSpec

from .coercers import BUILTIN_COERCERS, FORMAT_COERCERS
from .keywords import KEYWORD_RULES, RULE_SCHEMAS

RuleCheck = Callable[[Any, Any], "str | None"]


def _keyword_method(rule: str) -> Callable:
    fails, definition = KEYWORD_RULES[rule]

    def method(self, constraint, field, value):
        if fails(constraint, value):
            self._error(field, definition)

    method.__name__ = f"_validate_{rule}"
    method.__doc__ = repr(RULE_SCHEMAS[rule])
    return method


class IngestValidator(cerberus.Validator):
    """Cerberus plus the CSV coercers and the ``date_format`` rule (and two coercion fixes)."""

    # Cerberus caches "this schema is valid" in one set shared by every Validator class; a
    # schema valid for a class with plugin rules must not look valid for one without them.
    _valid_schemas: set = set()

    def _normalize_coerce_integer(self, value):
        return BUILTIN_COERCERS["integer"](value)

    def _normalize_coerce_number(self, value):
        return BUILTIN_COERCERS["number"](value)

    def _normalize_coerce_float(self, value):
        return BUILTIN_COERCERS["float"](value)

    def _normalize_coerce_boolean(self, value):
        return BUILTIN_COERCERS["boolean"](value)

    def _normalize_coerce_date(self, value):
        return BUILTIN_COERCERS["date"](value)

    def _normalize_coerce_datetime(self, value):
        return BUILTIN_COERCERS["datetime"](value)

    def _normalize_coerce_text(self, value):
        return BUILTIN_COERCERS["text"](value)

    # The JSON Schema keywords Cerberus lacks (see ``keywords``), as rules of the definition.
    _validate_format = _keyword_method("format")
    _validate_exclusive_min = _keyword_method("exclusive_min")
    _validate_exclusive_max = _keyword_method("exclusive_max")
    _validate_multiple_of = _keyword_method("multiple_of")
    _validate_pattern = _keyword_method("pattern")

    def _validate_date_format(self, date_format, field, value):
        """{'type': 'string'}"""
        # Honoured by the date/datetime coercers (see _normalize_coerce); nothing to check here.

    def _normalize_coerce(self, mapping, schema):
        # Two Cerberus 1.3 bugs are fixed here, so the definition stays sane: it applies
        # allow_unknown's coercer to *known* fields that have no coerce rule, and it crashes
        # (KeyError) when an unknown field's coercer raises. Known fields are coerced by
        # Cerberus itself; unknown ones by _coerce_unknown.
        patched = None
        for name, rules in schema.items():
            if not isinstance(rules, Mapping) or "date_format" not in rules:
                continue
            coerce = rules.get("coerce")
            if isinstance(coerce, str) and coerce in FORMAT_COERCERS:
                # A Cerberus coercer only sees the value, so bind the field's format into it.
                patched = dict(schema) if patched is None else patched
                patched[name] = {**rules, "coerce": functools.partial(
                    BUILTIN_COERCERS[coerce], fmt=rules["date_format"])}
        known = {f: v for f, v in mapping.items()
                 if f in schema and isinstance(schema[f], Mapping) and "coerce" in schema[f]}
        if known:
            super()._normalize_coerce(known, schema if patched is None else patched)
            mapping.update(known)
        unknown_rules = self.allow_unknown
        if isinstance(unknown_rules, Mapping) and "coerce" in unknown_rules:
            for name in mapping:
                if name not in schema:
                    mapping[name] = self._coerce_unknown(name, mapping[name], unknown_rules)

    def _coerce_unknown(self, name, original, rules):
        coerce = rules["coerce"]
        nullable = rules.get("nullable", False)
        value = original
        for processor in [coerce] if isinstance(coerce, str) or callable(coerce) else coerce:
            if isinstance(processor, str):
                processor = getattr(self, "_normalize_coerce_" + processor.replace(" ", "_"))
            try:
                value = processor(value)
            except Exception as exc:  # as Cerberus: any coercer exception is a row error
                if not (nullable and value is None):
                    self._error([errors.ValidationError(
                        self.document_path + (name,), ("__allow_unknown__", "coerce"),
                        errors.COERCION_FAILED.code, "coerce", coerce, original, (str(exc),))])
                    break
        return value

    # Cerberus reads a rule's argument schema from the method's docstring.
    _normalize_coerce.__doc__ = cerberus.Validator._normalize_coerce.__doc__



@dataclass(frozen=True, eq=False)
class Extensions:
    """What plugins add to Cerberus. Compared and hashed by identity (one per start-up)."""

    rules: Mapping[str, tuple[RuleCheck, dict]] = field(default_factory=dict)
    types: Mapping[str, Callable[[Any], bool]] = field(default_factory=dict)
    coercers: Mapping[str, Callable[[Any], Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for attr in ("rules", "types", "coercers"):
            object.__setattr__(self, attr, MappingProxyType(dict(getattr(self, attr))))


class _PredicateMeta(type):
    # Cerberus checks types with isinstance(); this makes isinstance() call the plugin predicate.
    def __instancecheck__(cls, value: Any) -> bool:
        return bool(cls.predicate(value))


def _predicate_type(name: str, predicate: Callable[[Any], bool]) -> type:
    return _PredicateMeta(f"{name}_type", (), {"predicate": staticmethod(predicate)})


def custom_rule_error(rule: str) -> errors.ErrorDefinition:
    """The error a plugin rule files: Cerberus's CUSTOM code, but carrying the rule name."""
    return errors.ErrorDefinition(errors.CUSTOM.code, rule)


def _rule_method(name: str, check: RuleCheck, rule_schema: dict) -> Callable:
    definition = custom_rule_error(name)

    def method(self, constraint, field, value):
        message = check(constraint, value)
        if message is not None:
            self._error(field, definition, str(message))

    method.__doc__ = repr(rule_schema)
    return method


def _check_name(kind: str, name: str, taken) -> None:
    if not isinstance(name, str) or not name.isidentifier() or name in taken:
        raise ValueError(f"plugin {kind} name {name!r} is not an identifier or is already defined")


@functools.lru_cache(maxsize=64)
def make_validator_class(extensions: Extensions | None = None) -> type[IngestValidator]:
    """The validator class for a set of plugin extensions (cached: one class per Extensions)."""
    if extensions is None or not (extensions.rules or extensions.types or extensions.coercers):
        return IngestValidator
    namespace: dict[str, Any] = {"_valid_schemas": set(), "__doc__": IngestValidator.__doc__}
    for name, (check, rule_schema) in extensions.rules.items():
        _check_name("rule", name, IngestValidator.rules)
        namespace[f"_validate_{name}"] = _rule_method(name, check, rule_schema)
    types_mapping = dict(IngestValidator.types_mapping)
    for name, predicate in extensions.types.items():
        _check_name("type", name, types_mapping)
        types_mapping[name] = TypeDefinition(name, (_predicate_type(name, predicate),), ())
    namespace["types_mapping"] = types_mapping
    for name, coerce in extensions.coercers.items():
        _check_name("coercer", name, IngestValidator.coercers)
        namespace[f"_normalize_coerce_{name}"] = (lambda fn: lambda self, value: fn(value))(coerce)
    return type(IngestValidator)("PluginIngestValidator", (IngestValidator,), namespace)


def _first_schema_error(tree: Any, field: Any = None, keyword: Any = None) -> tuple[Any, Any, str]:
    """Dig the first (field, rule, message) out of Cerberus's nested SchemaError tree."""
    if isinstance(tree, Mapping):
        for key, sub in tree.items():
            if field is None:
                return _first_schema_error(sub, key, keyword)
            return _first_schema_error(sub, field, key if keyword is None else keyword)
    if isinstance(tree, list) and tree:
        return _first_schema_error(tree[0], field, keyword)
    return field, keyword, str(tree)


def check_cerberus_schema(schema: Any, extensions: Extensions | None = None) -> None:
    """Raise ``InvalidSpec`` unless ``schema`` is a Cerberus schema this service can run."""
    if not isinstance(schema, Mapping) or not schema:
        raise InvalidSpec("a schema must be a non-empty object of field rules",
                          keyword=None, field=None)
    for name, rules in schema.items():
        if not isinstance(name, str) or not name:
            raise InvalidSpec(f"field names must be non-empty strings, got {name!r}",
                              keyword=None, field=name)
        if not isinstance(rules, Mapping):
            raise InvalidSpec(f"field {name!r}: its rules must be an object",
                              keyword=None, field=name)
    try:
        make_validator_class(extensions)(schema)
    except SchemaError as exc:
        name, keyword, text = _first_schema_error(exc.args[0] if exc.args else str(exc))
        raise InvalidSpec(f"invalid schema: field {name!r}, rule {keyword!r}: {text}",
                          keyword=keyword, field=name) from None
    for name, rules in schema.items():
        _check_regexes(name, rules)


def uses_rule(schema: Any, rule: str) -> bool:
    """Whether ``rule`` appears anywhere in ``schema`` (also inside ``oneof``, ``schema``, ...)."""
    if isinstance(schema, Mapping):
        return any(k == rule or uses_rule(v, rule) for k, v in schema.items())
    if isinstance(schema, (list, tuple)):
        return any(uses_rule(v, rule) for v in schema)
    return False


def uses_patterns(schema: Any) -> bool:
    """Whether checking rows runs a client's regular expression: Cerberus ``regex``, the
    ``pattern`` rule of a translated cQube spec, or ``format: regex`` (each cell compiled as
    one) (see ``csvstream.guarded``)."""
    return (uses_rule(schema, "regex") or uses_rule(schema, "pattern")
            or _uses_value(schema, "format", "regex"))


def _uses_value(schema: Any, rule: str, value: Any) -> bool:
    if isinstance(schema, Mapping):
        return any((k == rule and v == value) or _uses_value(v, rule, value)
                   for k, v in schema.items())
    if isinstance(schema, (list, tuple)):
        return any(_uses_value(v, rule, value) for v in schema)
    return False


def _check_regexes(field: str, rules: Any) -> None:
    """Compile every ``regex`` of a field's rules (also inside ``oneof``, ``schema``, ...):
    Cerberus only compiles them when a value is checked, so a bad one was a 500 per upload."""
    if isinstance(rules, Mapping):
        for rule, value in rules.items():
            if rule == "regex" and isinstance(value, str):
                try:
                    re.compile(value if value.endswith("$") else value + "$")
                except (re.error, RecursionError, OverflowError) as e:
                    raise InvalidSpec(f"invalid schema: field {field!r}, rule 'regex': "
                                      f"{value[:200]!r} is not a regular expression: {e}",
                                      keyword="regex", field=field) from None
            else:
                _check_regexes(field, value)
    elif isinstance(rules, (list, tuple)):
        for item in rules:
            _check_regexes(field, item)
