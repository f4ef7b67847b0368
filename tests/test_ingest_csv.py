"""State programme CSVs end to end: production app, real PostgreSQL, local storage."""

import asyncio
import io
import re
from pathlib import Path

import asyncpg
import pytest

from conftest import make_settings
from ingest_helpers import SPEC, form, landed, read_object, register, staged_left, upload

BOTH = pytest.mark.parametrize("settings", ["local", "s3"], indirect=True)

GOOD = b"date,school_id,teachers_present,remarks,score\n" \
       b"2024-01-01,S1,10,ok,1.5\n" \
       b"2024-01-01,S2,abc,bad number,\n" \
       b'2024-01-01,S3,7,"multi\nline, with comma",\n' \
       b"2024-01-01,,5,missing school,2\n" \
       b"2024-01-02,S5,3,,\n"


@BOTH
async def test_happy_path_with_row_errors(client, auth_headers, settings):
    await register(client, auth_headers)
    status, body = await upload(client, auth_headers, GOOD)
    assert status == 200, body
    assert body["status"] == "uploaded"
    assert (body["total_rows"], body["valid_rows"], body["invalid_rows"]) == (5, 3, 2)
    valid_key, error_key = body["objects"]["valid"], body["objects"]["errors"]
    uid = body["upload_id"]
    assert re.fullmatch(rf"process_input/school-attendance/\d{{4}}-\d\d-\d\d/"
                        rf"teacherspresent-event\.{uid}\.data\.csv", valid_key)
    assert re.fullmatch(rf"ingestion_error/school-attendance/\d{{4}}-\d\d-\d\d/"
                        rf"teacherspresent\.{uid}\.errors\.csv", error_key)
    assert await landed(client) == sorted([valid_key, error_key])
    rows = await read_object(client, valid_key)
    assert rows[0] == ["date", "school_id", "teachers_present", "remarks", "score"]
    assert [r[1] for r in rows[1:]] == ["S1", "S3", "S5"]
    assert rows[2][3] == "multi\nline, with comma"  # quoted newline kept, RFC 4180 output
    errors = await read_object(client, error_key)
    assert errors[0] == ["date", "school_id", "teachers_present", "remarks", "score", "_line",
                         "_errors"]
    # Line numbers are physical: the quoted newline makes the row after it line 6, not 5.
    assert [(r[1], r[5]) for r in errors[1:]] == [("S2", "3"), ("", "6")]
    assert "teachers_present" in errors[1][6] and "type_error" in errors[1][6]
    assert errors[1][2] == "abc"  # the original text, never coerced away
    sample = body["errors_sample"]
    assert {(e["line"], e["column"], e["code"]) for e in sample} == {
        (3, "teachers_present", "type_error"), (6, "school_id", "not_nullable")}
    assert all(set(e) == {"line", "column", "value", "code", "message"} for e in sample)


async def test_upload_record_and_status_endpoints(client, auth_headers, clean_db):
    await register(client, auth_headers)
    status, body = await upload(client, auth_headers, GOOD)
    uid = body["upload_id"]
    conn = await asyncpg.connect(clean_db)
    try:
        row = await conn.fetchrow("SELECT * FROM uploads WHERE id = $1", uid)
    finally:
        await conn.close()
    assert row["status"] == "uploaded" and row["bytes"] == len(GOOD)
    assert row["total_rows"] == row["valid_rows"] + row["invalid_rows"] == 5
    assert len(row["sha256"]) == 64 and row["finished_at"] is not None
    got = await (await client.get(f"/api/ingestion/uploads/{uid}", headers=auth_headers)).json()
    assert got["valid_rows"] == 3 and got["objects"] == body["objects"]
    listing = await (await client.get("/api/ingestion/uploads", headers=auth_headers)).json()
    assert [u["upload_id"] for u in listing["uploads"]] == [uid]
    fs = await client.get("/api/ingestion/file-status", headers=auth_headers, params={
        "filename": "data.csv", "ingestion_type": "event", "ingestion_name": "teacherspresent"})
    assert (await fs.json())["upload_id"] == uid
    errors = await client.get(f"/api/ingestion/uploads/{uid}/errors", headers=auth_headers)
    assert errors.status == 200 and errors.content_type == "text/csv"
    text = await errors.text()
    assert text.splitlines()[0].endswith("_line,_errors") and "S2" in text
    missing = await client.get("/api/ingestion/uploads/nope", headers=auth_headers)
    assert (await missing.json())["error"]["code"] == "upload_not_found"


