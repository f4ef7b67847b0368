"""A spec's column rules in words, and an example value for each column.

Example values are not made up from the rules alone: candidates are tried through the real row
checker (Cerberus rules, plugin rules and coercers included), so an example row lands.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Callable, Mapping, Sequence

Rules = Mapping[str, Any]
_WORDS = {"string": "text", "integer": "a whole number", "number": "a number",
          "float": "a number", "boolean": "true or false", "date": "a date",
          "datetime": "a date and time"}


def kind_of(rules: Rules) -> str:
    """``text``, ``integer``, ``number``, ``boolean``, ``date`` or ``datetime``."""
    kind = rules.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "string"), "string")
    if rules.get("format") == "date" or kind == "date" or rules.get("date_format"):
        return "datetime" if kind == "datetime" else "date"
    if rules.get("format") == "date-time" or kind == "datetime":
        return "datetime"
    if kind in ("integer", "number", "float", "boolean"):
        return "number" if kind == "float" else kind
    return "text"


def required(rules: Rules) -> bool:
    return bool(rules.get("required"))


def not_blank(rules: Rules) -> bool:
    return rules.get("nullable") is False or rules.get("empty") is False


def allowed(rules: Rules) -> list[str] | None:
    values = rules.get("allowed")
    return [str(v) for v in values] if isinstance(values, (list, tuple)) and values else None


def in_words(rules: Rules) -> str:
    """One column's rules as a sentence for people (the template's "rules" sheet)."""
    kind = kind_of(rules)
    parts = [_WORDS.get(rules.get("type") if kind == "text" else kind, "text")]
    if kind == "date":
        fmt = rules.get("date_format")
        parts[0] += f" ({_human_format(fmt) if fmt else 'yyyy-mm-dd'})"
    values = allowed(rules)
    if values:
        parts.append("one of: " + ", ".join(values))
    if "min" in rules:
        parts.append(f"at least {rules['min']}")
    if "max" in rules:
        parts.append(f"at most {rules['max']}")
    if "minlength" in rules:
        parts.append(f"at least {rules['minlength']} characters")
    if "maxlength" in rules:
        parts.append(f"at most {rules['maxlength']} characters")
    for key in ("pattern", "regex"):
        if key in rules:
            parts.append(f"matching the pattern {rules[key]}")
    if rules.get("format") not in (None, "date", "date-time"):
        parts.append(f"in the {rules['format']} format")
    for key, value in rules.items():
        if key not in _KNOWN and value not in (None, False):
            parts.append(f"{key.replace('_', ' ')}" + ("" if value is True else f": {value}"))
    return "; ".join(parts)


_KNOWN = frozenset({"type", "coerce", "nullable", "empty", "required", "allowed", "min", "max",
                    "minlength", "maxlength", "pattern", "regex", "format", "date_format",
                    "unique", "meta"})


def _human_format(fmt: str) -> str:
    return (fmt.replace("%Y", "yyyy").replace("%y", "yy").replace("%m", "mm")
            .replace("%d", "dd").replace("%H", "HH").replace("%M", "MM").replace("%S", "SS"))


def _candidates(rules: Rules) -> list[str]:
    values = allowed(rules)
    if values:
        return values
    today = date.today()
    kind = kind_of(rules)
    low = rules.get("min")
    if kind == "date" or kind == "datetime":
        layouts = [rules["date_format"]] if rules.get("date_format") else []
        layouts += ["%Y-%m-%d", "%d-%m-%Y", "%d/%m/%Y", "%Y-%m-%d 08:30:00", "%Y-%m-%dT08:30:00"]
        return [today.strftime(f) for f in layouts]
    if kind in ("integer", "number"):
        base = [str(low)] if isinstance(low, (int, float)) else []
        return base + ["10", "1", "0", "1.5", "100"]
    if kind == "boolean":
        return ["true", "false"]
    return ["example", "S1", "KA", "1", "A", today.isoformat(), "example@example.org",
            "https://example.org"]


def example_row(header: Sequence[str], schema: Mapping[str, Rules],
                check: Callable[[list[str]], tuple[list, Any]]) -> list[str]:
    """A row the checker accepts where it can: per column the first candidate without an error
    on that column (a column no candidate satisfies, a pattern say, is left blank)."""
    row = ["" for _ in header]
    for i, name in enumerate(header):
        rules = schema.get(name)
        if not isinstance(rules, Mapping):
            continue
        for candidate in _candidates(rules):
            row[i] = candidate
            errors, _ = check(list(row))
            if not any(col == name for col, *_ in errors):
                break
        else:
            row[i] = ""
    return row
