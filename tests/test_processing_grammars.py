"""cQube grammar files parsed as cQube reads them; unusable ones name the row and the cell."""

from pathlib import Path

import pytest

from ingest_server.errors import ERROR_CODES
from ingest_server.processing.grammars import (
    DimensionColumn, EventColumn, GrammarInvalid, check_event_links, parse_dimension_grammar,
    parse_event_grammar, parse_program)

VSK = Path(__file__).parent / "data" / "cqube-vsk"


def dim_file(name):
    return (VSK / "dimensions" / f"{name}-dimension.grammar.csv").read_text()


def test_school_dimension_as_cqube_ships_it():
    g = parse_dimension_grammar("school", dim_file("school"))
    assert g.name == "school"
    assert len(g.columns) == 14
    assert g.columns[0] == DimensionColumn("school_id", "string", pk=False, index=True)
    assert g.columns[-1] == DimensionColumn("longitude", "number", pk=False, index=False)
    assert (g.pk, g.indexes, g.key_column) == (None, ("school_id",), "school_id")
    assert g.unique_columns == ("school_id",)


def test_pk_wins_as_key_column_and_trailing_newline_crlf_bom_are_ignored():
    g = parse_dimension_grammar("academicyear", "\ufeffPK,Index\r\nstring,string\r\n"
                                "academicyear_id,academicyear\r\n\r\n")
    assert (g.pk, g.indexes, g.key_column) == ("academicyear_id", ("academicyear",),
                                               "academicyear_id")
    assert g.unique_columns == ("academicyear_id", "academicyear")


def test_teacherspresent_event_grammar():
    text = (VSK / "programs/school-attendance/teacherspresent-event.grammar.csv").read_text()
    g = parse_event_grammar("school-attendance", "teacherspresent", text)
    assert g.time_column == EventColumn(None, None, "date", "date", "timeDimension")
    assert [c.dimension for c in g.dimension_columns] == [
        "district", "block", "cluster", "school", "schoolcategory", "schoolmanagement",
        "statecategory", "grade"]
    assert g.dimension_columns[3] == EventColumn("school", "school_id", "string", "school_id",
                                                 "dimension")
    assert g.metric == EventColumn(None, None, "integer", "teachers_marked_present", "metric")


def test_mixed_case_names_as_in_telemetry():
    text = (VSK / "programs/telemetry/pageNameCount-event.grammar.csv").read_text()
    g = parse_event_grammar("telemetry", "pageNameCount", text)
    assert [c.name for c in g.columns] == ["date", "pageName", "pageEvent", "pageCount"]


def test_no_time_dimension_when_column_0_is_not_one():
    g = parse_event_grammar("nas", "performance", "state,\nstate_id,\nstring,integer\n"
                            "state_id,performance\ndimension,metric\n")
    assert g.time_column is None
    assert g.metric.name == "performance"


def invalid(fn, *args):
    with pytest.raises(GrammarInvalid) as e:
        fn(*args)
    assert e.value.status == 400 and e.value.code == "invalid_grammar"
    assert ERROR_CODES[e.value.code] == 400
    return e.value


@pytest.mark.parametrize("text, row, column, words", [
    ("PK,Index\nstring\na,b\n", 2, 2, "row 2 has 1 cells, row 1 has 2"),
    ("PK,Index\nstring,string\na,b,c\n", 3, 3, "row 3 has 3 cells"),
    ("PK,Index\nstring,string\n", 3, None, "has 3 rows, this one has 2"),
    ("", 1, None, "this one has 0"),
    ("PK,Index\nstring,string\na,b\nc,d\n", 4, None, "this one has 4"),
    ("PK,Idx\nstring,string\na,b\n", 1, 2, "unknown flag 'Idx'"),
    ("PK,Index\nstring,float\na,b\n", 2, 2, "unknown type 'float'"),
    ("PK,Index\nstring,string\na,\n", 3, 2, "name is empty"),
    ("PK,Index\nstring,string\na,A\n", 3, 2, "repeats column 1"),
    ("PK,Index\nstring,string\na,b c\n", 3, 2, "'b c' is not a column name"),
    ("PK,PK\nstring,string\na,b\n", 1, 2, "a second PK"),
    (",\nstring,string\na,b\n", 1, None, "no PK or Index"),
    ("PK,\ninteger,string\na,b\n", 2, 1, "key column must be a string"),
    ("PK,\nstring,string\nid,b\n", 3, 1, "'id' is the column cQube adds"),
])
def test_bad_dimension_grammars_name_row_and_cell(text, row, column, words):
    e = invalid(parse_dimension_grammar, "d", text)
    assert (e.row, e.column) == (row, column)
    assert e.details["row"] == row and e.details["column"] == column
    assert words in e.message
    where = f"row {row}, column {column}: " if column else f"row {row}: "
    assert e.message.startswith(where)


