"""Differential tests: the compiled engine against Cerberus itself (the definition of valid).

For generated schemas (the supported rules, plugin rules/types/coercers, and a few rules that
fall back to Cerberus) and generated rows of edge values, both must report exactly the same
``(column, code, message)`` errors. Bounded and derandomized so CI runs are repeatable.
"""

from __future__ import annotations


from datetime import date, datetime

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from diff_settings import EXAMPLES, SETTINGS
from ingest_server.validation import Extensions, compile_schema, make_validator_class, to_row_error


def _even(constraint, value):
    if constraint and isinstance(value, int) and value % 2:
        return f"{value} is odd"
    return None


def _nonblank(constraint, value):
    if constraint and isinstance(value, str) and not value.strip():
        return "must not be blank"
    return None


EXT = Extensions(
    rules={"even": (_even, {"type": "boolean"}), "nonblank": (_nonblank, {"type": "boolean"})},
    types={"upper": lambda v: isinstance(v, str) and v.isupper()},
    coercers={"upper": lambda v: v.upper() if isinstance(v, str) else v, "strict_int": int},
)

EDGE = [
    "", " ", "\t", "  \t ", "0", "00", "01", "+1", "-1", "-0", "1", "2", "7", "42", "1e3",
    "1E3", "-2.5e-3", "1.5", ".5", "5.", "1.0", ".", "1..2", "1.2.3", "." + "9" * 18,
    "9" * 17 + ".5", "9" * 400 + ".5", "84.21", "NaN", "nan", "inf", "-Infinity", "1_000",
    "\u0661\u0662\u0663", "\u00b2", " 5 ", "5 ", "\xa05", "0x10", "9" * 19, "9" * 20, "9" * 25,
    "9" * 4301, "1e999", "true", "TRUE", "True", "false", "FALSE", "yes", "No", "YES", "on",
    "off", "t", "f", "y", "n", "2024-02-29", "2023-02-29", "0001-01-01", "9999-12-31",
    "0000-01-01", "2023-1-5", "20230105", "2023-01-05", "2023-01-05T10:00:00",
    "2023-01-05 10:00", "2023-01-05T24:00:00", "2023-01-05T10:00:00Z",
    "2023-01-05T10:00:00+05:30", "2023-01-05T10:00:00.1234567", "31-12-2023", "29-02-2023",
    "05/01/2023", "abc", "ABC", "Abc", "n/a", "null", "None", "a" * 30, "x", "b",
]
CELL = st.one_of(
    st.sampled_from(EDGE),
    st.text(max_size=6),
    st.from_regex(r"[+-]?[0-9]{1,4}(\.[0-9]{0,3})?([eE][+-]?[0-9])?", fullmatch=True),
)
KINDS = {  # kind -> (types to pick from, coercers to pick from)
    "string": (["string", ["string", "upper"], "upper"], [None, "upper", "text"]),
    "number": (["number", "float", "integer", ["integer", "string"]], ["number"]),
    "integer": (["integer", "number"], ["integer", "strict_int", ["upper", "integer"]]),
    "float": (["float", "number"], ["float"]),
    "boolean": (["boolean", "integer"], ["boolean"]),
    "date": (["date", "datetime"], ["date"]),
    "datetime": (["datetime", "date"], ["datetime"]),
    "untyped": ([None], [None, "number"]),
}
VALUES = {
    "string": ["abc", "ABC", "x", "", "n/a", "b"],
    "number": [0, 1, 2, 7, -1, 1.5, 1000.0, True],
    "integer": [0, 1, 2, 7, -1, 1000],
    "float": [0.0, 1.5, -2.5, 7],
    "boolean": [True, False],
    "date": [date(2023, 1, 5), date(2024, 2, 29), date(1, 1, 1)],
    "datetime": [datetime(2023, 1, 5, 10), datetime(2023, 1, 5)],
    "untyped": ["abc", 1, 0],
}