async def test_no_rejected_rows_means_no_error_file(client, auth_headers, settings):
    await register(client, auth_headers)
    status, body = await upload(client, auth_headers,
                                b"date,school_id,teachers_present\n2024-01-01,S1,4\n")
    assert status == 200 and body["objects"]["errors"] is None
    assert "no error file" in body["message"]
    assert len(await landed(client)) == 1


@BOTH
async def test_fields_after_the_file_are_spooled(client, auth_headers, settings):
    await register(client, auth_headers)
    status, body = await upload(client, auth_headers, GOOD, file_first=True)
    assert status == 200, body
    assert body["valid_rows"] == 3
    spool = Path(settings.server.state_dir) / "spool"
    assert not spool.exists() or not any(spool.iterdir())  # temp file removed


async def test_option_after_a_streamed_file_is_refused(client, auth_headers, settings):
    await register(client, auth_headers)
    data = form(GOOD)
    data.add_field("dry_run", "true")
    resp = await client.post("/api/ingestion/new_programs", data=data, headers=auth_headers)
    assert resp.status == 400
    assert (await resp.json())["error"]["code"] == "option_after_file"
    assert await landed(client) == []


@pytest.mark.parametrize("content, code", [
    (b"", "empty_file"),
    (b"\xef\xbb\xbf\r\n\r\n", "empty_file"),  # no header at all (a header alone lands 0 rows)
    (b"date,school_id\n2024-01-01,S1\n", "missing_column"),
    (b"date,date,school_id,teachers_present\n1,1,S,1\n", "duplicate_header"),
    (b"\x00\x01\x02\x03binary\xff\xfe\n", "not_text"),
    (b"\x00\x01\x02\x03binary\n", "not_a_csv"),
])
@BOTH
async def test_file_level_errors(client, auth_headers, settings, clean_db, content, code):
    await register(client, auth_headers)
    status, body = await upload(client, auth_headers, content)
    assert status == 400, body
    assert body["error"]["code"] == code
    assert await landed(client) == []
    conn = await asyncpg.connect(clean_db)
    try:
        row = await conn.fetchrow("SELECT id, status, error FROM uploads")
    finally:
        await conn.close()
    assert row["status"] == "rejected"
    assert body["error"]["details"]["upload_id"] == row["id"]  # the refusal can be looked up


async def test_missing_column_names_all_of_them(client, auth_headers):
    await register(client, auth_headers)
    status, body = await upload(client, auth_headers, b"remarks\nx\n")
    assert body["error"]["code"] == "missing_column"
    assert set(body["error"]["details"]["columns"]) == {"date", "school_id", "teachers_present"}


async def test_bom_and_crlf(client, auth_headers):
    await register(client, auth_headers)
    content = b"\xef\xbb\xbfdate,school_id,teachers_present\r\n2024-01-01,S1,4\r\n2024,S2,x\r\n"
    status, body = await upload(client, auth_headers, content)
    assert (body["valid_rows"], body["invalid_rows"]) == (1, 1)
    assert body["errors_sample"][0]["line"] == 3


async def test_ragged_and_undecodable_rows_are_row_errors(client, auth_headers):
    await register(client, auth_headers)
    content = b"date,school_id,teachers_present\n2024-01-01,S1\n2024-01-01,S\xff2,3\n2024,S3,1\n"
    # encoding given: the client says UTF-8, so a bad byte is that row's error (without the
    # option the file is refused, naming its likely encoding: test_files.py)
    status, body = await upload(client, auth_headers, content, params={"encoding": "utf-8"})
    assert status == 200, body
    codes = {(e["line"], e["code"]) for e in body["errors_sample"]}
    assert codes == {(2, "ragged_row"), (3, "encoding_error")}
    assert body["valid_rows"] == 1


