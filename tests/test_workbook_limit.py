"""A workbook sheet is sized before calamine decodes it (it holds the whole sheet in memory):
past ``limits.max_workbook_cells`` the upload is a 413 ``workbook_too_large`` saying to send the
sheet as CSV, nothing written. Real .xlsx files made here with openpyxl; production app, real
PostgreSQL, local storage."""

from __future__ import annotations

import io
from pathlib import Path

import openpyxl
import pytest

from conftest import make_settings
from ingest_helpers import landed, read_object, register, staged_left, upload
from ingest_server.config import ConfigError
from ingest_server.templates.infer import infer_spec
from ingest_server.workbook.size import XML_CELL_BYTES, sheet_size
from test_files import HEADER, spool_left

LIMIT = 60  # cells: a header and 11 rows of 5 columns fit, 12 rows do not


def rows(n: int, month: int = 1) -> list[list]:
    return [[f"2024-{month:02d}-{i + 1:02d}", f"S{i}", i, f"r{i}", i * 0.5] for i in range(n)]


def xlsx(sheets: dict[str, list[list]], *, write_only: bool = False) -> bytes:
    book = openpyxl.Workbook(write_only=write_only)
    if not write_only:
        book.remove(book.active)
    for name, data in sheets.items():
        sheet = book.create_sheet(name)
        sheet.append(HEADER)
        for row in data:
            sheet.append(row)
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


async def test_a_sheet_over_the_limit_is_413_and_nothing_lands(client, auth_headers):
    await register(client, auth_headers)
    status, body = await upload(client, auth_headers, xlsx({"data": rows(12)}),
                                filename="big.xlsx")
    assert (status, body["error"]["code"]) == (413, "workbook_too_large"), body
    message = body["error"]["message"]
    assert "'data' has 65 cells (13 rows)" in message and "at most 60 cells" in message
    assert "limits.max_workbook_cells" in message and "as CSV" in message
    details = dict(body["error"]["details"])
    assert details.pop("upload_id")
    assert details == {"workbook": "xlsx", "sheet": "data", "cells": 65, "rows": 13,
                       "estimated": False, "max_cells": 60}
    assert await landed(client) == [] and await staged_left(client) == []
    assert spool_left(client) == []
    # recorded as other file-level refusals are (a sheet that does not exist, here)
    status, other = await upload(client, auth_headers, xlsx({"data": rows(2)}),
                                 filename="small.xlsx", params={"sheet": "nope"})
    assert (status, other["error"]["code"]) == (400, "sheet_not_found")
    refused, missing = sorted(await uploads_of(client, auth_headers),
                              key=lambda u: u["filename"])
    assert refused["filename"] == "big.xlsx" and missing["filename"] == "small.xlsx"
    assert refused["status"] == missing["status"] == "rejected", refused
    assert refused["error"]["code"] == "workbook_too_large", refused


async def test_a_sheet_under_the_limit_lands(client, auth_headers):
    await register(client, auth_headers)
    data = rows(11)
    status, body = await upload(client, auth_headers, xlsx({"data": data}), filename="ok.xlsx")
    assert status == 200, body
    assert (body["valid_rows"], body["invalid_rows"]) == (11, 0)
    assert await read_object(client, body["objects"]["valid"]) == as_text(data)


async def test_the_chosen_sheet_is_sized_not_the_workbook(client, auth_headers):
    """Two sheets: the large one is refused by name, the small one lands."""
    await register(client, auth_headers)
    content = xlsx({"big": rows(30), "small": rows(3, month=2)})
    status, body = await upload(client, auth_headers, content, filename="two.xlsx",
                                params={"sheet": "big"})
    assert (status, body["error"]["code"]) == (413, "workbook_too_large"), body
    assert body["error"]["details"]["rows"] == 31
    status, body = await upload(client, auth_headers, content, filename="two.xlsx",
                                params={"sheet": "small"})
    assert status == 200, body
    assert await read_object(client, body["objects"]["valid"]) == as_text(rows(3, month=2))


async def test_infer_refuses_a_sheet_over_the_limit(client, auth_headers):
    import aiohttp

    data = aiohttp.FormData()
    data.add_field("kind", "event")
    data.add_field("file", xlsx({"data": rows(12)}), filename="big.xlsx")
    resp = await client.post("/api/specs/infer", data=data, headers=auth_headers)
    body = await resp.json()
    assert (resp.status, body["error"]["code"]) == (413, "workbook_too_large"), body


def test_sizes_from_the_dimension_element(tmp_path):
    path = tmp_path / "b.xlsx"
    path.write_bytes(xlsx({"a": rows(4), "b": rows(9)}))
    assert (sheet_size(path, "xlsx", "a").cells, sheet_size(path, "xlsx", "a").rows) == (25, 5)
    size = sheet_size(path, "xlsx", "b")
    assert (size.cells, size.rows, size.how) == (50, 10, "dimension")


def test_without_a_dimension_the_xml_size_estimates(tmp_path):
    """openpyxl's write-only mode writes no <dimension>: the member's uncompressed size says."""
    import zipfile

    path = tmp_path / "w.xlsx"
    path.write_bytes(xlsx({"data": rows(200)}, write_only=True))
    with zipfile.ZipFile(path) as archive:
        assert b"<dimension" not in archive.read("xl/worksheets/sheet1.xml")
        member = archive.getinfo("xl/worksheets/sheet1.xml").file_size
    size = sheet_size(path, "xlsx", "data")
    assert (size.cells, size.rows) == (member // XML_CELL_BYTES, None)
    assert 201 * 5 <= size.cells <= 201 * 5 * 3  # at least the real cells, not wildly more
    with pytest.raises(Exception) as refused:
        infer_spec(path, "xlsx", name="w", max_cells=1000)
    assert refused.value.code == "workbook_too_large"
    assert "estimated from its xl/worksheets/sheet1.xml size" in refused.value.message
    assert infer_spec(path, "xlsx", name="w", max_cells=size.cells)["rows_read"] \
        == 200


def test_the_limit_is_validated(tmp_path):
    with pytest.raises(ConfigError, match="limits.max_workbook_cells"):
        make_settings(tmp_path, "postgresql://x", limits={"max_workbook_cells": 0})


def test_ods_and_binary_formats_estimate_from_bytes():
    files = Path(__file__).parent / "data" / "files"
    # LibreOffice's .xlsx names its sheets relative to xl/ (openpyxl's: from the root)
    calc = sheet_size(files / "attendance.xlsx", "xlsx", "Attendance")
    assert (calc.cells, calc.rows, calc.how) == (35, 7, "dimension")
    ods = sheet_size(files / "attendance.ods", "ods", "Attendance")
    xls = sheet_size(files / "attendance.xls", "xls", "Attendance")
    assert ods.how == "content.xml size" and ods.cells >= 35 and ods.rows is None
    assert xls.how == "file size" and xls.cells == (files / "attendance.xls").stat().st_size // 16