@st.composite
def field_rules(draw):
    kind = draw(st.sampled_from(sorted(KINDS)))
    types, coercers = KINDS[kind]
    rules = {}
    typ = draw(st.sampled_from(types))
    if typ is not None and draw(st.integers(0, 9)):
        rules["type"] = typ
    coerce = draw(st.sampled_from(coercers))
    if coerce is not None:
        rules["coerce"] = coerce
    if kind in ("date", "datetime") and draw(st.booleans()):
        rules["date_format"] = draw(st.sampled_from(["%d-%m-%Y", "%Y-%m-%d", "%d/%m/%Y"]))
    pool = VALUES[kind]
    maybe = lambda: draw(st.integers(0, 3)) == 0  # noqa: E731
    for rule in ("nullable", "empty", "required"):
        if draw(st.booleans()):
            rules[rule] = draw(st.booleans())
    if maybe():
        rules["allowed"] = draw(st.lists(st.sampled_from(pool), max_size=3))
    if maybe():
        rules["forbidden"] = draw(st.lists(st.sampled_from(pool), max_size=2))
    if maybe():
        rules["min"] = draw(st.sampled_from(pool))
    if maybe():
        rules["max"] = draw(st.sampled_from(pool))
    if maybe():
        rules["minlength"] = draw(st.integers(0, 4))
    if maybe():
        rules["maxlength"] = draw(st.integers(0, 4))
    if maybe():
        rules["regex"] = draw(st.sampled_from(["[0-9]+", "[A-Z].*", "a|b", ".*", "^x$", "(?i)abc"]))
    if kind in ("number", "integer", "float", "untyped"):  # the JSON Schema numeric keywords
        for rule in ("exclusive_min", "exclusive_max", "multiple_of"):
            if maybe():
                rules[rule] = draw(st.sampled_from([1, 2, 0.5, 0.1, 3] if rule == "multiple_of"
                                                   else [0, 1, -1, 2.5, 7]))
    if maybe():
        rules["pattern"] = draw(st.sampled_from(["[0-9]", "^[A-Z]", "b$", "^$"]))
    if maybe():
        rules["format"] = draw(st.sampled_from(["date", "email", "ipv4", "uuid", "date-time"]))
    if maybe():
        rules["even"] = draw(st.booleans())
    if maybe():
        rules["nonblank"] = draw(st.booleans())
    if draw(st.integers(0, 15)) == 0:  # not compiled: Cerberus checks this field
        rules["oneof"] = [{"regex": "[0-9]+"}, {"maxlength": 1}]
    if draw(st.integers(0, 20)) == 0:  # not compiled and reads other fields: whole-row fallback
        rules["dependencies"] = ["a"]
    return dict(draw(st.permutations(list(rules.items()))))  # rule order matters to Cerberus


@st.composite
def cases(draw, max_fields=4, max_rows=5):
    names = ["a", "b", "c", "d"][: draw(st.integers(1, max_fields))]
    schema = {name: draw(field_rules()) for name in names}
    allow_unknown = draw(st.sampled_from([False, False, True, "rules"]))
    if allow_unknown == "rules":
        allow_unknown = draw(field_rules().filter(lambda r: "dependencies" not in r))
    header = [n for n in names if schema[n].get("required") or draw(st.booleans())]
    if allow_unknown is not False and draw(st.booleans()):
        header.append("x")
    header = draw(st.permutations(header))
    rows = draw(st.lists(st.lists(CELL, min_size=len(header), max_size=len(header)),
                         min_size=1, max_size=max_rows))
    return schema, allow_unknown, header, rows


def assert_same(schema, allow_unknown, header, rows):
    validator = make_validator_class(EXT)(schema, allow_unknown=allow_unknown)
    checker = compile_schema(schema, EXT, allow_unknown=allow_unknown).bind(header)
    for row in rows:
        valid = validator.validate(dict(zip(header, row)))
        expected = sorted(to_row_error(e, schema) for e in validator._errors)
        got = sorted(checker.check(list(row)))
        assert got == expected, (schema, allow_unknown, header, row, checker.source)
        assert valid == (not got)


@SETTINGS
@given(cases())
@example(({"a": {"type": "number", "coerce": "number", "nullable": True}}, False, ["a"],
          [["9" * 4301], ["1e999"], ["NaN"], [" 5 "], ["\u0661"], [""], ["  "]]))
@example(({"a": {"type": "date", "coerce": "date", "date_format": "%d-%m-%Y", "min":
                 date(2023, 1, 1)}}, False, ["a"], [["31-12-2022"], ["2023-01-05"], ["05-01-2023"]]))
@example(({"a": {"coerce": "strict_int", "nullable": True, "type": "integer"}}, False, ["a"],
          [["abc"], [""], ["7"]]))
@example((  # found by this test: Cerberus coerced known fields with allow_unknown's coercer
    {"b": {"coerce": "boolean", "maxlength": 0}, "d": {"type": "string", "min": "abc"}},
    {"coerce": "strict_int", "type": "number", "nullable": False}, ["b", "d", "x"],
    [["t", "1.E3", "7"], ["", "", ""], ["0", "+2.743", "abc"]]))
@example((  # a text cell whose only rule is its format: inlined as a test of the format
    {"a": {"type": "string", "coerce": "text", "format": "date", "nullable": False},
     "b": {"type": "string", "format": "email"}}, False, ["a", "b"],
    [["2024-02-29", "x@y.org"], ["2023-02-29", ""], [" 2024-01-01", " a@b.c"], ["", "  "],
     ["\u00a02024-01-01", "x"], ["2024-01-01 ", "a@b.c "], ["\u0662024-01-01", "@"]]))
def test_compiled_matches_cerberus(case):
    assert_same(*case)


@settings(SETTINGS, max_examples=EXAMPLES * 3 // 4)
@given(field_rules(), st.lists(CELL, min_size=1, max_size=25))
def test_one_field_many_cells(rules, cells):
    assert_same({"a": rules}, False, ["a"], [[c] for c in cells])


@pytest.mark.parametrize("rules", [
    {"type": "string", "empty": False, "required": True},
    {"type": "number", "coerce": "number", "nullable": True},
    {"type": "number", "coerce": "number", "nullable": False},
    {"type": "integer", "coerce": "integer"},
    {"type": "float", "coerce": "float", "nullable": True},
])
def test_fast_paths_match_cerberus_on_every_edge_value(rules):
    assert_same({"a": rules}, False, ["a"], [[c] for c in EDGE])
