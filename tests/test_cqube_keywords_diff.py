"""cQube's JSON Schema keywords, three ways: the compiled engine, Cerberus, and ``jsonschema``.

For generated cQube properties (each keyword AJV applies to a flat row) and generated cells, the
translated schema must give the same errors from the compiled engine as from Cerberus (codes
and messages), and the same failing columns as an independent JSON Schema validator
(``jsonschema``, draft 2019-09, with format checking) applied to the coerced row — a blank cell
of a number column, or of a text column that may be null, is an absent property there, and a
``shouldnotnull`` column present in the file is a required property.

``jsonschema``'s format checkers are not ajv-formats' (its ``email`` only wants an ``@``), so
the three-way test uses ``format: date`` (the same rule in both); every other format is
compared with Cerberus here and with ajv-formats' own verdicts in ``test_ajv_formats``.
"""

from __future__ import annotations


import jsonschema
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from diff_settings import SETTINGS
from ingest_server.validation import (compile_schema, make_validator_class, to_row_error,
                                      translate_cqube_spec)
from ingest_server.validation.coercers import BUILTIN_COERCERS
from ingest_server.validation.formats import FORMATS

NUMBERS = [0, 1, 2, 3, -1, 0.5, 2.5, 10, 1e3, True, "1", "a", None]
CELLS = [
    "", " ", "\t", "\u3000", "\ufeff", "0", "1", "2", "3", "-1", "+1", "0.5", "2.5", "2.50",
    "10", "1e3", "1.0", "7", "100", "1e400", "NaN", "true", "false", "yes", "a", "A", "ab",
    "AB", "abc", "Abc", "x@y.io", "x@y", "2024-02-29", "2023-02-29", "2024-1-05",
    "2024-01-05\n", "1.2.3.4", "::1", " a", "a ", "\u0661", "é", "é", "a\nb",
]
CELL = st.one_of(st.sampled_from(CELLS), st.text(max_size=4),
                 st.from_regex(r"-?[0-9]{1,3}(\.[0-9]{1,2})?", fullmatch=True))
PATTERNS = ["^[A-Z]", "[0-9]$", "a|b", "^$", "x*", "^.{2}$", "(?i)^ab"]


@st.composite
def cqube_property(draw):
    kind = draw(st.sampled_from(["string", "number", "integer", "boolean"]))
    prop: dict = {"type": [kind, "null"] if draw(st.integers(0, 4)) == 0 else kind}
    maybe = lambda: draw(st.integers(0, 3)) == 0  # noqa: E731
    if draw(st.booleans()):
        prop[draw(st.sampled_from(["shouldnotnull", "shouldNotNull"]))] = draw(st.booleans())
    if maybe():
        prop["enum"] = draw(st.lists(st.sampled_from(NUMBERS + ["a", "AB", "", " ", "x@y.io"]),
                                     max_size=4))
    if draw(st.integers(0, 7)) == 0:
        prop["const"] = draw(st.sampled_from([1, "a", True, 2.5]))
    for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        if maybe():
            prop[key] = draw(st.sampled_from([0, 1, 2.5, -1, 3]))
    if maybe():
        prop["multipleOf"] = draw(st.sampled_from([1, 2, 0.5, 0.1, 3, 1e-9]))
    for key in ("minLength", "maxLength"):
        if maybe():
            prop[key] = draw(st.integers(0, 3))
    if maybe():
        prop["pattern"] = draw(st.sampled_from(PATTERNS))
    if maybe():
        prop["format"] = "date"
    if maybe():
        prop["description"] = "an annotation, ignored"
    return prop


@st.composite
def cases(draw):
    names = ["a", "b", "c"][: draw(st.integers(1, 3))]
    props = {n: draw(cqube_property()) for n in names}
    rows = draw(st.lists(st.lists(CELL, min_size=len(names), max_size=len(names)),
                         min_size=1, max_size=6))
    return props, rows


def coerced_row(schema: dict, header: list[str], row: list[str]) -> dict:
    out = {}
    for name, cell in zip(header, row):
        coerce = schema[name].get("coerce")
        value = BUILTIN_COERCERS[coerce](cell) if coerce else cell
        if value is not None:  # a blank cell read as null: no value
            out[name] = value
    return out


def json_schema(props: dict, header: list[str]) -> dict:
    plain = {}
    for name, prop in props.items():
        plain[name] = {k: v for k, v in prop.items()
                       if k not in ("shouldnotnull", "shouldNotNull", "unique")}
    not_null = [n for n, p in props.items()
                if n in header and (p.get("shouldnotnull") or p.get("shouldNotNull"))]
    return {"type": "object", "properties": plain, "required": not_null}


