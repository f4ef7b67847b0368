"""National-programme ZIPs end to end: production app, real PostgreSQL, local storage and S3.

Every hostile archive is built here, with zipfile or by patching its headers.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import struct
import threading
import zipfile
from pathlib import Path

import pytest

from conftest import TEST_CLIENT, basic, make_settings
from ingest_helpers import (build_zip as build, landed, notified, read_object, register,
                            staged_left, upload)

BOTH = pytest.mark.parametrize("settings", ["local", "s3"], indirect=True)
ZIP_PATH = "/api/ingestion/national_programs"
PGI_SPEC = (Path(__file__).resolve().parent / "data" / "cqube" / "specs" / "programs" / "pgi"
            / "pgi_all-dashboard.json")
DATE = r"\d{4}-\d\d-\d\d"

STUDENTS = {"program": "studentsattendance", "input": {"type": "object", "properties": {
    "date": {"type": "string", "shouldnotnull": True},
    "school_id": {"type": "string", "shouldnotnull": True},
    "students_present": {"type": "integer", "shouldnotnull": True}},
    "required": ["date", "school_id", "students_present"]}}

# 5 rows, 2 rejected (line 3: type_error, line 5: empty school_id): error rate 40 %.
TEACHERS_CSV = (b"date,school_id,teachers_present,remarks\n"
                b"2024-01-01,S1,10,ok\n"
                b"2024-01-01,S2,abc,bad\n"
                b"2024-01-01,S3,7,\n"
                b"2024-01-01,,5,missing school\n"
                b"2024-01-02,S5,3,\n")
# 4 rows, 1 rejected (line 4): error rate 25 %.
STUDENTS_CSV = (b"date,school_id,students_present\n"
                b"2024-01-01,S1,100\n2024-01-01,S2,90\n2024-01-01,S3,1.5\n2024-01-01,S4,80\n")
CLEAN_STUDENTS_CSV = b"date,school_id,students_present\n2024-01-01,S1,100\n"


# --- building archives ---------------------------------------------------------------------



def patch(data: bytes, *, index: int, flags: int = 0, file_size: int | None = None) -> bytes:
    """Lie in both headers of member ``index``: OR ``flags`` in, replace the declared size."""
    out = bytearray(data)
    eocd = data.rindex(b"PK\x05\x06")
    count, _, central = struct.unpack_from("<HLL", data, eocd + 10)
    for i in range(count):
        n, m, k = struct.unpack_from("<3H", data, central + 28)
        local = struct.unpack_from("<L", data, central + 42)[0]
        if i == index:
            # Flags at 6 (local) / 8 (central), uncompressed size at 22 / 24.
            for base, flag_at, size_at in ((local, 6, 22), (central, 8, 24)):
                old = struct.unpack_from("<H", out, base + flag_at)[0]
                struct.pack_into("<H", out, base + flag_at, old | flags)
                if file_size is not None:
                    struct.pack_into("<L", out, base + size_at, file_size)
            return bytes(out)
        central += 46 + n + m + k
    raise IndexError(index)


def encrypted_flag(entries) -> bytes:
    return patch(build(entries), index=0, flags=0x1)


def halve(data: bytes) -> bytes:
    return data[:len(data) // 2]


def lying_bomb() -> bytes:
    # 20 MB of one byte, declared as 1000 bytes: under the ratio rule's grace size, so only
    # counting what really comes out of the decompressor catches it.
    return patch(build([("teacherspresent.csv", b"0" * (20 << 20))]), index=0, file_size=1000)


def lying_second_member() -> bytes:
    # The first member is good and fully staged before the second shows its lie: the staged
    # objects of the first must go too.
    rows = b"".join(b"2024-01-01,S%d,%d\n" % (i, i % 50) for i in range(40_000))
    real = b"date,school_id,students_present\n" + rows
    return patch(build([("teacherspresent.csv", TEACHERS_CSV), ("studentsattendance.csv", real)]),
                 index=1, file_size=len(real) // 2)


HOSTILE = {
    "bomb_by_ratio": (lambda: build([("teacherspresent.csv", b"0" * (2 << 20))]), "zip_bomb", 400),
    "bomb_lying_headers": (lying_bomb, "zip_size_mismatch", 400),
    "slip_parent": (lambda: build([("../x.csv", TEACHERS_CSV)]), "zip_slip", 400),
    "slip_absolute": (lambda: build([("/etc/x.csv", TEACHERS_CSV)]), "zip_slip", 400),
    "slip_inner_parent": (lambda: build([("a/../../x.csv", TEACHERS_CSV)]), "zip_slip", 400),
    "nested_by_name": (lambda: build([("teacherspresent.csv", TEACHERS_CSV),
                                      ("inner.zip", build([("x.csv", TEACHERS_CSV)]))]),
                       "zip_nested_archive", 400),
    "nested_by_content": (lambda: build([("teacherspresent.csv",
                                          build([("x.csv", TEACHERS_CSV)]))]),
                          "zip_nested_archive", 400),
    "encrypted": (lambda: encrypted_flag([("teacherspresent.csv", TEACHERS_CSV)]),
                  "zip_encrypted", 400),
    "too_many_entries": (lambda: build([(f"m{i}.csv", b"a\n1\n") for i in range(101)]),
                         "zip_too_many_entries", 400),
    "csv_named_zip": (lambda: TEACHERS_CSV, "not_a_zip", 400),
    "zero_bytes": (lambda: b"", "not_a_zip", 400),
    "truncated": (lambda: halve(build([("teacherspresent.csv", TEACHERS_CSV)])),
                  "zip_truncated", 400),
    "empty_zip": (lambda: build([]), "zip_empty", 400),
    "no_csv_inside": (lambda: build([("readme.txt", b"hello")]), "zip_empty", 400),
}


# --- helpers -------------------------------------------------------------------------------

async def post_zip(client, headers, content: bytes, *, filename="national.zip", fields=None,
                   file_first=False, params=None):
    return await upload(client, headers, content, path=ZIP_PATH, fields=fields or {},
                        filename=filename, content_type="application/zip",
                        file_first=file_first, params=params)


async def get_json(client, headers, url, **params):
    resp = await client.get(url, headers=headers, params=params)
    return resp.status, await resp.json()


def spool_files(settings) -> list[Path]:
    spool = Path(settings.server.state_dir) / "spool"
    return sorted(spool.iterdir()) if spool.exists() else []


async def assert_nothing_left(client, settings):
    assert await landed(client) == []
    assert await staged_left(client) == []
    assert spool_files(settings) == []


async def last_upload(client, headers) -> dict:
    status, body = await get_json(client, headers, "/api/ingestion/uploads")
    assert status == 200, body
    return body["uploads"][0]


async def register_both(client, headers):
    await register(client, headers)  # "teacherspresent", from ingest_helpers
    await register(client, headers, STUDENTS)


def by_name(body) -> dict[str, dict]:
    return {m["name"]: m for m in body["members"]}


async def app_client(aiohttp_client, tmp_path, dsn, **limits):
    """A client on an app with its own [limits], and bearer headers for it."""
    from ingest_server.web.app import create_app

    settings = make_settings(tmp_path, dsn, limits=limits)
    client = await aiohttp_client(create_app(settings))
    resp = await client.get("/api/ingestion/generatejwt", headers=basic(*TEST_CLIENT, json=True))
    token = (await resp.json())["token"]
    return client, {"Authorization": f"Bearer {token}"}, settings


# --- the happy paths -----------------------------------------------------------------------

@BOTH
async def test_several_members_land_under_emission(client, auth_headers, settings):
    await register_both(client, auth_headers)
    content = build([("teacherspresent.csv", TEACHERS_CSV),
                     ("data/studentsattendance.csv", STUDENTS_CSV),
                     ("readme.txt", b"notes"), ("unknownprog.csv", b"a,b\n1,2\n")])
    status, body = await post_zip(client, auth_headers, content)
    assert status == 200, body
    uid = body["upload_id"]
    assert body["status"] == "uploaded" and body["route"] == "national_programs"
    assert (body["total_rows"], body["valid_rows"], body["invalid_rows"]) == (9, 6, 3)
    members = by_name(body)
    assert list(members) == ["teacherspresent", "studentsattendance", "readme.txt",
                             "unknownprog"]
    t, s = members["teacherspresent"], members["studentsattendance"]
    assert (t["total_rows"], t["valid_rows"], t["invalid_rows"]) == (5, 3, 2)
    assert (s["total_rows"], s["valid_rows"], s["invalid_rows"]) == (4, 3, 1)
    assert t["error_rate"] == 0.4 and t["spec_version"] == 1 and t["error"] is None
    assert members["readme.txt"]["error"]["code"] == "not_csv"
    assert members["unknownprog"]["error"]["code"] == "spec_not_found"
    assert members["unknownprog"]["objects"] == {"valid": None, "errors": None}
    for name, m in (("teacherspresent", t), ("studentsattendance", s)):
        assert re.fullmatch(rf"emission/{DATE}/{name}\.{uid}\.csv", m["objects"]["valid"])
        assert re.fullmatch(rf"emission-error/{DATE}/{name}\.{uid}\.errors\.csv",
                            m["objects"]["errors"])
    keys = [m["objects"][k] for m in (t, s) for k in ("valid", "errors")]
    assert await landed(client) == sorted(keys)
    assert sorted(body["objects"]["valid"] + body["objects"]["errors"]) == sorted(keys)
    rows = await read_object(client, t["objects"]["valid"])
    assert rows == [["date", "school_id", "teachers_present", "remarks"],
                    ["2024-01-01", "S1", "10", "ok"], ["2024-01-01", "S3", "7", ""],
                    ["2024-01-02", "S5", "3", ""]]
    errors = await read_object(client, s["objects"]["errors"])
    assert errors[1][:3] == ["2024-01-01", "S3", "1.5"] and errors[1][3] == "4"  # _line
    assert {(e["member"], e["line"], e["column"]) for e in body["errors_sample"]} == {
        ("teacherspresent", 3, "teachers_present"), ("teacherspresent", 5, "school_id"),
        ("studentsattendance", 4, "students_present")}
    assert {(e["line"], e["code"]) for e in t["errors_sample"]} == {
        (3, "type_error"), (5, "not_nullable")}
    # The upload record carries the same per-member results.
    status, record = await get_json(client, auth_headers, f"/api/ingestion/uploads/{uid}")
    assert record["members"] == body["members"] and record["objects"] == body["objects"]
    assert record["bytes"] == len(content)
    assert await staged_left(client) == [] and spool_files(settings) == []


async def test_cqube_style_zip_named_like_its_csv(client, auth_headers, settings):
    spec = json.loads(PGI_SPEC.read_text())
    await register(client, auth_headers, spec)
    header = ",".join(spec["input"]["required"])
    csv = (header + "\n"
           "Kerala,Ernakulam,32,3207,9.98,76.28,150.5,80,60,40,30,50,410.5\n"
           "Kerala,Idukki,32,3208,9.85,76.97,140,70,,40,30,50,380\n"
           "Kerala,Kollam,32,3210,8.89,76.61,high,70,55,40,30,50,390\n").encode()
    content = build([("pgi_all-dashboard.csv", csv)])
    status, body = await post_zip(client, auth_headers, content, filename="pgi_all-dashboard.zip")
    assert status == 200, body
    assert body["filename"] == "pgi_all-dashboard.zip" and body["ingestion_type"] == "national"
    (member,) = body["members"]
    assert member["name"] == "pgi_all-dashboard"
    assert (member["valid_rows"], member["invalid_rows"]) == (1, 2)
    assert {(e["line"], e["column"], e["code"]) for e in member["errors_sample"]} == {
        (3, "infrastructure_facilities_studententitlements", "not_nullable"),
        (4, "outcome", "type_error")}
    rows = await read_object(client, member["objects"]["valid"])
    assert rows[1][:2] == ["Kerala", "Ernakulam"]
    # file-status by the zip's name, with and without the type.
    for params in ({"filename": "pgi_all-dashboard.zip"},
                   {"filename": "pgi_all-dashboard.zip", "ingestion_type": "national"}):
        status, found = await get_json(client, auth_headers, "/api/ingestion/file-status",
                                       **params)
        assert status == 200 and found["upload_id"] == body["upload_id"]
        assert found["members"] == body["members"]
    # One member with an error file: ?member= may be left out.
    resp = await client.get(f"/api/ingestion/uploads/{body['upload_id']}/errors",
                            headers=auth_headers)
    assert resp.status == 200 and "Idukki" in await resp.text()


# --- per-member options and thresholds ------------------------------------------------------

@BOTH
async def test_one_member_over_max_error_rate_rejects_the_upload(client, auth_headers, settings):
    await register_both(client, auth_headers)
    content = build([("studentsattendance.csv", STUDENTS_CSV), ("teacherspresent.csv",
                                                                TEACHERS_CSV)])
    # As a form field before the file: 25 % passes, 40 % does not.
    status, body = await post_zip(client, auth_headers, content,
                                  fields={"max_error_rate": "0.3"})
    assert status == 200, body
    assert body["status"] == "rejected" and body["error"]["code"] == "error_rate_exceeded"
    assert body["error"]["members"] == ["teacherspresent"]
    assert body["error"]["message"].startswith("teacherspresent: 2 of 5 rows")
    assert body["objects"] == {"valid": None, "errors": None}
    members = by_name(body)
    assert members["studentsattendance"]["invalid_rows"] == 1
    assert all(m["objects"] == {"valid": None, "errors": None} for m in body["members"])
    await assert_nothing_left(client, settings)
    # As a query parameter: both under the threshold, both land.
    status, body = await post_zip(client, auth_headers, content, params={"max_error_rate": "0.5"})
    assert body["status"] == "uploaded"
    assert len(await landed(client)) == 4


async def test_dry_run_counts_every_member_and_writes_nothing(client, auth_headers, settings):
    await register_both(client, auth_headers)
    content = build([("studentsattendance.csv", STUDENTS_CSV), ("teacherspresent.csv",
                                                                TEACHERS_CSV)])
    for kw in ({"params": {"dry_run": "true"}}, {"fields": {"dry_run": "1"}},
               {"fields": {"dry_run": "yes"}, "file_first": True}):
        status, body = await post_zip(client, auth_headers, content, **kw)
        assert status == 200, body
        assert body["status"] == "uploaded" and body["dry_run"] is True, kw
        assert [(m["name"], m["valid_rows"], m["invalid_rows"]) for m in body["members"]] == [
            ("studentsattendance", 3, 1), ("teacherspresent", 3, 2)]
        assert all(m["objects"] == {"valid": None, "errors": None} for m in body["members"])
        await assert_nothing_left(client, settings)


async def test_member_with_a_file_level_error_rejects_the_upload(client, auth_headers, settings):
    await register_both(client, auth_headers)
    content = build([("teacherspresent.csv", TEACHERS_CSV),
                     ("studentsattendance.csv", b"date,school_id\n2024-01-01,S1\n")])
    status, body = await post_zip(client, auth_headers, content)
    assert status == 400, body
    assert body["error"]["code"] == "missing_column"
    assert body["error"]["details"]["member"] == "studentsattendance"
    assert body["error"]["message"].startswith("studentsattendance.csv: ")
    record = await last_upload(client, auth_headers)
    assert record["status"] == "rejected" and record["error"]["code"] == "missing_column"
    await assert_nothing_left(client, settings)
    await wait_no_reader_threads()


async def test_no_member_with_a_spec_is_rejected(client, auth_headers, settings):
    status, body = await post_zip(client, auth_headers, build([("teacherspresent.csv",
                                                                TEACHERS_CSV)]))
    assert status == 200, body
    assert body["status"] == "rejected" and body["error"]["code"] == "nothing_ingested"
    assert body["members"][0]["error"]["code"] == "spec_not_found"
    await assert_nothing_left(client, settings)


async def test_same_zip_twice_points_at_the_earlier_objects(client, auth_headers, settings):
    await register_both(client, auth_headers)
    content = build([("studentsattendance.csv", STUDENTS_CSV)])
    _, first = await post_zip(client, auth_headers, content)
    _, second = await post_zip(client, auth_headers, content)
    assert second["objects"]["duplicate_of"] == first["upload_id"]
    assert second["members"][0]["objects"] == first["members"][0]["objects"]
    assert len(await landed(client)) == 2


async def test_error_file_per_member(client, auth_headers, settings):
    await register_both(client, auth_headers)
    await register(client, auth_headers, dict(STUDENTS, program="clean"))
    content = build([("teacherspresent.csv", TEACHERS_CSV),
                     ("studentsattendance.csv", STUDENTS_CSV),
                     ("clean.csv", CLEAN_STUDENTS_CSV)])
    _, body = await post_zip(client, auth_headers, content)
    url = f"/api/ingestion/uploads/{body['upload_id']}/errors"
    resp = await client.get(url, headers=auth_headers)
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["code"] == "member_required"
    assert error["details"]["members"] == ["teacherspresent", "studentsattendance"]
    resp = await client.get(url, headers=auth_headers, params={"member": "studentsattendance"})
    assert resp.status == 200 and resp.content_type == "text/csv"
    lines = (await resp.text()).splitlines()
    assert lines[0] == "date,school_id,students_present,_line,_errors"
    assert len(lines) == 2 and lines[1].startswith("2024-01-01,S3,1.5,4,")
    for member, code in (("clean", "no_error_file"), ("nope", "member_not_found")):
        resp = await client.get(url, headers=auth_headers, params={"member": member})
        assert resp.status == 404 and (await resp.json())["error"]["code"] == code


# --- hostile and broken archives ------------------------------------------------------------

@pytest.mark.parametrize("case", sorted(HOSTILE))
async def test_hostile_archive_is_refused_and_leaves_nothing(client, auth_headers, settings,
                                                             case):
    make, code, http_status = HOSTILE[case]
    await register_both(client, auth_headers)
    status, body = await post_zip(client, auth_headers, make())
    assert status == http_status, body
    assert body["error"]["code"] == code
    record = await last_upload(client, auth_headers)
    assert record["status"] == "rejected" and record["error"]["code"] == code
    assert record["objects"] == {"valid": [], "errors": []} and record["total_rows"] == 0
    await assert_nothing_left(client, settings)


@BOTH
async def test_lie_found_in_a_later_member_aborts_the_staged_ones(client, auth_headers,
                                                                  settings):
    await register_both(client, auth_headers)
    status, body = await post_zip(client, auth_headers, lying_second_member())
    assert status == 400, body
    assert body["error"]["code"] == "zip_size_mismatch"
    assert body["error"]["details"]["name"] == "studentsattendance.csv"
    record = await last_upload(client, auth_headers)
    assert record["status"] == "rejected"
    await assert_nothing_left(client, settings)
    await wait_no_reader_threads()


async def test_archive_limits_from_config(aiohttp_client, tmp_path, clean_db):
    client, headers, settings = await app_client(
        aiohttp_client, tmp_path, clean_db, max_upload_bytes=50_000,
        zip_max_uncompressed_bytes=10_000, zip_non_csv="reject")
    await register_both(client, headers)
    # Declared total over the limit, though each member is under it: 413 before reading.
    two = build([("teacherspresent.csv", b"x" * 6000), ("studentsattendance.csv", b"y" * 6000)])
    status, body = await post_zip(client, headers, two)
    assert status == 413 and body["error"]["code"] == "zip_too_large", body
    assert body["error"]["details"]["declared"] == 12_000
    # A non-CSV member refuses the archive under zip_non_csv = "reject".
    status, body = await post_zip(client, headers, build([
        ("teacherspresent.csv", TEACHERS_CSV), ("notes.txt", b"x")]))
    assert status == 400 and body["error"]["code"] == "zip_non_csv_member", body
    assert body["error"]["details"]["names"] == ["notes.txt"]
    # The archive itself over max_upload_bytes: 413 while spooling, fields before or after.
    big = build([("teacherspresent.csv", bytes(range(256)) * 400)], method=zipfile.ZIP_STORED)
    for file_first in (False, True):
        status, body = await post_zip(client, headers, big, file_first=file_first,
                                      fields={"dry_run": "false"})
        assert status == 413 and body["error"]["code"] == "upload_too_large", body
    await assert_nothing_left(client, settings)


async def test_client_going_away_mid_zip_removes_the_spool_file(client, auth_headers, settings):
    head = (b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.zip"\r\n\r\n'
            + build([("teacherspresent.csv", TEACHERS_CSV)]))
    filler = b"\0" * (1 << 20)
    request = (f"POST {ZIP_PATH} HTTP/1.1\r\nHost: x\r\n"
               f"Authorization: {auth_headers['Authorization']}\r\n"
               f"Content-Type: multipart/form-data; boundary=XyZ\r\n"
               f"Content-Length: {len(head) + 50 * len(filler)}\r\n\r\n").encode()
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(request + head + filler)
    await writer.drain()
    async with asyncio.timeout(20):  # wait until the server is spooling this body
        while not spool_files(settings):
            await asyncio.sleep(0.01)
    writer.transport.abort()
    async with asyncio.timeout(20):
        while spool_files(settings):
            await asyncio.sleep(0.01)
    await assert_nothing_left(client, settings)


def test_zip_non_csv_is_checked_at_start_up(tmp_path):
    from ingest_server.errors import ConfigError

    with pytest.raises(ConfigError, match="limits.zip_non_csv"):
        make_settings(tmp_path, "postgresql://x/y", limits={"zip_non_csv": "ignore"})


# --- threads ---------------------------------------------------------------------------------

# Runs while the failed upload is being recorded, before the request's error (and every frame it
# holds, the member reader among them) is released: only an explicit close has stopped the
# reader thread by then.
THREAD_PROBE = """
import asyncio, threading
from pathlib import Path
from ingest_server import hookimpl