async def test_latin1_encoding_option(client, auth_headers, settings):
    await register(client, auth_headers)
    content = "date,school_id,teachers_present,remarks\n2024,S1,1,café\n".encode("latin-1")
    status, body = await upload(client, auth_headers, content, params={"encoding": "latin-1"})
    assert body["valid_rows"] == 1
    rows = await read_object(client, body["objects"]["valid"])
    assert rows[1][3] == "café"


async def test_spec_not_found(client, auth_headers):
    status, body = await upload(client, auth_headers, GOOD)
    assert status == 404 and body["error"]["code"] == "spec_not_found"
    assert "teacherspresent" in body["error"]["message"]


@pytest.mark.parametrize("fields, code", [
    ({"ingestion_name": "teacherspresent", "program_name": "p"}, "missing_field"),
    ({"ingestion_type": "events", "ingestion_name": "x", "program_name": "p"},
     "unknown_ingestion_type"),
    ({"ingestion_type": "event", "ingestion_name": "teacherspresent"}, "missing_field"),
    ({"ingestion_type": "event", "ingestion_name": "../../etc", "program_name": "p"},
     "invalid_name"),
    ({"ingestion_type": "event", "ingestion_name": "teacherspresent", "program_name": "a/../b"},
     "invalid_name"),
    ({"ingestion_type": "event", "ingestion_name": "teacherspresent", "program_name": "p",
      "max_error_rate": "2"}, "invalid_field"),
])
async def test_bad_fields(client, auth_headers, settings, fields, code):
    await register(client, auth_headers)
    status, body = await upload(client, auth_headers, GOOD, fields=fields)
    assert status == 400, body
    assert body["error"]["code"] == code
    assert await landed(client) == []


async def test_not_multipart_and_no_file(client, auth_headers):
    resp = await client.post("/api/ingestion/new_programs", data=b"a,b\n", headers=auth_headers)
    assert (await resp.json())["error"]["code"] == "not_multipart"
    import aiohttp

    data = aiohttp.FormData()
    data.add_field("ingestion_type", "event")
    data.add_field("other", io.BytesIO(b"x"), filename="x.csv")
    resp = await client.post("/api/ingestion/new_programs", data=data, headers=auth_headers)
    assert (await resp.json())["error"]["code"] == "missing_file"


async def test_client_file_name_is_never_a_path(client, auth_headers, settings):
    await register(client, auth_headers)
    status, body = await upload(client, auth_headers, GOOD, filename="../../../etc/passwd.csv")
    assert status == 200
    assert body["filename"] == "passwd.csv"
    assert all("passwd" not in k for k in await landed(client))


async def test_dimension_needs_no_program(client, auth_headers, settings):
    spec = {"program": "district", "input": {"type": "object", "properties": {
        "district_id": {"type": "string", "shouldnotnull": True},
        "district_name": {"type": "string", "shouldnotnull": True}},
        "required": ["district_id", "district_name"]}}
    await register(client, auth_headers, spec, kind="dimension")
    status, body = await upload(client, auth_headers, b"district_id,district_name\nD1,North\n",
                                fields={"ingestion_type": "dimension",
                                        "ingestion_name": "district"})
    assert status == 200, body
    assert body["objects"]["valid"].startswith("process_input/dimensions/")
    assert body["objects"]["valid"].endswith(f"district-dimension.{body['upload_id']}.data.csv")


async def test_dataset_type(client, auth_headers):
    spec = dict(SPEC, program="ds1")
    await register(client, auth_headers, spec, kind="dataset")
    status, body = await upload(client, auth_headers, GOOD, fields={
        "ingestion_type": "dataset", "ingestion_name": "ds1", "program_name": "p"})
    assert body["objects"]["valid"].startswith("process_input/datasets/")


