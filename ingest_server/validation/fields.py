"""Per-field check closures that reproduce what Cerberus does to one field of a row.

The closures follow ``cerberus.Validator.__validate_definitions`` step by step: coercion first,
then ``nullable`` (always evaluated, drops most rules on ``None``), ``type`` (drops everything
on failure), ``empty`` (drops the length/value rules on an empty value), then the remaining
rules in the order the schema lists them. Each closure has the signature
``check(cell, errs)`` and appends ``(column, code, message)`` tuples to ``errs``.

Rules outside ``COMPILED_RULES`` (and plugin rules) are not reimplemented: such a field is
checked by a real Cerberus validator (``fallback_for_cell``); rules that look at other fields
validate the whole row (see ``compiler``).
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterable, Sequence, Sized
from typing import Any, Callable

from cerberus import errors

from .codes import code_for, message_for, to_row_error
from .coercers import BUILTIN_COERCERS, FORMAT_COERCERS
from .definition import Extensions
from .keywords import KEYWORD_RULES

Errs = list
FieldCheck = Callable[[Any, Errs], None]

COMPILED_RULES = frozenset({
    "type", "nullable", "empty", "allowed", "forbidden", "min", "max", "minlength",
    "maxlength", "regex", "coerce", "meta", "required", "date_format", "allow_unknown",
    "require_all", *KEYWORD_RULES,
})
# Rules that read other fields (or reshape the row): the fallback must see the whole row.
ROW_RULES = frozenset({"dependencies", "excludes", "rename", "rename_handler"})
# Never in Cerberus's per-field rule queue (normalisation or bookkeeping rules).
_NOT_QUEUED = frozenset({"allow_unknown", "require_all", "meta", "required", "coerce",
                         "default", "default_setter", "rename", "rename_handler",
                         "purge_unknown", "purge_readonly"})
_PRIORITY = ("nullable", "readonly", "type", "empty")
# What _validate_nullable and _validate_empty drop from the queue (cerberus/validator.py).
_NULLABLE_DROPS = frozenset({"allof", "allowed", "anyof", "empty", "forbidden", "items",
                             "keysrules", "min", "max", "minlength", "maxlength", "noneof",
                             "oneof", "regex", "schema", "type", "valuesrules"})
_EMPTY_DROPS = frozenset({"allowed", "forbidden", "items", "minlength", "maxlength", "regex",
                          "check_with"})
NUMERIC_COERCERS = {"number": int, "integer": int, "float": float}


def unsupported_rules(rules: dict, extensions: Extensions | None, types_mapping: dict) -> list:
    """The rules of a field that the compiler leaves to Cerberus."""
    plugin_rules = extensions.rules if extensions else {}
    bad = [r for r in rules if r not in COMPILED_RULES and r not in plugin_rules]
    types = rules.get("type")
    names = [types] if isinstance(types, str) else list(types or ())
    if any(name not in types_mapping for name in names):
        bad.append("type")  # deprecated _validate_type_* methods
    coerce = rules.get("coerce")
    if coerce is not None and not isinstance(coerce, str):
        if not isinstance(coerce, list) or not all(isinstance(c, str) for c in coerce):
            bad.append("coerce")
    return bad


def queued_rules(rules: dict) -> list[str]:
    """Cerberus's rule queue for a field, minus ``nullable`` (which always comes first)."""
    queue = [r for r in _PRIORITY if r in rules and r != "nullable"]
    queue += [r for r in rules if r not in queue and r not in _NOT_QUEUED and r != "nullable"]
    return queue


def _error(column: str, code: str, constraint: Any, value: Any, info: tuple, rules: dict):
    return column, code, message_for(code, constraint, value, info, rules)


def _coercer(name: str, rules: dict, extensions: Extensions | None, single: bool):
    if name in BUILTIN_COERCERS:
        fn = BUILTIN_COERCERS[name]
        # IngestValidator binds date_format only when coerce is a single name, not a list.
        if single and name in FORMAT_COERCERS and "date_format" in rules:
            return functools.partial(fn, fmt=rules["date_format"])
        return fn
    return extensions.coercers[name]


def _type_check(names: list[str], types_mapping: dict, extensions: Extensions | None):
    plugin_types = extensions.types if extensions else {}
    checks = []
    for name in names:
        if name in plugin_types:
            checks.append(lambda v, p=plugin_types[name]: bool(p(v)))
        else:
            inc, exc = types_mapping[name].included_types, types_mapping[name].excluded_types
            checks.append(lambda v, inc=inc, exc=exc: isinstance(v, inc) and not isinstance(v, exc))
    if len(checks) == 1:
        return checks[0]
    return lambda v: any(check(v) for check in checks)