@hookimpl
async def upload_finished(upload):
    def alive():
        return [t.name for t in threading.enumerate() if t.name.startswith("ziparchive:")]
    try:
        async with asyncio.timeout(5):
            while alive():
                await asyncio.sleep(0.01)
    except TimeoutError:
        pass
    Path(__file__).with_name("probe.txt").write_text(",".join(alive()) or "none")
"""


async def test_pipeline_stopping_early_stops_the_reader_thread(aiohttp_client, tmp_path,
                                                               clean_db):
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "thread_probe.py").write_text(THREAD_PROBE)
    client, headers, settings = await app_client(aiohttp_client, tmp_path, clean_db)
    await register_both(client, headers)
    # Far more than the reader's read-ahead, so its thread is blocked waiting for room when
    # the missing column stops the pass.
    rows = b"".join(b"2024-01-01,S%d\n" % i for i in range(120_000))
    content = build([("studentsattendance.csv", b"date,school_id\n" + rows)])
    status, body = await post_zip(client, headers, content)
    assert status == 400 and body["error"]["code"] == "missing_column", body
    await notified(client)  # the hook runs after the answer, as tracked background work
    assert (plugins / "probe.txt").read_text() == "none"
    await assert_nothing_left(client, settings)

async def wait_no_reader_threads(timeout: float = 10.0) -> None:
    """Member reader threads stop once their upload is over (deadline, not a sleep)."""
    async with asyncio.timeout(timeout):
        while any(t.name.startswith("ziparchive:") for t in threading.enumerate()):
            await asyncio.sleep(0.01)