async def test_upload_too_large(aiohttp_client, tmp_path, clean_db):
    from ingest_server.web.app import create_app

    settings = make_settings(tmp_path, clean_db, limits={"max_upload_bytes": 10_000})
    client = await aiohttp_client(create_app(settings))
    from conftest import TEST_CLIENT, basic

    token = (await (await client.get("/api/ingestion/generatejwt",
                                     headers=basic(*TEST_CLIENT, json=True))).json())["token"]
    headers = {"Authorization": f"Bearer {token}"}
    await register(client, headers)
    big = b"date,school_id,teachers_present\n" + b"2024-01-01,S1,4\n" * 2000
    for file_first in (False, True):
        status, body = await upload(client, headers, big, file_first=file_first)
        assert status == 413, body
        assert body["error"]["code"] == "upload_too_large"
    assert await landed(client) == []


@BOTH
async def test_dry_run_writes_nothing(client, auth_headers, settings):
    await register(client, auth_headers)
    status, body = await upload(client, auth_headers, GOOD, params={"dry_run": "true"})
    assert status == 200 and body["dry_run"] is True
    assert (body["valid_rows"], body["invalid_rows"]) == (3, 2)
    assert body["objects"] == {"valid": None, "errors": None}
    assert await landed(client) == []


@BOTH
async def test_max_error_rate(client, auth_headers, settings):
    await register(client, auth_headers)
    status, body = await upload(client, auth_headers, GOOD, params={"max_error_rate": "0.3"})
    assert status == 200
    assert body["status"] == "rejected"
    assert body["error"]["code"] == "error_rate_exceeded"
    assert await landed(client) == []
    status, body = await upload(client, auth_headers, GOOD, params={"max_error_rate": "0.5"})
    assert body["status"] == "uploaded"


@BOTH
async def test_idempotency_key_and_duplicates(client, auth_headers, settings):
    await register(client, auth_headers)
    key = {"Idempotency-Key": "batch-42"}
    s1, first = await upload(client, auth_headers, GOOD, extra_headers=key)
    s2, second = await upload(client, auth_headers, GOOD, extra_headers=key)
    assert second["upload_id"] == first["upload_id"] and second["idempotent_replay"] is True
    assert len(await landed(client)) == 2
    # Same bytes without a key, for the same target: the earlier objects, nothing landed twice.
    s3, third = await upload(client, auth_headers, GOOD)
    assert third["upload_id"] != first["upload_id"]
    assert third["objects"]["duplicate_of"] == first["upload_id"]
    assert third["objects"]["valid"] == first["objects"]["valid"]
    assert len(await landed(client)) == 2


@BOTH
async def test_counts_always_add_up(client, auth_headers, settings):
    await register(client, auth_headers)
    lines = [b"date,school_id,teachers_present,remarks,score"]
    for i in range(3000):
        bad = i % 7 == 0
        lines.append(b"2024-01-01,S%d,%s,\"r\n%d\",%s" % (i, b"x" if bad else b"3", i,
                                                           b"" if i % 3 else b"1.5"))
    content = b"\n".join(lines) + b"\n"
    status, body = await upload(client, auth_headers, content)
    assert body["total_rows"] == 3000
    assert body["invalid_rows"] == len([i for i in range(3000) if i % 7 == 0])
    valid = await read_object(client, body["objects"]["valid"])
    errors = await read_object(client, body["objects"]["errors"])
    assert len(valid) - 1 == body["valid_rows"] and len(errors) - 1 == body["invalid_rows"]
    # Each data row spans two physical lines: row i starts on line 2 + 2*i.
    assert [int(r[5]) for r in errors[1:]] == [2 + 2 * i for i in range(3000) if i % 7 == 0]