def _rule_step(column: str, rule: str, rules: dict, extensions: Extensions | None):
    """A closure ``step(value, errs)`` for one non-priority rule, as Cerberus runs it."""
    constraint = rules[rule]
    err = functools.partial(_error, column, rules=rules)

    if rule == "allowed":
        try:
            fast = frozenset(constraint)
        except TypeError:
            fast = constraint

        def step(v, errs):
            if isinstance(v, Iterable) and not isinstance(v, str):
                unallowed = tuple(x for x in v if x not in constraint)
                if unallowed:
                    errs.append(err(code_for(errors.UNALLOWED_VALUES.code, rule), constraint,
                                    v, (unallowed,)))
                return
            try:
                ok = v in fast
            except TypeError:  # unhashable value
                ok = v in constraint
            if not ok:
                errs.append(err("not_allowed", constraint, v, (v,)))
    elif rule == "forbidden":
        def step(v, errs):
            if isinstance(v, Sequence) and not isinstance(v, str):
                found = set(v) & set(constraint)
                if found:
                    errs.append(err("forbidden_value", constraint, v, (list(found),)))
            elif v in constraint:
                errs.append(err("forbidden_value", constraint, v, (v,)))
    elif rule in ("min", "max"):
        code = "min_value" if rule == "min" else "max_value"
        below = rule == "min"

        def step(v, errs):
            try:
                failed = v < constraint if below else v > constraint
            except TypeError:  # Cerberus ignores incomparable values
                return
            if failed:
                errs.append(err(code, constraint, v, ()))
    elif rule in ("minlength", "maxlength"):
        code = "min_length" if rule == "minlength" else "max_length"
        shorter = rule == "minlength"

        def step(v, errs):
            if isinstance(v, Iterable):
                n = len(v)
                if (n < constraint) if shorter else (n > constraint):
                    errs.append(err(code, constraint, v, (n,)))
    elif rule == "regex":
        match = re.compile(constraint if constraint.endswith("$") else constraint + "$").match

        def step(v, errs):
            if isinstance(v, str) and not match(v):
                errs.append(err("regex_mismatch", constraint, v, ()))
    elif rule in KEYWORD_RULES:
        fails, definition = KEYWORD_RULES[rule]
        code = code_for(definition.code, rule)

        def step(v, errs):
            if fails(constraint, v):
                errs.append(err(code, constraint, v, ()))
    elif rule == "date_format":
        return None  # honoured by the coercer
    else:  # a plugin rule
        check = extensions.rules[rule][0]
        code = f"custom:{rule}"

        def step(v, errs):
            message = check(constraint, v)
            if message is not None:
                errs.append(err(code, constraint, v, (str(message),)))
    return step


def compile_field(column: str, rules: dict, extensions: Extensions | None,
                  types_mapping: dict) -> FieldCheck:
    """A closure ``check(cell, errs)`` with Cerberus's verdicts for this field's rules."""
    queue = queued_rules(rules)
    nullable = rules.get("nullable", False)
    coerce = rules.get("coerce")
    coercers = []
    if coerce is not None:
        single = isinstance(coerce, str)
        coercers = [_coercer(n, rules, extensions, single) for n in ([coerce] if single else coerce)]
    types = rules.get("type")
    names = [types] if isinstance(types, str) else list(types or ())
    type_ok = _type_check(names, types_mapping, extensions) if names else None
    has_empty = "empty" in rules
    empty_allowed = rules.get("empty")
    rest = [r for r in queue if r not in _PRIORITY]
    steps = [(r, _rule_step(column, r, rules, extensions)) for r in rest]
    steps = [(r, s) for r, s in steps if s is not None]
    normal_steps = [s for _, s in steps]
    empty_steps = [s for r, s in steps if r not in _EMPTY_DROPS]
    none_steps = [s for r, s in steps if r not in _NULLABLE_DROPS]
    not_nullable = _error(column, "not_nullable", nullable, None, (), rules)
    empty_error = _error(column, "empty_not_allowed", empty_allowed, "", (), rules)

    def check(cell, errs):
        value = cell
        for coerce_fn in coercers:
            try:
                value = coerce_fn(value)
            except Exception as exc:  # Cerberus files any coercer exception as coercion_failed
                if not (nullable and value is None):
                    errs.append(_error(column, "coercion_failed", coerce, cell, (str(exc),), rules))
                    break
        if value is None:
            if not nullable:
                errs.append(not_nullable)
            for step in none_steps:
                step(value, errs)
            return
        if type_ok is not None and not type_ok(value):
            errs.append(_error(column, "type_error", types, value, (), rules))
            return
        chosen = normal_steps
        if has_empty and isinstance(value, Sized) and len(value) == 0:
            chosen = empty_steps
            if not empty_allowed:
                errs.append(empty_error if value == "" else
                            _error(column, "empty_not_allowed", empty_allowed, value, (), rules))
        for step in chosen:
            step(value, errs)

    return check


def per_thread(make: Callable[[], Any]) -> Callable[[], Any]:
    """``get()`` → this thread's own ``make()``, built on first use. A Cerberus validator keeps
    the document and its errors between ``validate`` and reading them back, and one compiled
    schema serves every upload of the process in several threads at once."""
    local = threading.local()

    def get():
        try:
            return local.value
        except AttributeError:
            local.value = make()
            return local.value

    make()  # a bad schema fails when it is compiled, not on the first row
    return get


def fallback_for_cell(column: str, rules: dict, validator_cls: type) -> FieldCheck:
    """Check one field with a real Cerberus validator holding just that field's rules."""
    schema = {column: rules}
    validator = per_thread(lambda: validator_cls(schema))

    def check(cell, errs):
        v = validator()
        v.validate({column: cell})
        errs.extend(to_row_error(e, schema) for e in v._errors)

    return check
