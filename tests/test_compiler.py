"""The compiled engine: binding a header, the row contract, fallback, caching, plugins."""

from __future__ import annotations

import logging
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import pytest

from ingest_server.errors import FileRejected
from ingest_server.validation import (Extensions, compile_schema, get_compiled,
                                      translate_cqube_spec)
from ingest_server.validation.compiler import RowTail

BENCH = {
    "program": "bench",
    "input": {"type": "object", "properties": {
        "date": {"type": "string", "shouldnotnull": True},
        "grade": {"type": "number", "shouldnotnull": True},
        "total": {"type": "number"},
        "remarks": {"type": "string"}},
        "required": ["date", "grade", "total"]},
}


@pytest.fixture
def compiled():
    return compile_schema(translate_cqube_spec(BENCH))


def test_valid_and_invalid_rows(compiled):
    checker = compiled.bind(["remarks", "total", "grade", "date"])
    assert checker.check(["", "", "3", "2023-01-01"]) == []
    assert checker.check(["ok", " 12.5 ", "+4", "x"]) == []
    assert sorted(checker.check(["", "n/a", "", " \t"])) == [
        # shouldnotnull is one idea with one code, for text and numbers alike
        ("date", "not_nullable", "a value is required but the cell is blank"),
        ("grade", "not_nullable", "a value is required but the cell is blank"),
        ("total", "type_error", "expected a number, got 'n/a'"),
    ]
    assert checker.check(["", "", "1", "\u3000"]) == [
        ("date", "not_nullable", "a value is required but the cell is blank")]
    assert checker.check(["", "", "1", " x "]) == []
    assert checker.header == ("remarks", "total", "grade", "date")
    assert set(checker.columns) == {"total", "grade", "date"}  # remarks can never fail


@pytest.mark.parametrize("cell", ["NaN", "inf", "1_000", "\u0661", "0x1", "1e999", "1,5", "\xa05"])
def test_numbers_we_do_not_accept(compiled, cell):
    checker = compiled.bind(["date", "grade", "total"])
    assert [e[:2] for e in checker.check(["d", "1", cell])] == [("total", "type_error")]


def test_missing_columns_all_reported_at_once(compiled):
    with pytest.raises(FileRejected) as info:
        compiled.bind(["remarks"])
    assert info.value.code == "missing_column"
    assert info.value.details == {"columns": ["date", "grade", "total"]}


def test_unknown_columns_rejected_unless_allowed(compiled):
    with pytest.raises(FileRejected) as info:
        compiled.bind(["date", "grade", "total", "x", "y"])
    assert info.value.code == "unknown_column" and info.value.details == {"columns": ["x", "y"]}
    schema = translate_cqube_spec(BENCH)
    loose = compile_schema(schema, allow_unknown=True)
    assert loose.allow_unknown is True
    assert loose.bind(["x", "date", "grade", "total"]).check(["?", "d", "1", ""]) == []
    typed = compile_schema(schema, allow_unknown={"type": "integer", "coerce": "integer"})
    checker = typed.bind(["x", "date", "grade", "total"])
    assert checker.check(["7", "d", "1", ""]) == []
    assert [e[:2] for e in checker.check(["7.5", "d", "1", ""])] == [("x", "type_error")]


def test_optional_column_may_be_absent():
    compiled = compile_schema({"a": {"type": "string", "required": True},
                               "b": {"type": "integer", "coerce": "integer"}})
    assert compiled.bind(["a"]).check(["x"]) == []


def test_date_format_rule():
    compiled = compile_schema({"d": {"type": "date", "coerce": "date", "date_format": "%d-%m-%Y",
                                     "min": date(2023, 1, 1)}})
    checker = compiled.bind(["d"])
    assert checker.check(["05-01-2023"]) == []
    assert [e[1] for e in checker.check(["2023-01-05"])] == ["type_error"]
    assert checker.check(["2023-01-05"])[0][2] == "expected a date (%d-%m-%Y), got '2023-01-05'"
    assert [e[1] for e in checker.check(["31-12-2022"])] == ["min_value"]


def test_several_errors_on_one_field_are_all_reported():
    checker = compile_schema({"a": {"type": "string", "minlength": 3, "regex": "[0-9]+",
                                    "allowed": ["123", "4567"]}}).bind(["a"])
    assert sorted(e[1] for e in checker.check(["ab"])) == ["min_length", "not_allowed",
                                                          "regex_mismatch"]


def test_plugin_functions_are_called_directly():
    calls = []

    def even(constraint, value):
        calls.append(value)
        return None if value % 2 == 0 else f"{value} is odd"

    ext = Extensions(rules={"even": (even, {"type": "boolean"})},
                     types={"upper": lambda v: isinstance(v, str) and v.isupper()},
                     coercers={"upper": lambda v: v.upper()})
    compiled = compile_schema({"n": {"type": "integer", "coerce": "integer", "even": True},
                               "s": {"type": "upper", "coerce": "upper"}}, ext)
    checker = compiled.bind(["n", "s"])
    assert checker.check(["4", "abc"]) == []
    assert checker.check(["3", "abc"]) == [("n", "custom:even", "3 is odd")]
    assert calls == [4, 3]
    assert compiled.fallbacks == {}


