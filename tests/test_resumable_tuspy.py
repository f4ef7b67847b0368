"""A stock tus client from PyPI (tuspy, unmodified) against the real server: upload part of a
file, cut the connection, resume with a fresh client, and the outcome equals a one-shot upload
of the same file, objects compared byte for byte, on local and S3 storage; then the same across
a SIGKILLed and restarted server process.

tuspy is synchronous (requests): it runs in a thread while the test's event loop serves."""

from __future__ import annotations

import asyncio
import io
import zipfile
from pathlib import Path

import aiohttp
import pytest
from tusclient import client as tus_client

from conftest import JWT_SECRET, TEST_CLIENT, basic, make_settings, s3_settings
from ingest_helpers import SPEC, register, upload
from ingest_server.auth import hash_secret
from ingest_server.storage.s3 import S3Storage
from ingest_server.web import appkeys
from resumable_helpers import CSV_FIELDS, PREFIX, sample_csv, sql
from testkit.server_process import ServerProcess, free_port, write_config
from testkit.stored import published
from resumable_helpers import assert_same_outcome

CHUNK = 16 * 1024


@pytest.fixture(params=["local", "s3"])
def settings(request, tmp_path, clean_db):
    storage = s3_settings(request.getfixturevalue("s3_server")) if request.param == "s3" else {}
    # A short idle timeout: a connection cut before the handler reads the body is only noticed
    # as a stall by aiohttp.
    return make_settings(tmp_path, clean_db, storage=storage, limits={"body_idle_timeout_s": 1.0},
                         ingest={"workers": 1, "idempotency_window_s": 0})


def uploader(base: str, headers: dict, stream, metadata: dict, url: str | None = None):
    """tuspy on a file the test opens and closes (given a path, tuspy leaves files open)."""
    client = tus_client.TusClient(base + PREFIX, headers=headers)
    return client.uploader(file_stream=stream, chunk_size=CHUNK, metadata=metadata, url=url,
                           upload_checksum=True)


async def until(predicate, timeout_s: float = 20.0):
    async with asyncio.timeout(timeout_s):
        while not (value := await predicate()):
            await asyncio.sleep(0.02)
        return value