def json_failures(props: dict, header: list[str], row: dict) -> set[str]:
    validator = jsonschema.Draft201909Validator(
        json_schema(props, header), format_checker=jsonschema.Draft201909Validator.FORMAT_CHECKER)
    failed = set()
    for error in validator.iter_errors(row):
        if error.validator == "required":
            failed.update(n for n in error.validator_value if n not in row)
        else:
            failed.add(error.path[0])
    return failed


def assert_three_way(props: dict, rows: list[list[str]]) -> None:
    schema = translate_cqube_spec({"program": "p", "input": {"type": "object",
                                                              "properties": props}})
    header = list(props)
    validator = make_validator_class(None)(schema)
    checker = compile_schema(schema).bind(header)
    for row in rows:
        validator.validate(dict(zip(header, row)))
        expected = sorted(to_row_error(e, schema) for e in validator._errors)
        got = sorted(checker.check(list(row)))
        assert got == expected, (props, row, checker.source)
        independent = json_failures(props, header, coerced_row(schema, header, row))
        assert {column for column, _, _ in got} == independent, (props, schema, row, got)


@SETTINGS
@given(cases())
@example(({"a": {"type": "string", "shouldnotnull": True, "minLength": 2}},
          [[" "], ["\u3000"], ["a"], ["ab"], [""]]))
@example(({"a": {"type": "number", "multipleOf": 0.1, "exclusiveMaximum": 3}},
          [["0.3"], ["0.7"], ["3"], ["2.9"], ["1e400"], [""]]))
@example(({"a": {"type": "boolean", "enum": [1, True]}}, [["1"], ["true"], ["false"]]))
@example(({"a": {"type": ["string", "null"], "format": "date", "enum": ["2024-02-29"]}},
          [[""], ["2024-02-29"], ["2023-02-29"], ["x"]]))
def test_compiled_cerberus_and_jsonschema_agree(case):
    assert_three_way(*case)


# Verdicts of ajv-formats 2.x ("full" mode) on these strings, from its regular expressions.
AJV = {
    "date": (["2024-02-29", "0000-01-01"], ["2023-02-29", "2024-1-05", "2024-01-05 ", "24-01-05"]),
    "time": (["10:00:00", "23:59:60", "10:00:00.5+05:30", "10:00:00Z"],
             ["10:00", "24:00:00", "10:00:00 "]),
    "date-time": (["2024-01-05T10:00:00Z", "2024-01-05 10:00:00+05:30", "2024-01-05t10:00:00z"],
                  ["2024-01-05T10:00:00", "2024-01-05", "2024-02-30T10:00:00Z"]),
    "duration": (["P1D", "PT1H", "P1W", "P1Y2M3DT4H5M6S"], ["P", "PT", "1D", "P1H"]),
    "email": (["a@b.co", "first.last+tag@sub.example.org"], ["a@b", "a b@c.io", "@c.io", "a@"]),
    "hostname": (["example.com", "a", "a-b.c."], ["-a.com", "a_b.com", "a..b", ""]),
    "ipv4": (["1.2.3.4", "255.255.255.255", "01.2.3.4"], ["256.1.1.1", "1.2.3", "1.2.3.4 "]),
    "ipv6": (["::1", "2001:db8::1", "::ffff:1.2.3.4"], ["1::2::3", "12345::", ":1"]),
    "uri": (["http://x.org/a?b#c", "urn:isbn:123", "mailto:a@b.co"], ["abc", "/a/b", "http://x y"]),
    "uuid": (["123e4567-e89b-12d3-a456-426614174000", "urn:uuid:123E4567-E89B-12D3-A456-426614174000"],
             ["123e4567e89b12d3a456426614174000", "123e4567-e89b-12d3-a456-42661417400g"]),
    "regex": (["^a+$", "[0-9]{2}"], ["[a-", "(", "a\\Z"]),
    "json-pointer": (["", "/a/b", "/a~0b"], ["a", "/a~2"]),
}


@pytest.mark.parametrize("fmt", sorted(AJV))
def test_ajv_formats(fmt):
    good, bad = AJV[fmt]
    assert [FORMATS[fmt](v) for v in good] == [True] * len(good)
    assert [FORMATS[fmt](v) for v in bad] == [False] * len(bad)
    schema = {"a": {"type": "string", "format": fmt}}
    checker = compile_schema(schema).bind(["a"])
    validator = make_validator_class(None)(schema)
    for value in good + bad:
        validator.validate({"a": value})
        assert checker.check([value]) == [to_row_error(e, schema) for e in validator._errors]