EVENT = [",district,", ",district_id,", "date,string,integer", "date,district_id,n",
         "timeDimension,dimension,metric"]


def event_with(row, text):
    rows = list(EVENT)
    rows[row - 1] = text
    return "\n".join(rows)


@pytest.mark.parametrize("row, text, column, words", [
    (5, "timeDimension,dimension,sum", 3, "unknown role 'sum'"),
    (3, "date,varchar,integer", 2, "unknown type 'varchar'"),
    (4, "date,district_id", 3, "row 4 has 2 cells"),
    (1, ",,", 2, "names no dimension"),
    (2, ",,", 2, "names no key column"),
    (2, ",district_code,", 2, "differs from the column name"),
    (1, ",district,state", 3, "a metric column names a dimension"),
    (4, "day,district_id,n", 1, "named 'date'"),
    (5, "dimension,timeDimension,metric", 2, "must be the first column"),
    (3, "date,string,string", 3, "a metric must be integer or number"),
])
def test_bad_event_grammars_name_row_and_cell(row, text, column, words):
    if row == 5 and "dimension,timeDimension" in text:
        e = invalid(parse_event_grammar, "p", "e", "\n".join(
            ["district,,", "district_id,,", "string,date,integer", "district_id,date,n", text]))
    else:
        e = invalid(parse_event_grammar, "p", "e", event_with(row, text))
    assert (e.row, e.column) == (row, column)
    assert words in e.message


def test_event_grammar_without_metric():
    e = invalid(parse_event_grammar, "p", "e", ",district\n,district_id\ndate,string\n"
                "date,district_id\ntimeDimension,dimension\n")
    assert (e.row, e.column) == (5, None) and "no metric" in e.message


def test_event_links_to_registered_unique_dimension_keys():
    district = parse_dimension_grammar("district", dim_file("district"))
    ok = parse_event_grammar("p", "e", "\n".join(EVENT))
    check_event_links(ok, {"district": district})
    e = invalid(check_event_links, ok, {})
    assert (e.row, e.column) == (1, 2) and "dimension 'district' is not registered" in e.message
    not_unique = parse_event_grammar("p", "e", ",district,\n,district_name,\ndate,string,integer\n"
                                     "date,district_name,n\ntimeDimension,dimension,metric")
    e = invalid(check_event_links, not_unique, {"district": district})
    assert (e.row, e.column) == (2, 2) and "not unique in dimension 'district'" in e.message
    missing = parse_event_grammar("p", "e", ",district,\n,dist,\ndate,string,integer\n"
                                  "date,dist,n\ntimeDimension,dimension,metric")
    e = invalid(check_event_links, missing, {"district": district})
    assert (e.row, e.column) == (2, 2) and "not a column of dimension" in e.message


def test_program_from_config_entry_or_api_body():
    p = parse_program("nas", {"namespace": "nas", "dimensions": {
        "whitelisted": ["district,lonas,subject,grade", " state , district,grade"]}})
    assert p.whitelisted == (("district", "lonas", "subject", "grade"),
                             ("state", "district", "grade"))
    assert parse_program("school-attendance", {"namespace": "sch_att", "whitelisted": []}) \
        .namespace == "sch_att"
    assert invalid(parse_program, "x", {"namespace": "a b"}).details["field"] == "namespace"
    assert invalid(parse_program, "x", {"namespace": "a", "whitelisted": "a,b"}) \
        .details["field"] == "whitelisted"
    invalid(parse_program, "../x", {"namespace": "a"})
