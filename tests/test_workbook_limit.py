""".xlsx sheets stream (no size limit, memory for a row, not the sheet); the formats
python-calamine decodes whole (.xls, .xlsb, .ods) are sized first: past
``limits.max_workbook_cells`` the upload is a 413 ``workbook_too_large`` saying to send the
sheet as .xlsx or CSV, nothing written. A value left of the header's first cell is refused
(``cell_outside_table``), never dropped. Real files (tests/data/files and openpyxl-made .xlsx);
production app, real PostgreSQL, local storage."""

from __future__ import annotations

import io
import zipfile

import openpyxl
import pytest

from conftest import make_settings
from ingest_helpers import landed, read_object, register, staged_left, upload
from ingest_server.config import ConfigError
from ingest_server.errors import FileRejected
from ingest_server.templates.infer import infer_spec
from ingest_server.workbook.sheet import SheetCsv
from ingest_server.workbook.size import BINARY_CELL_BYTES, ODS_CELL_BYTES, sheet_size
from files_helpers import FILES, HEADER, spool_left

LIMIT = 60  # cells: attendance.ods (about 139 by its content.xml) and .xls (384) are over it


def rows(n: int, month: int = 1) -> list[list]:
    return [[f"2024-{month:02d}-{i + 1:02d}", f"S{i}", i, f"r{i}", i * 0.5] for i in range(n)]