def test_fallback_is_logged_once_per_schema(caplog):
    schema = {"a": {"type": "string", "oneof": [{"regex": "[0-9]+"}, {"maxlength": 1}]},
              "b": {"type": "string", "dependencies": ["a"]}}
    with caplog.at_level(logging.WARNING, logger="ingest_server.validation"):
        compiled = get_compiled("test-fallback-v1", schema)
        assert get_compiled("test-fallback-v1", schema) is compiled
        compiled.bind(["b", "a"])
        checker = compiled.bind(["a", "b"])
    assert len(caplog.records) == 1 and "'a' (rules oneof)" in caplog.records[0].getMessage()
    assert compiled.fallbacks == {"a": ["oneof"], "b": ["dependencies"]}
    assert [e[:2] for e in checker.check(["1", "x"])] == [("a", "oneof_mismatch")]  # both match
    assert checker.check(["x", "y"]) == []
    assert [e[:2] for e in checker.check(["12", "x"])] == []  # matches regex only: oneof ok
    assert [e[:2] for e in checker.check(["", "x"])] == []


def test_get_compiled_key_includes_extensions():
    schema = {"a": {"type": "string"}}
    ext = Extensions(types={"upper": str.isupper})
    assert get_compiled("k", schema) is get_compiled("k", schema)
    assert get_compiled("k", schema, ext) is not get_compiled("k", schema)


def test_a_tail_runs_in_the_generated_check_with_its_seen_sets():
    """``RowTail``: a column's set lookup replaces the spec's test for empty text (a cell in the
    set is never empty); the spec's verdicts stay; ``unseen`` says whether a cell was missed."""
    compiled = compile_schema({"a": {"type": "string", "empty": False},
                               "b": {"type": "string", "empty": False},
                               "n": {"type": "integer", "coerce": "integer"}})
    known = {"x", "y"}
    tail = RowTail(("misses = [unseen]",), {"T_known": known}, "(errs, row, misses[0])",
                   seen=((0, "T_known"), (1, "T_known")))
    checker = compiled.bind(["a", "b", "n"], tail)
    assert checker.check(["x", "y", "1"]) == ([], ["x", "y", "1"], False)
    assert checker.check(["x", "z", "1"]) == ([], ["x", "z", "1"], True)
    assert checker.check(["", "y", "q"]) == (compiled.bind(["a", "b", "n"]).check(["", "y", "q"]),
                                             ["", "y", "q"], True)
    # A seen column with other rules than "not empty": every row is unseen, the rules all kept.
    other = RowTail(("misses = [unseen]",), {"T_known": {"7"}}, "(errs, misses[0])",
                    seen=((2, "T_known"),))
    assert compiled.bind(["a", "b", "n"], other).check(["x", "y", "7"]) == ([], True)
    assert compiled.bind(["a", "b", "n"], other).check(["x", "y", "q"])[0] == \
        compiled.bind(["a", "b", "n"]).check(["x", "y", "q"]) != []


def test_checker_is_cheap_on_valid_rows(compiled):
    checker = compiled.bind(["date", "grade", "total", "remarks"])
    # no call before the first inlined test
    assert "F" not in checker.source.split("if not c or c[0] in WS:")[0]
    row = ["2023-01-01", "3", "42", "ok"]
    assert all(checker.check(row) == [] for _ in range(1000))


def test_a_text_cell_with_only_a_format_is_tested_inline():
    """{type string, coerce text, format}: the format's own test in the generated check; the
    field's full check (coercion, blank, the error) only for a cell that fails it."""
    compiled = compile_schema({"d": {"type": "string", "coerce": "text", "format": "date",
                                     "nullable": False}})
    checker = compiled.bind(["d"])
    assert "FMT0(c)" in checker.source
    assert checker.check(["2024-02-29"]) == []
    assert [e[1] for e in checker.check(["2023-02-29"])] == ["format_mismatch"]
    assert [e[1] for e in checker.check(["   "])] == ["not_nullable"]


def test_cerberus_fallbacks_are_safe_from_many_threads():
    """One compiled schema serves every upload of a process, several in threads at once: the
    Cerberus validators of the fallback (per cell and per row) must not mix up rows."""
    schema = {"a": {"type": "string", "oneof": [{"regex": "[0-9]+"}, {"maxlength": 1}]},
              "b": {"type": "string", "dependencies": ["a"], "allowed": ["x", "y"]}}
    checker = compile_schema(schema).bind(["a", "b"])
    rows = [["12", "x"], ["1", "x"], ["x", "y"], ["123", "z"], ["1", "q"]] * 200
    want = [checker.check(r) for r in rows]
    assert {len(w) for w in want} == {0, 1, 2}

    def run() -> list:
        return [checker.check(r) for r in rows]

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda _: run(), range(8)))
    finally:
        sys.setswitchinterval(interval)
    assert all(got == want for got in results)