async def cut_mid_patch(port: int, token: str, url_path: str, offset: int, data: bytes) -> None:
    """A PATCH whose connection drops half-way through its body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write((f"PATCH {url_path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTus-Resumable: 1.0.0\r\n"
                  f"Authorization: Bearer {token}\r\nUpload-Offset: {offset}\r\n"
                  f"Content-Type: application/offset+octet-stream\r\n"
                  f"Content-Length: {len(data)}\r\n\r\n").encode() + data[:len(data) // 2])
    await writer.drain()
    writer.write_eof()  # a FIN, not a RST: a RST may discard what the server has not read yet
    answer = await reader.read()
    writer.close()
    return answer


async def resumable_upload(client, headers, token, path: Path, metadata: dict, dsn: str):
    """Three chunks, a connection cut mid-PATCH, then a fresh client finishes the file."""
    base = str(client.make_url("")).rstrip("/")
    with open(path, "rb") as stream:
        return await _resumable_upload(client, headers, token, base, stream, metadata, dsn)


async def _resumable_upload(client, headers, token, base, stream, metadata, dsn):
    first = uploader(base, headers, stream, metadata)
    for _ in range(3):
        await asyncio.to_thread(first.upload_chunk)
    assert first.offset == 3 * CHUNK
    url = first.url
    tus_id = url.rsplit("/", 1)[1]
    (before,) = await sql(dsn, "SELECT updated_at FROM resumable_uploads WHERE id = $1", tus_id)
    stream.seek(0)
    data = stream.read()
    await cut_mid_patch(client.port, token, PREFIX + "/" + tus_id, first.offset,
                                 data[first.offset:first.offset + 8 * CHUNK])

    async def released():  # the cut PATCH was handled: what the server had read was kept
        (row,) = await sql(dsn, "SELECT lease_until, upload_offset, updated_at "
                                "FROM resumable_uploads WHERE id = $1", tus_id)
        return row["lease_until"] is None and row["updated_at"] > before["updated_at"] and row

    row = await until(released)
    assert 3 * CHUNK <= row["upload_offset"] < 7 * CHUNK
    # A fresh client resumes (its constructor asks the server for the offset: in a thread).
    second = await asyncio.to_thread(uploader, base, headers, stream, metadata, url=url)
    assert second.offset == row["upload_offset"]
    await asyncio.to_thread(second.upload)
    assert second.offset == len(data)
    answer = second.request.response_headers
    assert answer["upload-status"] == "uploaded"
    resp = await client.get(answer["content-location"], headers=headers)
    record = await resp.json()
    assert record["upload_id"] == answer["upload-id"]
    return record


@pytest.fixture
async def ready(client, clean_db):
    await sql(clean_db, "TRUNCATE resumable_uploads")
    resp = await client.get("/api/ingestion/generatejwt",
                            headers=dict(basic(*TEST_CLIENT), Accept="application/json"))
    token = (await resp.json())["token"]
    headers = {"Authorization": f"Bearer {token}"}
    await register(client, headers, spec=SPEC)
    return client, headers, token


async def test_tuspy_resumes_a_csv_and_it_lands_as_one_shot(ready, tmp_path, clean_db):
    client, headers, token = ready
    data = sample_csv(3000)
    path = tmp_path / "data.csv"
    path.write_bytes(data)
    record = await resumable_upload(client, headers, token, path, CSV_FIELDS, clean_db)
    status, one_shot = await upload(client, headers, data)
    assert status == 200
    await assert_same_outcome(client, record, one_shot)
    assert (await published(client.app[appkeys.STORAGE])) == sorted(
        [record["objects"]["valid"], record["objects"]["errors"],
         one_shot["objects"]["valid"], one_shot["objects"]["errors"]])


async def test_tuspy_resumes_a_national_zip_and_it_lands_as_one_shot(ready, tmp_path, clean_db):
    client, headers, token = ready
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as z:  # stored: big enough to cut
        z.writestr("teacherspresent.csv", sample_csv(3000))
        z.writestr("unknown.csv", b"a,b\n1,2\n")
    data = buffer.getvalue()
    path = tmp_path / "national.zip"
    path.write_bytes(data)
    record = await resumable_upload(client, headers, token, path,
                                    {"filename": "national.zip", "ingestion_type": "national"},
                                    clean_db)
    status, one_shot = await upload(client, headers, data, path="/api/ingestion/national_programs",
                                    fields={}, filename="national.zip",
                                    content_type="application/zip")
    assert status == 200, one_shot
    assert record["route"] == "national_programs"
    await assert_same_outcome(client, record, one_shot)


async def test_server_sigkilled_between_patches_then_resumed(tmp_path, clean_db):
    """SIGKILL between two PATCHes; the restarted server (any instance would do: the state is
    in PostgreSQL and storage) takes the next PATCH at the recorded offset."""
    (tmp_path / "plugins").mkdir()
    config = write_config(tmp_path / "config.toml", {
        "server": {"host": "127.0.0.1", "plugins_dir": str(tmp_path / "plugins"),
                   "state_dir": str(tmp_path / "state"), "shutdown_timeout_s": 1.0},
        "database": {"dsn": clean_db, "pool_max": 4},
        "storage": {"backend": "local", "root": str(tmp_path / "storage")},
        "auth": {"jwt_secret": JWT_SECRET, "clients": [
            {"id": TEST_CLIENT[0], "secret_sha256": hash_secret(TEST_CLIENT[1]),
             "scopes": ["ingest", "spec", "read"]}]},
        "ingest": {"workers": 1, "idempotency_window_s": 0},
    })
    server = ServerProcess(config, free_port(), tmp_path / "server.log")
    data = sample_csv(3000)
    path = tmp_path / "data.csv"
    path.write_bytes(data)
    await asyncio.to_thread(server.start)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(server.url + "/api/ingestion/generatejwt", headers=dict(
                    basic(*TEST_CLIENT), Accept="application/json")) as r:
                headers = {"Authorization": f"Bearer {(await r.json())['token']}"}
            async with session.post(server.url + "/api/spec/event", json=SPEC,
                                    headers=headers) as r:
                assert r.status in (200, 201), await r.text()
            with open(path, "rb") as stream:
                first = uploader(server.url, headers, stream, CSV_FIELDS)
                for _ in range(2):
                    await asyncio.to_thread(first.upload_chunk)
                await asyncio.to_thread(server.kill)
                await asyncio.to_thread(server.start)
                second = await asyncio.to_thread(uploader, server.url, headers, stream,
                                                 CSV_FIELDS, url=first.url)
                assert second.offset == 2 * CHUNK
                await asyncio.to_thread(second.upload)
            upload_id = second.request.response_headers["upload-id"]
            async with session.get(f"{server.url}/api/ingestion/uploads/{upload_id}",
                                   headers=headers) as r:
                record = await r.json()
            form = aiohttp.FormData(CSV_FIELDS)
            form.add_field("file", data, filename="data.csv", content_type="text/csv")
            async with session.post(server.url + "/api/ingestion/new_programs", data=form,
                                    headers=headers) as r:
                one_shot = await r.json()
        root = tmp_path / "storage"
        assert record["status"] == "uploaded" and record["total_rows"] == 3000
        for kind in ("valid", "errors"):
            assert (root / record["objects"][kind]).read_bytes() == \
                (root / one_shot["objects"][kind]).read_bytes()
        assert not [p for p in (root / ".staging").rglob("*") if p.is_file()]
    finally:
        server.kill()


async def staged_bytes(client, tus_id: str) -> list[str]:
    """What is staged for one tus upload: the local file or the S3 segment objects."""
    storage = client.app[appkeys.STORAGE]
    if hasattr(storage, "root"):
        return [str(p) for p in (storage.root / ".staging" / f"tus-{tus_id}").glob("*")]
    page = await storage.client.list_objects_v2(
        Bucket=storage.bucket, Prefix=f"{storage.prefix}.staging/tus-{tus_id}/")
    return [item["Key"] for item in page.get("Contents", [])]


async def test_staged_bytes_go_with_termination_and_expiry(ready, clean_db, monkeypatch):
    """On both backends: bytes are staged as they arrive (S3: in segments, here of 4 KiB), never
    listed as objects, read back in order at completion, and removed by DELETE and by the
    expiry sweep."""
    from resumable_helpers import create, patch
    from ingest_server.resumable import staging
    from ingest_server.web.views.resumable import RESUMABLE

    monkeypatch.setattr(staging, "SEGMENT_BYTES", 4096)
    client, headers, _ = ready
    data = sample_csv(2000)
    url = (await create(client, headers, len(data))).headers["Location"]
    assert (await patch(client, headers, url, 0, data[:30000])).status == 204
    segments = await staged_bytes(client, url.rsplit("/", 1)[1])
    assert len(segments) == (8 if isinstance(client.app[appkeys.STORAGE], S3Storage) else 1)
    r = await patch(client, headers, url, 30000, data[30000:])
    record = await (await client.get(r.headers["Content-Location"], headers=headers)).json()
    invalid = sum(1 for i in range(2000) if i % 7 == 3)
    assert (record["status"], record["total_rows"], record["invalid_rows"]) == \
        ("uploaded", 2000, invalid)
    assert await staged_bytes(client, url.rsplit("/", 1)[1]) == []
    for key in (record["objects"]["valid"], record["objects"]["errors"]):
        await client.app[appkeys.STORAGE].delete(key)
    urls = []
    for _ in range(2):
        url = (await create(client, headers, len(data))).headers["Location"]
        assert (await patch(client, headers, url, 0, data[:30000])).status == 204
        urls.append(url)
    ids = [u.rsplit("/", 1)[1] for u in urls]
    assert all([await staged_bytes(client, i) for i in ids])
    assert await published(client.app[appkeys.STORAGE]) == []  # staging is not an object
    assert (await client.delete(urls[0], headers=dict(headers, **{"Tus-Resumable": "1.0.0"}))
            ).status == 204
    assert await staged_bytes(client, ids[0]) == []
    await sql(clean_db, "UPDATE resumable_uploads SET expires_at = now() - interval '1 second' "
                        "WHERE id = $1", ids[1])
    assert ids[1] in await client.app[RESUMABLE].expire()
    assert await staged_bytes(client, ids[1]) == []