def xlsx(sheets: dict[str, list[list]], *, write_only: bool = False, skip_columns: int = 0,
         header_row: int = 1) -> bytes:
    book = openpyxl.Workbook(write_only=write_only)
    if not write_only:
        book.remove(book.active)
    for name, data in sheets.items():
        sheet = book.create_sheet(name)
        for _ in range(header_row - 1):
            sheet.append([])
        sheet.append([None] * skip_columns + HEADER)
        for row in data:
            sheet.append(row if len(row) > len(HEADER) else [None] * skip_columns + row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def as_text(data: list[list]) -> list[list[str]]:
    return [HEADER] + [[d, s, str(t), r, f"{v:g}"] for d, s, t, r, v in data]


@pytest.fixture
def settings(tmp_path, clean_db):
    return make_settings(tmp_path, clean_db, limits={"max_workbook_cells": LIMIT})


async def uploads_of(client, headers) -> list[dict]:
    resp = await client.get("/api/ingestion/uploads", headers=headers)
    assert resp.status == 200
    return (await resp.json())["uploads"]


@pytest.mark.parametrize("name, cells, how", [
    ("attendance.ods", None, "content.xml size"), ("attendance.xls", None, "file size")])
async def test_a_sheet_read_whole_over_the_limit_is_413(client, auth_headers, name, cells, how):
    await register(client, auth_headers)
    status, body = await upload(client, auth_headers, (FILES / name).read_bytes(),
                                filename=name)
    assert (status, body["error"]["code"]) == (413, "workbook_too_large"), body
    message = body["error"]["message"]
    kind = name.rsplit(".", 1)[1]
    size = sheet_size(FILES / name, kind, "Attendance")
    assert f"'Attendance' has about {size.cells:,} cells (estimated from its {how})" in message
    assert "at most 60 cells" in message and "limits.max_workbook_cells" in message
    assert ".xlsx sheets stream" in message and "as .xlsx or CSV" in message
    details = dict(body["error"]["details"])
    assert details.pop("upload_id")
    assert details == {"workbook": kind, "sheet": "Attendance", "cells": size.cells,
                       "rows": None, "estimated": True, "max_cells": 60}
    assert await landed(client) == [] and await staged_left(client) == []
    assert spool_left(client) == []
    (refused,) = await uploads_of(client, auth_headers)
    assert (refused["status"], refused["error"]["code"]) == ("rejected", "workbook_too_large")


async def test_an_xlsx_sheet_streams_past_the_limit(client, auth_headers):
    """The same limit does not apply to .xlsx: 31 rows of 5 cells land with a 60-cell limit."""
    await register(client, auth_headers)
    data = rows(30)
    status, body = await upload(client, auth_headers, xlsx({"data": data}), filename="big.xlsx")
    assert status == 200, body
    assert (body["valid_rows"], body["invalid_rows"]) == (30, 0)
    assert await read_object(client, body["objects"]["valid"]) == as_text(data)


async def test_infer_refuses_a_sheet_over_the_limit_and_streams_xlsx(client, auth_headers):
    import aiohttp

    for name, content, want in [("attendance.ods", (FILES / "attendance.ods").read_bytes(), 413),
                                ("big.xlsx", xlsx({"data": rows(30)}), 200)]:
        data = aiohttp.FormData()
        data.add_field("kind", "event")
        data.add_field("file", content, filename=name)
        resp = await client.post("/api/specs/infer", data=data, headers=auth_headers)
        body = await resp.json()
        assert resp.status == want, body
        if want == 413:
            assert body["error"]["code"] == "workbook_too_large"
        else:
            assert body["rows_read"] == 30


async def test_a_table_away_from_a1_starts_at_its_header(client, auth_headers):
    """Header on row 3 from column C (openpyxl's write-only mode: no <dimension>): the table is
    read from C, rows keep their sheet numbers."""
    await register(client, auth_headers)
    data = rows(3)
    data[1][2] = "x"  # sheet row 5
    content = xlsx({"data": data}, write_only=True, skip_columns=2, header_row=3)
    status, body = await upload(client, auth_headers, content, filename="away.xlsx")
    assert status == 200, body
    assert await read_object(client, body["objects"]["valid"]) == as_text([data[0], data[2]])
    assert [e["line"] for e in body["errors_sample"]] == [5]


async def test_a_value_left_of_the_table_is_refused_not_dropped(client, auth_headers):
    await register(client, auth_headers)
    data = rows(40)
    content = xlsx({"data": [*([None, None, *r] for r in data), ["note", None, *rows(1)[0]]]},
                   skip_columns=2)
    status, body = await upload(client, auth_headers, content, filename="left.xlsx")
    assert (status, body["error"]["code"]) == (400, "cell_outside_table"), body
    assert "cell A42 of sheet 'data' holds 'note', left of the table" in body["error"]["message"]
    assert "header starts in column C" in body["error"]["message"]
    assert body["error"]["details"]["cell"] == "A42"
    assert await landed(client) == [] and await staged_left(client) == []
    assert spool_left(client) == []


def damaged_at_the_end(n: int) -> bytes:
    """An .xlsx whose sheet XML breaks after ``n`` good rows: a reader of the whole sheet fails
    before the first row; a streaming one gives the rows before the damage."""
    good = io.BytesIO(xlsx({"data": rows(n)}))
    out = io.BytesIO()
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(b"</sheetData>", b'<row r="99999"><c r="A99999"><v>1</v>'
                                    b"</row></sheetData>")
            dst.writestr(info.filename, data)
    return out.getvalue()


def test_an_xlsx_sheet_is_read_as_it_streams(tmp_path):
    path = tmp_path / "damaged.xlsx"
    path.write_bytes(damaged_at_the_end(5000))
    book = SheetCsv.open(path, "xlsx", None, {})
    try:
        assert book.header == HEADER
        pieces = book.pieces(piece_bytes=4096)
        first = next(pieces)  # rows are there before the damage is reached
        assert first.startswith(b"date,school_id,") and first.count(b"\n") > 50
        with pytest.raises(FileRejected) as damaged:
            for _ in pieces:
                pass
        assert damaged.value.code == "workbook_unreadable"
    finally:
        book.close()


async def test_damage_found_mid_sheet_leaves_nothing(client, auth_headers):
    await register(client, auth_headers)
    status, body = await upload(client, auth_headers, damaged_at_the_end(20000),
                                filename="damaged.xlsx")
    assert (status, body["error"]["code"]) == (400, "workbook_unreadable"), body
    assert await landed(client) == [] and await staged_left(client) == []
    assert spool_left(client) == []


def test_the_limit_is_validated(tmp_path):
    with pytest.raises(ConfigError, match="limits.max_workbook_cells"):
        make_settings(tmp_path, "postgresql://x", limits={"max_workbook_cells": 0})


def test_sizes_are_estimated_from_bytes(tmp_path):
    ods = sheet_size(FILES / "attendance.ods", "ods", "Attendance")
    with zipfile.ZipFile(FILES / "attendance.ods") as archive:
        content = archive.getinfo("content.xml").file_size
    assert (ods.cells, ods.how) == (content // ODS_CELL_BYTES, "content.xml size")
    xls = sheet_size(FILES / "attendance.xls", "xls", "Attendance")
    assert (xls.cells, xls.how) == (
        (FILES / "attendance.xls").stat().st_size // BINARY_CELL_BYTES, "file size")
    with pytest.raises(FileRejected) as refused:
        infer_spec(FILES / "attendance.xls", "xls", name="w", max_cells=100)
    assert refused.value.code == "workbook_too_large"
    assert infer_spec(FILES / "attendance.xls", "xls", name="w",
                      max_cells=xls.cells)["rows_read"] == 5


def test_column_names():
    from ingest_server.workbook.sheet import column_name

    assert [column_name(i) for i in (0, 25, 26, 701, 702, 16383)] == [
        "A", "Z", "AA", "ZZ", "AAA", "XFD"]