@BOTH
async def test_client_disconnect_leaves_nothing(client, auth_headers, settings, clean_db):
    """A client that goes away mid-body: upload failed, staged objects removed."""
    await register(client, auth_headers)
    head = (b'--XyZ\r\nContent-Disposition: form-data; name="ingestion_type"\r\n\r\nevent\r\n'
            b'--XyZ\r\nContent-Disposition: form-data; name="ingestion_name"\r\n\r\n'
            b'teacherspresent\r\n--XyZ\r\nContent-Disposition: form-data; name="program_name"'
            b'\r\n\r\np\r\n--XyZ\r\nContent-Disposition: form-data; name="file"; '
            b'filename="a.csv"\r\n\r\ndate,school_id,teachers_present\n')
    rows = b"2024-01-01,S1,4\n" * 20000
    request = (f"POST /api/ingestion/new_programs HTTP/1.1\r\nHost: x\r\n"
               f"Authorization: {auth_headers['Authorization']}\r\n"
               f"Content-Type: multipart/form-data; boundary=XyZ\r\n"
               f"Content-Length: {len(head) + 10 * len(rows)}\r\n\r\n").encode()
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(request + head + rows)
    await writer.drain()
    conn = await asyncpg.connect(clean_db)
    try:
        async with asyncio.timeout(20):  # wait until the server is receiving this upload
            while await conn.fetchval("SELECT count(*) FROM uploads") == 0:
                await asyncio.sleep(0.02)
        writer.transport.abort()  # the client goes away mid-body
        async with asyncio.timeout(20):
            while (row := await conn.fetchrow("SELECT status, error FROM uploads"))[
                    "status"] == "receiving":
                await asyncio.sleep(0.02)
    finally:
        await conn.close()
    assert row["status"] == "failed"
    assert await landed(client) == []
    assert await staged_left(client) == []


async def test_crash_recovery_at_start_up(aiohttp_client, tmp_path, clean_db):
    """An upload left 'receiving' by a dead process is failed, its staged data removed."""
    from ingest_server.storage.local import LocalStorage
    from ingest_server.web.app import create_app

    settings = make_settings(tmp_path, clean_db, ingest={"stale_upload_s": 1})
    conn = await asyncpg.connect(clean_db)
    try:
        from ingest_server.stores.db import create_pool, migrate

        pool = await create_pool(clean_db)
        await migrate(pool)
        await pool.close()
        await conn.execute("INSERT INTO uploads (id, route, status, heartbeat_at) VALUES "
                           "('20240101000000-dead', 'new_programs', 'receiving', "
                           "now() - interval '1 hour')")
        storage = LocalStorage(settings.storage.root)
        await storage.start()
        writer = await storage.open_writer("process_input/p/x.20240101000000-dead.data.csv",
                                           upload_id="20240101000000-dead")
        await writer.write(b"partial," * 10_000)  # past the first flush: a staged file on disk
        writer._fh.close()  # the process died: nothing committed, nothing aborted
        await aiohttp_client(create_app(settings))
        row = await conn.fetchrow("SELECT status, error FROM uploads")
    finally:
        await conn.close()
    assert row["status"] == "failed"
    assert not any(Path(settings.storage.root).rglob("*.csv*"))


async def test_restart_fails_uploads_of_a_dead_process_at_once(aiohttp_client, tmp_path, clean_db):
    """A process of this host that died mid-upload: failed at the next start, not after minutes."""
    import socket
    import subprocess

    from ingest_server.web.app import create_app

    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that no longer runs
    owner = f"{socket.gethostname()}:{dead.pid}:deadbeef"
    settings = make_settings(tmp_path, clean_db)  # stale_upload_s stays at its default (120 s)
    client = await aiohttp_client(create_app(settings))
    conn = await asyncpg.connect(clean_db)
    try:
        await conn.execute("INSERT INTO uploads (id, route, status, owner) VALUES "
                           "('20240101000000-orphan', 'new_programs', 'receiving', $1), "
                           "('20240101000000-alive', 'new_programs', 'receiving', $2)",
                           owner, f"{socket.gethostname()}:1:other")
        from ingest_server.ingest.recovery import recover
        from ingest_server.web import appkeys

        await recover(client.app[appkeys.UPLOADS], client.app[appkeys.STORAGE], 120)
        rows = dict(await conn.fetch("SELECT id, status FROM uploads"))
    finally:
        await conn.close()
    assert rows == {"20240101000000-orphan": "failed", "20240101000000-alive": "receiving"}


