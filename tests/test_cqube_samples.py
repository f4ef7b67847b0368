"""Every cQube sample spec (tests/data/cqube/specs, copied from cQube v5.0.5) with real-shaped
files: what cQube lands, we land, with the same meaning (CQUBE.md §2).

A real file's header is the spec's ``required`` list (the correct names; the typos are in
``properties``: ``state_ode``, ``number_of_tudents``, ``State Code``...). Variants: Excel's
trailing empty columns and cells, extra columns the spec does not declare (``latitude``,
``longitude``), whitespace-only cells in ``shouldnotnull`` columns, ``enum``.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from ingest_helpers import read_object, register, upload

SPECS = Path(__file__).resolve().parent / "data" / "cqube" / "specs"
SAMPLES = sorted(p.relative_to(SPECS).as_posix() for p in SPECS.rglob("*.json"))


def load(relative: str) -> dict:
    return json.loads((SPECS / relative).read_text())


def kind_of(relative: str) -> str:
    return "dimension" if relative.startswith("dimensions/") else "event"


def cell(spec: dict, column: str, i: int) -> str:
    prop = spec["input"]["properties"].get(column, {})
    if prop.get("type") == "number":
        return ["12.5", "7", "-3", "0"][i % 4]
    return ["Andhra Pradesh", "Jammu & Kashmir", "S-0" + str(i), "ಕರ್ನಾಟಕ"][i % 4]


def rows_for(spec: dict, n: int = 3) -> tuple[list[str], list[list[str]]]:
    header = list(spec["input"]["required"])
    return header, [[cell(spec, c, i + j) for j, c in enumerate(header)] for i in range(n)]


def to_csv(header: list[str], rows: list[list[str]], tail: str = "") -> bytes:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    text = out.getvalue()
    if tail:  # Excel: the same number of empty cells after every line
        text = "".join(line + tail + "\n" for line in text.splitlines())
    return text.encode()


def fields(relative: str, spec: dict) -> dict:
    if kind_of(relative) == "dimension":
        return {"ingestion_type": "dimension", "ingestion_name": spec["program"]}
    return {"ingestion_type": "event", "ingestion_name": spec["program"],
            "program_name": relative.split("/")[1]}


@pytest.mark.parametrize("relative", SAMPLES)
async def test_every_sample_lands_a_real_shaped_file(client, auth_headers, relative):
    spec = load(relative)
    await register(client, auth_headers, spec, kind=kind_of(relative))
    header, rows = rows_for(spec)
    status, body = await upload(client, auth_headers, to_csv(header, rows),
                                fields=fields(relative, spec))
    assert status == 200, body
    assert (body["status"], body["valid_rows"], body["invalid_rows"]) == ("uploaded", 3, 0), body
    assert await read_object(client, body["objects"]["valid"]) == [header, *rows]
    # Excel's trailing empty columns, and extra columns the spec does not declare
    status, body = await upload(client, auth_headers, to_csv(
        [*header, "latitude_x", "longitude_x"], [[*r, "17.38", "78.48"] for r in rows], ",,,"),
        fields=fields(relative, spec))
    assert status == 200 and body["valid_rows"] == 3, body
    assert [w["code"] for w in body["warnings"]] == ["trailing_empty_columns",
                                                     "undeclared_columns"]
    assert body["warnings"][1]["details"] == {"columns": ["latitude_x", "longitude_x"]}
    assert await read_object(client, body["objects"]["valid"]) == [
        [*header, "latitude_x", "longitude_x"], *[[*r, "17.38", "78.48"] for r in rows]]


async def test_typo_in_properties_does_not_refuse_the_real_file(client, auth_headers):
    """diksha_nishtha-program-started: ``state_ode`` (shouldnotnull) is a typo of
    ``state_code``, which ``required`` lists; cQube lands the file, so do we."""
    spec = load("programs/nishtha/diksha_nishtha-program-started.json")
    await register(client, auth_headers, spec)
    data = ("program_name,state_name,total_courses,total_medium,state_code,latitude,longitude\n"
            "NISHTHA,Kerala,12,3,KL,10.85,76.27\n"
            "NISHTHA, ,12,3,KL,10.85,76.27\n"          # whitespace-only: shouldnotnull fails
            "NISHTHA,Goa,,3,GA,15.29,74.12\n").encode()  # blank number: shouldnotnull fails
    status, body = await upload(client, auth_headers, data, fields={
        "ingestion_type": "event", "ingestion_name": spec["program"], "program_name": "nishtha"})
    assert status == 200, body
    assert (body["valid_rows"], body["invalid_rows"]) == (1, 2)
    assert [(e["line"], e["column"], e["code"]) for e in body["errors_sample"]] == [
        (3, "state_name", "not_nullable"), (4, "total_courses", "not_nullable")]
    assert body["warnings"] == []


async def test_enum_and_closed_specs(client, auth_headers):
    spec = {"program": "grades", "input": {
        "type": "object", "additionalProperties": False,
        "properties": {"grade_id": {"type": "string", "enum": ["G1", "G2"],
                                    "shouldnotnull": True},
                       "grade": {"type": "integer", "minimum": 1, "maximum": 12}},
        "required": ["grade_id"]}}
    await register(client, auth_headers, spec, kind="dimension")
    form = {"ingestion_type": "dimension", "ingestion_name": "grades"}
    status, body = await upload(client, auth_headers, b"grade_id,grade\nG1,1\nG3,2\nG2,13\nG2,\n",
                                fields=form)
    assert status == 200 and (body["valid_rows"], body["invalid_rows"]) == (2, 2), body
    assert [(e["line"], e["column"], e["code"]) for e in body["errors_sample"]] == [
        (3, "grade_id", "not_allowed"), (4, "grade", "max_value")]
    status, body = await upload(client, auth_headers, b"grade_id,extra\nG1,x\n", fields=form)
    assert (status, body["error"]["code"]) == (400, "unknown_column")
    assert body["error"]["details"]["columns"] == ["extra"]
    status, body = await upload(client, auth_headers, b"grade\n1\n", fields=form)
    assert (status, body["error"]["code"]) == (400, "missing_column")  # at once, one error
    assert body["error"]["details"]["columns"] == ["grade_id"]


async def test_value_under_an_unnamed_column_is_a_row_error(client, auth_headers):
    spec = load("dimensions/grade-dimension.json")
    await register(client, auth_headers, spec, kind="dimension")
    form = {"ingestion_type": "dimension", "ingestion_name": "grade"}
    data = b"grade_id,grade,,\nG1,One,,\nG2,Two,oops,\nG3,Three\nG4,Four,,,,\n"
    status, body = await upload(client, auth_headers, data, fields=form)
    assert status == 200, body
    assert (body["valid_rows"], body["invalid_rows"]) == (3, 1)
    assert [(e["line"], e["code"]) for e in body["errors_sample"]] == [
        (3, "value_in_unnamed_column")]
    assert await read_object(client, body["objects"]["valid"]) == [
        ["grade_id", "grade"], ["G1", "One"], ["G3", "Three"], ["G4", "Four"]]
    errors = await read_object(client, body["objects"]["errors"])
    assert errors == [["grade_id", "grade", "_line", "_errors"],
                      ["G2", "Two", "3", "(row): value_in_unnamed_column: column 3 has no name "
                                         "but holds 'oops'"]]
    status, body = await upload(client, auth_headers, b"grade_id,,grade\nG1,,One\n", fields=form)
    assert (status, body["error"]["code"]) == (400, "empty_header_name")


DATA = Path(__file__).resolve().parent / "data" / "cqube" / "data"
# data file -> (spec, form fields, valid rows, rejected lines, warning codes)
REAL = {
    "state-dimension_excel-trailing-columns.csv": (
        "dimensions/state-dimension.json",
        {"ingestion_type": "dimension", "ingestion_name": "state"},
        [["28", "Andhra Pradesh", "15.9129", "79.74"], ["29", "Karnataka", "15.3173", "75.7139"],
         ["32", "Kerala", "10.8505", "76.2711"], ["33", "Tamil Nadu", "", ""]], [],
        ["trailing_empty_columns"]),
    "nas_all-dashboard_extra-columns.csv": (
        "programs/nas/nas_all-dashboard.json",
        {"ingestion_type": "event", "ingestion_name": "nas_all-dashboard", "program_name": "nas"},
        None, [], ["undeclared_columns"]),
    "diksha_nishtha-program-started_spec-typo.csv": (
        "programs/nishtha/diksha_nishtha-program-started.json",
        {"ingestion_type": "event", "ingestion_name": "diksha_nishtha_tot-courses-medium",
         "program_name": "nishtha"}, None, [], []),
    "grade-enum.csv": (
        "../extra-specs/grade-enum.json",
        {"ingestion_type": "dimension", "ingestion_name": "grade-enum"},
        [["G1", "Grade 1"], ["G2", "Grade 2"]], [4], []),
}


@pytest.mark.parametrize("name", sorted(REAL))
async def test_real_shaped_data_files(client, auth_headers, name):
    spec_path, form, valid, rejected, warnings = REAL[name]
    spec = load(spec_path)
    await register(client, auth_headers, spec, kind=form["ingestion_type"])
    data = (DATA / name).read_bytes()
    status, body = await upload(client, auth_headers, data, fields=form, filename=name)
    assert status == 200 and body["status"] == "uploaded", body
    assert [e["line"] for e in body["errors_sample"]] == rejected
    assert [w["code"] for w in body["warnings"]] == warnings
    landed = await read_object(client, body["objects"]["valid"])
    source = list(csv.reader(io.StringIO(data.decode(), newline="")))
    header = [c for c in source[0] if c]
    assert landed[0] == header
    expected = valid if valid is not None else [r[:len(header)] for r in source[1:]]
    assert landed[1:] == expected
