"""Workbook cells as CSV text, container sniffing and the encoding guess: pure code, no server."""

from __future__ import annotations

import zipfile
from datetime import date, datetime, time, timedelta
from pathlib import Path

import pytest

from ingest_server.csvstream.delimiter import choose_delimiter, parse_delimiter
from ingest_server.csvstream.guess import guess_encoding
from ingest_server.errors import BadRequest, FileRejected
from ingest_server.workbook.cells import cell_text, column_layout, date_layouts
from ingest_server.workbook.sniff import sniff, zip_kind

FILES = Path(__file__).parent / "data" / "files"


@pytest.mark.parametrize("value, text", [
    (12.0, "12"), (-3.0, "-3"), (7.5, "7.5"), (0.1 + 0.2, "0.3"), (1e20, "1e+20"),
    (12, "12"), (True, "true"), (False, "false"), ("x", "x"), ("", ""), (None, ""),
    (date(2024, 2, 29), "2024-02-29"), (datetime(2024, 1, 5), "2024-01-05"),
    (datetime(2024, 1, 5, 10, 30), "2024-01-05 10:30:00"), (time(8, 5), "08:05:00"),
    (timedelta(hours=26, minutes=3), "26:03:00"), ("#DIV/0!", "#DIV/0!")])
def test_cell_text(value, text):
    assert cell_text(value) == text


def dmy(value):
    return datetime.strptime(value, "%d-%m-%Y").date()


def test_date_layout_follows_the_spec():
    schema = {"d1": {"type": "date", "coerce": "date", "date_format": "%d/%m/%Y"},
              "d2": {"type": "date", "coerce": "dmy"},
              "d3": {"type": "datetime", "coerce": "datetime"},
              "d4": {"type": "string", "format": "date-time"},
              "d5": {"type": "string"}}
    layouts = date_layouts(["d1", "d2", "d3", "d4", "d5", "other"], schema, {"dmy": dmy})
    day, moment = date(2024, 1, 5), datetime(2024, 1, 5, 0, 0)
    assert [cell_text(day, lay) for lay in layouts] == [
        "05/01/2024", "05-01-2024", "2024-01-05", "2024-01-05", "2024-01-05", "2024-01-05"]
    assert [cell_text(moment, lay) for lay in layouts] == [
        "05/01/2024", "05-01-2024", "2024-01-05 00:00:00", "2024-01-05T00:00:00", "2024-01-05",
        "2024-01-05"]
    assert column_layout({"coerce": "dmy"}, {"dmy": lambda v: 1 / 0}) == ("%Y-%m-%d", None)


def test_sniff_by_bytes(tmp_path):
    assert sniff((FILES / "attendance.xlsx").read_bytes()[:8]) == "zip"
    assert sniff((FILES / "attendance.ods").read_bytes()[:8]) == "zip"
    assert sniff((FILES / "attendance.xls").read_bytes()[:8]) == "ole2"
    assert sniff(b"date,school_id\n") is None
    assert zip_kind(FILES / "attendance.xlsx") == "xlsx"
    assert zip_kind(FILES / "attendance.ods") == "ods"
    plain = tmp_path / "plain.zip"
    with zipfile.ZipFile(plain, "w") as z:
        z.writestr("data.csv", "a,b\n")
    assert zip_kind(plain) is None
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04garbage")
    assert zip_kind(tmp_path / "broken.zip") is None


@pytest.mark.parametrize("text, encoding, guess", [
    ("date,name\n2024-01-01,Café\n2024-01-02,Müller straße\n", "cp1252", "cp1252"),
    ("a,b\n1,é\n", "cp1252", "cp1252"),
    ("x,y\n1,Привет мир\n2,Москва\n", "cp1251", "cp1251")])
def test_guess_encoding(text, encoding, guess):
    assert guess_encoding(text.encode(encoding)) == guess


SPEC = {"date": {"required": True}, "school_id": {"required": True}, "n": {}}


@pytest.mark.parametrize("header, want", [
    (b"date,school_id,n\r\n", (",", False)), (b"date;school_id;n\r\n", (";", True)),
    (b"date\tschool_id\tn\r\n", ("\t", True)), (b"date|school_id\r\n", ("|", True)),
    (b"date,n\r\n", (",", False)),  # not the spec's columns: bind says what is missing
    (b"a,b;c\r\n", (",", False))])
def test_choose_delimiter(header, want):
    assert choose_delimiter(header, SPEC) == want


def test_one_long_cell_names_its_delimiter():
    with pytest.raises(FileRejected) as e:
        choose_delimiter(b"day\tschool\r\n", SPEC)
    assert e.value.code == "wrong_delimiter" and "tab" in e.value.message
    assert e.value.details["missing"] == ["date", "school_id"]


def test_parse_delimiter():
    assert [parse_delimiter(v) for v in (",", ";", "\t", "|", "tab", "\\t", "Semicolon",
                                         None, "")] == [",", ";", "\t", "|", "\t", "\t", ";",
                                                        None, None]
    with pytest.raises(BadRequest):
        parse_delimiter(":")