@BOTH
async def test_cleanup_survives_a_second_cancellation(client, auth_headers, settings, clean_db):
    """An upload cancelled, then cancelled again while it cleans up (a client gone while the
    server shuts down): the upload still ends failed and nothing staged is left."""
    from ingest_server.ingest.model import UploadRequest
    from ingest_server.web import appkeys

    await register(client, auth_headers)
    service = client.app[appkeys.INGEST]
    never, stalled = asyncio.Event(), asyncio.Event()

    async def source():
        # Over one 8 MiB part: on S3 a multipart upload is open when the cancellations come.
        yield b"date,school_id,teachers_present\n" + b"2024-01-01,S1,4\n" * 600_000
        stalled.set()  # the first piece is in the pipeline, its objects are open
        await never.wait()  # the client stops sending
        yield b""

    req = UploadRequest(program_type=client.app[appkeys.REGISTRY].program_type("event"),
                        ingestion_name="teacherspresent", program="p", filename="a.csv",
                        client="test-client")
    task = asyncio.create_task(service.ingest_csv(req, source()))
    conn = await asyncpg.connect(clean_db)
    try:
        async with asyncio.timeout(20):
            await stalled.wait()
        task.cancel()
        await asyncio.sleep(0)  # the cleanup has started...
        task.cancel()           # ...and is cancelled again
        with pytest.raises(asyncio.CancelledError):
            await task
        async with asyncio.timeout(20):
            while (row := await conn.fetchrow("SELECT status FROM uploads"))["status"] == \
                    "receiving" or await staged_left(client):
                await asyncio.sleep(0.02)
    finally:
        await conn.close()
    assert row["status"] == "failed"
    assert await landed(client) == []


async def test_objects_are_taken_back_when_the_outcome_cannot_be_recorded(
        client, auth_headers, settings):
    """Published, then the database fails before the upload is recorded as uploaded: the objects
    are deleted again, so nothing stays visible for an upload that did not succeed."""
    from ingest_server.web import appkeys

    await register(client, auth_headers)
    uploads = client.app[appkeys.UPLOADS]
    real_finish = uploads.finish

    async def finish_fails_for_success(upload_id, *, status, conn=None, **kw):
        if status == "uploaded":  # the database goes away right after the objects are published
            conn.terminate()  # the connection holding the duplicate check's transaction
        return await real_finish(upload_id, status=status, conn=conn, **kw)

    uploads.finish = finish_fails_for_success
    status, body = await upload(client, auth_headers, GOOD)
    assert status == 503 and body["error"]["code"] == "db_unavailable"
    assert await landed(client) == []
    assert await staged_left(client) == []


async def test_cancelled_at_any_point_never_leaves_an_upload_receiving(client, auth_headers,
                                                                        clean_db):
    """Cancel uploads after 0, 1, 2, ... event-loop steps (a client gone at any moment,
    including while its upload row is being inserted): each one ends with no row at all or a
    failed one, never 'receiving', and nothing staged."""
    from ingest_server.ingest.model import UploadRequest
    from ingest_server.web import appkeys

    await register(client, auth_headers)
    service = client.app[appkeys.INGEST]
    req = UploadRequest(program_type=client.app[appkeys.REGISTRY].program_type("event"),
                        ingestion_name="teacherspresent", program="p", filename="a.csv",
                        client="test-client")

    async def source():
        yield b"date,school_id,teachers_present\n2024-01-01,S1,4\n"
        await asyncio.Event().wait()  # then the client stalls
        yield b""

    conn = await asyncpg.connect(clean_db)
    try:
        for steps in range(40):
            task = asyncio.create_task(service.ingest_csv(req, source()))
            for _ in range(steps):
                await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        async with asyncio.timeout(20):
            while await conn.fetchval("SELECT count(*) FROM uploads WHERE status = 'receiving'"):
                await asyncio.sleep(0.02)
        statuses = {r["status"] for r in await conn.fetch("SELECT status FROM uploads")}
    finally:
        await conn.close()
    assert statuses <= {"failed"}
    assert await staged_left(client) == [] and await landed(client) == []
