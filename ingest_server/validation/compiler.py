"""Compile a Cerberus schema once into a fast row checker with Cerberus's exact verdicts.

Stock Cerberus spends most of its time copying the schema and re-validating rule sets per
document. Here each field's rules become a closure once (``fields.compile_field``), and
``bind`` generates one plain Python function per file header that reads cells by index and
inlines the common cases (non-empty text, a short ASCII-digit number) so a valid row costs a
few string tests per column. Verdicts, failing columns and codes are those of
``make_validator_class(extensions)(schema, allow_unknown=...).validate(dict(zip(header, row)))``
mapped through ``codes.to_row_error``; ``tests/test_validation_diff.py`` proves it against
Cerberus itself.

Fields whose rules are not compiled fall back to a Cerberus validator for that field only
(logged once per compiled schema). Nothing here is pickled: each worker process compiles for
itself (``get_compiled`` caches per process).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from collections.abc import Mapping, Sequence
from typing import Any, Callable

from ingest_server.errors import FileRejected

from .codes import to_row_error
from .coercers import JS_WHITESPACE
from .formats import FORMATS
from .definition import Extensions, check_cerberus_schema, make_validator_class
from .fields import (NUMERIC_COERCERS, ROW_RULES, compile_field, fallback_for_cell,
                     per_thread, queued_rules, unsupported_rules)

log = logging.getLogger("ingest_server.validation")

# Longer digit strings take the full path (int() limits, see coercers).
_FAST_DIGITS = 19
_ACCEPTS = {int: {"integer", "number", "float"}, float: {"float", "number"}}
_BLANK_START = frozenset(JS_WHITESPACE)


def _fast_kind(rules: dict, types_mapping: dict) -> str:
    """How ``bind`` may inline a field: "skip", "nonempty", "notblank", "digits", "decimal",
    "format" or "call"."""
    queue = set(queued_rules(rules)) - {"date_format"}
    types = rules.get("type")
    names = [types] if isinstance(types, str) else list(types or ())
    standard = all(n in _STANDARD_TYPES for n in names)
    coerce = rules.get("coerce")
    if coerce == "text" and queue <= {"type"} and standard and (not names or "string" in names):
        # Only a cell that is blank after trimming can fail, and only when not nullable.
        return "skip" if rules.get("nullable") else "notblank"
    if coerce is None and queue <= {"type", "empty"} and standard \
            and (not names or "string" in names):
        return "nonempty" if rules.get("empty", True) is False else "skip"
    if coerce in (None, "text") and "format" in queue and queue <= {"type", "format"} \
            and standard and (not names or "string" in names) and rules["format"] in FORMATS:
        # A text cell whose only rule is its format (a date): it fails only if not of it.
        return "format"
    if isinstance(coerce, str) and coerce in NUMERIC_COERCERS and queue <= {"type", "empty"} \
            and standard and (not names or _ACCEPTS[NUMERIC_COERCERS[coerce]] & set(names)):
        # The float and number coercers also take plain decimals; integer does not.
        return "digits" if coerce == "integer" else "decimal"
    return "call"


_STANDARD_TYPES = frozenset(make_validator_class(None).types_mapping)


@dataclass(frozen=True)
class RowTail:
    """Code run at the end of a bound schema's generated check, in the same function (a cQube
    grammar's key and date checks, ``processing/rowcheck.py``): ``lines`` (statements that may
    read ``row`` and ``errs``), the names they use (``namespace``, prefixed so as not to meet the
    compiler's) and what the function returns (``result``, instead of ``errs``).

    ``seen`` maps a column to the name of a set of values the tail's check found fine, never
    empty: a cell in it passes a rule that only refuses empty text, so that rule is tested on
    the other cells only, and the set lookup is made once, here (``unseen`` tells the tail
    whether some such cell was not in its set; always true when some column of ``seen`` has
    other rules)."""

    lines: tuple[str, ...]
    namespace: dict[str, Any]
    result: str
    seen: tuple[tuple[int, str], ...] = ()


class BoundSchema:
    """A compiled schema bound to one file's header: ``check(row)`` -> ``[(column, code, msg)]``
    (the row checker of the CSV workers, ``csvstream.RowChecker``, wraps it with the plugins);
    bound with a ``RowTail``, ``check`` returns what the tail's ``result`` says."""

    def __init__(self, header: tuple[str, ...], columns: tuple[str, ...],
                 check: Callable[[list[str]], list], source: str) -> None:
        self.header = header
        self.columns = columns  # the columns that are validated, in header order
        self.check = check
        self.source = source  # the generated function, for debugging


class CompiledSchema:
    """A schema compiled once; ``bind(header)`` per file."""

    def __init__(self, schema: Mapping, extensions: Extensions | None,
                 allow_unknown: bool | Mapping) -> None:
        self.schema = dict(schema)
        self.extensions = extensions
        self.allow_unknown = allow_unknown
        self.validator_cls = make_validator_class(extensions)
        self.required = tuple(f for f, r in self.schema.items() if r.get("required") is True)
        self._types = self.validator_cls.types_mapping
        self._plans: dict[str, tuple[str, Any]] = {}
        self.fallbacks: dict[str, list[str]] = {}
        for name, rules in self.schema.items():
            self._plans[name] = self._plan(name, rules, known=True)
        if isinstance(allow_unknown, Mapping):
            self._unknown_bad = unsupported_rules(allow_unknown, extensions, self._types)
            if self._unknown_bad:
                self.fallbacks["<unknown columns>"] = self._unknown_bad
        if self.fallbacks:
            log.warning("schema compiled with Cerberus fallback for %s",
                        "; ".join(f"{f!r} (rules {', '.join(r)})"
                                  for f, r in self.fallbacks.items()))

    def _plan(self, name: str, rules: Mapping, known: bool) -> tuple[str, Any]:
        rules = dict(rules)
        if not known:
            # Cerberus coerces unknown columns with allow_unknown["coerce"] directly, so
            # date_format (bound per schema field by IngestValidator) does not apply to them.
            rules.pop("date_format", None)
        bad = unsupported_rules(rules, self.extensions, self._types)
        if bad:
            if known:
                self.fallbacks[name] = bad
            if known and ROW_RULES & set(rules):
                return "row", None
            return "call", fallback_for_cell(name, rules, self.validator_cls)
        kind = _fast_kind(rules, self._types)
        check = compile_field(name, rules, self.extensions, self._types)
        if kind == "format":
            return kind, (check, FORMATS[rules["format"]])
        return kind, check

    def bind(self, header: Sequence[str], tail: RowTail | None = None) -> BoundSchema:
        """Map the schema onto one file's header; reject missing or unknown columns."""
        header = tuple(header)
        present = set(header)
        missing = [f for f in self.required if f not in present]
        if missing:
            raise FileRejected(f"missing required column(s): {', '.join(missing)}",
                               code="missing_column", columns=missing)
        unknown = [c for c in header if c not in self.schema]
        if unknown and not self.allow_unknown:
            raise FileRejected(f"column(s) not in the spec: {', '.join(unknown)}",
                               code="unknown_column", columns=unknown)
        plans = []
        for index, column in enumerate(header):
            if column in self._plans:
                plans.append((index, column, self._plans[column]))
            elif isinstance(self.allow_unknown, Mapping):
                plans.append((index, column, self._plan(column, self.allow_unknown, known=False)))
        return self._generate(header, plans, tail)

    def _generate(self, header: tuple[str, ...], plans: list, tail: RowTail | None
                  ) -> BoundSchema:
        namespace: dict[str, Any] = dict(tail.namespace) if tail else {}
        lines = ["def check(row):", "    errs = []"]
        seen = dict(tail.seen) if tail else {}
        if seen:
            lines.append("    unseen = False")
        row_columns = []
        for index, column, (kind, fn) in plans:
            if kind == "nonempty" and index in seen:
                namespace[f"F{index}"] = fn
                lines += [f"    if row[{index}] not in {seen.pop(index)}:", "        unseen = True",
                          f"        if not row[{index}]:", f"            F{index}('', errs)"]
                continue
            if kind == "skip":
                continue
            if kind == "row":
                row_columns.append(column)
                continue
            if kind == "format":
                fn, namespace[f"FMT{index}"] = fn
            namespace[f"F{index}"] = fn
            if kind == "nonempty":
                # An empty string is the only way a text cell fails these rules.
                lines += [f"    if not row[{index}]:", f"        F{index}('', errs)"]
            elif kind == "notblank":
                # Blank after trimming means empty or starting with white space; F decides.
                namespace["WS"] = _BLANK_START
                lines += [f"    c = row[{index}]",
                          "    if not c or c[0] in WS:",
                          f"        F{index}(c, errs)"]
            elif kind == "format":
                # Not blank (not empty, no white space first: coerce "text" keeps it as it is)
                # and of the format: no error. Anything else is F's to judge.
                namespace["WS"] = _BLANK_START
                lines += [f"    c = row[{index}]",
                          f"    if not c or c[0] in WS or not FMT{index}(c):",
                          f"        F{index}(c, errs)"]
            elif kind == "digits":
                lines += [f"    c = row[{index}]",
                          f"    if not (c.isdigit() and c.isascii() and len(c) <= {_FAST_DIGITS}):",
                          f"        F{index}(c, errs)"]
            elif kind == "decimal":
                # Also "12.5", "5.", ".5": short plain decimals, always finite floats.
                lines += [f"    c = row[{index}]",
                          "    if not ((c.isdigit() or c.replace('.', '', 1).isdigit())"
                          f" and c.isascii() and len(c) <= {_FAST_DIGITS}):",
                          f"        F{index}(c, errs)"]
            else:
                lines.append(f"    F{index}(row[{index}], errs)")
        if row_columns:
            namespace["ROW"] = self._row_fallback(header, frozenset(row_columns))
            lines.append("    ROW(row, errs)")
        if seen:  # a column with other rules (or none): the tail looks every cell up itself
            lines.append("    unseen = True")
        if tail is not None:
            lines += ["    " + line for line in tail.lines]
        lines.append(f"    return {tail.result if tail else 'errs'}")
        source = "\n".join(lines) + "\n"
        exec(compile(source, "<compiled schema>", "exec"), namespace)  # noqa: S102 - our own code
        columns = tuple(c for _, c, (kind, _) in plans if kind != "skip")
        return BoundSchema(header, tuple(c for c in header if c in columns), namespace["check"],
                          source)

    def _row_fallback(self, header: tuple[str, ...], columns: frozenset) -> Callable:
        schema, allow_unknown, cls = self.schema, self.allow_unknown, self.validator_cls
        validator = per_thread(lambda: cls(schema, allow_unknown=allow_unknown))

        def check(row, errs):
            v = validator()
            v.validate(dict(zip(header, row)))
            for error in v._errors:
                item = to_row_error(error, schema)
                if item[0] in columns:
                    errs.append(item)

        return check


def compile_schema(schema: Mapping, extensions: Extensions | None = None, *,
                   allow_unknown: bool | Mapping = False) -> CompiledSchema:
    """Compile a (checked) Cerberus schema. ``allow_unknown`` is Cerberus's validator option."""
    check_cerberus_schema(schema, extensions)
    return CompiledSchema(schema, extensions, allow_unknown)


_CACHE: OrderedDict = OrderedDict()
_CACHE_SIZE = 256
_CACHE_LOCK = threading.Lock()


def get_compiled(key: str, schema: Mapping, extensions: Extensions | None = None, *,
                 allow_unknown: bool | Mapping = False) -> CompiledSchema:
    """``compile_schema`` cached by ``key`` (e.g. spec kind/name/version), LRU-bounded.

    The key must change whenever the schema does; the extensions are part of the cache key.
    """
    cache_key = (key, extensions, repr(allow_unknown))
    with _CACHE_LOCK:
        compiled = _CACHE.get(cache_key)
        if compiled is not None:
            _CACHE.move_to_end(cache_key)
            return compiled
    compiled = compile_schema(schema, extensions, allow_unknown=allow_unknown)
    with _CACHE_LOCK:
        _CACHE[cache_key] = compiled
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return compiled
