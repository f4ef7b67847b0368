"""tus 1.0 at /api/ingestion/resumable, driven over HTTP against the real app, database and
storage: discovery, creation checks, HEAD/PATCH, checksum, termination, expiration, locking, and
a complete upload landing exactly as the one-shot upload of the same file."""

from __future__ import annotations

import asyncio
import json

import pytest

from conftest import READ_ONLY_CLIENT, basic, make_settings
from ingest_helpers import SPEC, landed, register, upload
from ingest_server.web import appkeys
from ingest_server.web.views.resumable import RESUMABLE
from resumable_helpers import (CSV_FIELDS, PREFIX, TUS, checksum, create, head, metadata,
                               patch, sample_csv, sql)
from resumable_helpers import assert_same_outcome


@pytest.fixture
def settings(tmp_path, clean_db):
    """No duplicate detection, so that the one-shot upload of the same file lands anew."""
    return make_settings(tmp_path, clean_db, ingest={"workers": 1, "idempotency_window_s": 0})


@pytest.fixture
async def ready(client, auth_headers, clean_db):
    await sql(clean_db, "TRUNCATE resumable_uploads")
    await register(client, auth_headers, spec=SPEC)
    return client, auth_headers


def tus_files(client) -> list[str]:
    root = client.app[appkeys.SETTINGS].path(client.app[appkeys.SETTINGS].storage.root)
    return sorted(str(p) for p in (root / ".staging").rglob("*") if p.is_file())


async def test_options_discovery_needs_no_token(client):
    resp = await client.options(PREFIX)
    assert resp.status == 204
    assert resp.headers["Tus-Resumable"] == "1.0.0"
    assert resp.headers["Tus-Version"] == "1.0.0"
    assert resp.headers["Tus-Extension"] == \
        "creation,creation-with-upload,termination,checksum,expiration"
    assert resp.headers["Tus-Checksum-Algorithm"] == "sha256,sha1,md5"
    limit = client.app[appkeys.SETTINGS].limits.max_upload_bytes
    assert resp.headers["Tus-Max-Size"] == str(limit)


async def test_upload_in_pieces_lands_as_one_shot(ready, clean_db):
    client, headers = ready
    data = sample_csv(500)
    resp = await create(client, headers, len(data))
    assert resp.status == 201, await resp.text()
    url = resp.headers["Location"]
    assert url.startswith(PREFIX + "/") and resp.headers["Tus-Resumable"] == "1.0.0"
    assert "GMT" in resp.headers["Upload-Expires"]
    cuts = [0, 1000, 1001, 7000, len(data)]
    for start, end in zip(cuts, cuts[1:]):
        r = await patch(client, headers, url, start, data[start:end])
        assert r.status == 204, await r.text()
        assert r.headers["Upload-Offset"] == str(end)
        h = await head(client, headers, url)
        assert (h.status, h.headers["Upload-Offset"], h.headers["Upload-Length"]) == \
            (200, str(end), str(len(data)))
        assert h.headers["Cache-Control"] == "no-store"
    upload_id = r.headers["Upload-Id"]
    assert r.headers["Upload-Status"] == "uploaded"
    assert r.headers["Content-Location"] == f"/api/ingestion/uploads/{upload_id}"
    record = await (await client.get(r.headers["Content-Location"], headers=headers)).json()
    assert tus_files(client) == []  # the staged bytes went once landed

    status, one_shot = await upload(client, headers, data)
    assert status == 200
    await assert_same_outcome(client, record, one_shot)
    h = await head(client, headers, url)  # a client that lost the last answer can find it
    assert (h.status, h.headers["Upload-Id"]) == (200, upload_id)


async def test_wrong_offset_is_409_and_changes_nothing(ready):
    client, headers = ready
    data = sample_csv(50)
    url = (await create(client, headers, len(data))).headers["Location"]
    assert (await patch(client, headers, url, 0, data[:100])).status == 204
    r = await patch(client, headers, url, 50, data[50:200])
    assert r.status == 409
    assert (await r.json())["error"]["code"] == "offset_mismatch"
    assert (await head(client, headers, url)).headers["Upload-Offset"] == "100"


async def test_checksum_mismatch_is_460_and_nothing_appended(ready):
    client, headers = ready
    data = sample_csv(50)
    url = (await create(client, headers, len(data))).headers["Location"]
    r = await patch(client, headers, url, 0, data[:300],
                    **{"Upload-Checksum": checksum(b"something else")})
    assert r.status == 460
    assert (await r.json())["error"]["code"] == "checksum_mismatch"
    assert r.headers["Tus-Resumable"] == "1.0.0"
    assert (await head(client, headers, url)).headers["Upload-Offset"] == "0"
    for algorithm in ("sha256", "sha1", "md5"):  # then the right sums are taken
        offset = int((await head(client, headers, url)).headers["Upload-Offset"])
        piece = data[offset:offset + 100]
        r = await patch(client, headers, url, offset, piece,
                        **{"Upload-Checksum": checksum(piece, algorithm)})
        assert r.status == 204, await r.text()
    r = await patch(client, headers, url, 300, data[300:],
                    **{"Upload-Checksum": "crc32 AAAA"})
    assert (r.status, (await r.json())["error"]["code"]) == (400, "unsupported_checksum_algorithm")


async def test_patch_after_termination_is_410_and_staging_removed(ready):
    client, headers = ready
    data = sample_csv(50)
    url = (await create(client, headers, len(data))).headers["Location"]
    assert (await patch(client, headers, url, 0, data[:100])).status == 204
    assert tus_files(client)
    r = await client.delete(url, headers=dict(headers, **TUS))
    assert r.status == 204 and r.headers["Tus-Resumable"] == "1.0.0"
    assert tus_files(client) == []
    r = await patch(client, headers, url, 100, data[100:])
    assert (r.status, (await r.json())["error"]["code"]) == (410, "upload_terminated")
    assert (await head(client, headers, url)).status == 410
    assert await landed(client) == []


async def test_expired_upload_is_refused_then_removed(ready, clean_db):
    """A client that never finishes: its upload expires, recovery removes the row and the
    staged bytes, nothing was published and no upload record exists."""
    client, headers = ready
    data = sample_csv(50)
    url = (await create(client, headers, len(data))).headers["Location"]
    assert (await patch(client, headers, url, 0, data[:100])).status == 204
    tus_id = url.rsplit("/", 1)[1]
    await sql(clean_db, "UPDATE resumable_uploads SET expires_at = now() - interval '1 second' "
                        "WHERE id = $1", tus_id)
    r = await patch(client, headers, url, 100, data[100:])
    assert (r.status, (await r.json())["error"]["code"]) == (410, "upload_expired")
    assert await client.app[RESUMABLE].expire() == [tus_id]
    assert (await head(client, headers, url)).status == 404
    assert tus_files(client) == [] and await landed(client) == []
    assert await sql(clean_db, "SELECT id FROM uploads") == []
    assert await sql(clean_db, "SELECT id FROM resumable_uploads") == []


async def until_leased(dsn: str, tus_id: str) -> None:
    """Wait (with a deadline) until a request holds the upload."""
    async with asyncio.timeout(10):
        while (await sql(dsn, "SELECT lease_until FROM resumable_uploads WHERE id = $1",
                         tus_id))[0]["lease_until"] is None:
            await asyncio.sleep(0.02)


async def test_two_patches_at_once_one_wins(ready):
    client, headers = ready
    data = sample_csv(200)
    url = (await create(client, headers, len(data))).headers["Location"]
    gate = asyncio.Event()

    async def slow_body():
        yield data[:500]
        await gate.wait()
        yield data[500:1000]

    first = asyncio.create_task(patch(client, headers, url, 0, slow_body(),
                                      **{"Content-Length": "1000"}))
    await until_leased(client.app[appkeys.SETTINGS].database.dsn, url.rsplit("/", 1)[1])
    second = await patch(client, headers, url, 0, data[:1000])
    assert (second.status, (await second.json())["error"]["code"]) == (423, "upload_locked")
    gate.set()
    assert (await first).status == 204
    assert (await head(client, headers, url)).headers["Upload-Offset"] == "1000"


async def test_creation_checks_like_the_one_shot_routes(ready):
    client, headers = ready
    limit = client.app[appkeys.SETTINGS].limits.max_upload_bytes
    r = await create(client, headers, limit + 1)
    assert (r.status, (await r.json())["error"]["code"]) == (413, "upload_too_large")
    assert r.headers["Tus-Resumable"] == "1.0.0"
    cases = [
        (dict(CSV_FIELDS, ingestion_name=""), 400, "missing_field"),
        (dict(CSV_FIELDS, ingestion_type="nope"), 400, "unknown_ingestion_type"),
        (dict(CSV_FIELDS, ingestion_name="nosuchspec"), 404, "spec_not_found"),
        (dict(CSV_FIELDS, max_error_rate="2"), 400, "invalid_field"),
        (dict(CSV_FIELDS, dry_run="maybe"), 400, "invalid_field"),
        (dict(CSV_FIELDS, filename="data.exe"), 415, "unsupported_file_type"),
        ({"filename": "x.zip", "ingestion_type": "national"}, 201, None),
    ]
    for fields, status, code in cases:
        r = await create(client, headers, 10, fields)
        assert r.status == status, (fields, await r.text())
        if code:
            assert (await r.json())["error"]["code"] == code
    r = await client.post(PREFIX, headers=dict(headers, **{"Tus-Resumable": "0.2.2",
                                                           "Upload-Length": "1"}))
    assert (r.status, r.headers["Tus-Version"]) == (412, "1.0.0")
    r = await client.post(PREFIX, headers=dict(headers, **TUS, **{"Upload-Metadata": "a !!"}))
    assert (r.status, (await r.json())["error"]["code"]) == (400, "missing_header")
    r = await client.post(PREFIX, headers=dict(headers, **TUS, **{"Upload-Length": "1",
                                                                  "Upload-Metadata": "a !!"}))
    assert (r.status, (await r.json())["error"]["code"]) == (400, "invalid_metadata")


async def test_patch_checks_type_version_and_owner(ready):
    client, headers = ready
    url = (await create(client, headers, 10)).headers["Location"]
    r = await client.patch(url, data=b"x", headers=dict(headers, **TUS, **{
        "Upload-Offset": "0", "Content-Type": "text/csv"}))
    assert (r.status, (await r.json())["error"]["code"]) == (415, "unsupported_media_type")
    r = await client.patch(url, data=b"x", headers=dict(headers, **{
        "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}))
    assert r.status == 412
    r = await client.head(url)
    assert r.status == 401 and r.headers["Tus-Resumable"] == "1.0.0"
    # An upload belongs to its client: another one (here read-only, so 403 first) never sees it.
    resp = await client.get("/api/ingestion/generatejwt", headers=dict(
        basic(*READ_ONLY_CLIENT), Accept="application/json"))
    other = {"Authorization": f"Bearer {(await resp.json())['token']}"}
    assert (await head(client, other, url)).status == 403
    tus_id = url.rsplit("/", 1)[1]
    assert await client.app[RESUMABLE].store.get(tus_id, "someone-else") is None
    assert (await head(client, headers, PREFIX + "/nosuch")).status == 404


async def test_a_rejected_file_answers_as_the_one_shot_route_with_its_upload_id(ready):
    """A file the one-shot route refuses gets the same error on the completing PATCH, with
    Upload-Id; the upload is then done (HEAD says rejected) and nothing is staged or landed."""
    client, headers = ready
    data = b"date,school_id\n2024-01-01,S1\n"  # teachers_present is required
    url = (await create(client, headers, len(data))).headers["Location"]
    r = await patch(client, headers, url, 0, data)
    body = await r.json()
    assert (r.status, body["error"]["code"]) == (400, "missing_column")
    upload_id = r.headers["Upload-Id"]
    assert body["error"]["details"]["upload_id"] == upload_id
    status, one_shot = await upload(client, headers, data)
    assert (status, one_shot["error"]["code"]) == (400, "missing_column")
    h = await head(client, headers, url)
    assert (h.headers["Upload-Id"], h.headers["Upload-Status"]) == (upload_id, "rejected")
    record = await (await client.get(f"/api/ingestion/uploads/{upload_id}", headers=headers)).json()
    assert record["status"] == "rejected" and record["error"]["code"] == "missing_column"
    assert tus_files(client) == [] and await landed(client) == []


async def test_upload_options_travel_in_the_metadata(ready):
    client, headers = ready
    data = sample_csv(70)  # 10 of 70 rows are invalid
    fields = dict(CSV_FIELDS, dry_run="true")
    url = (await create(client, headers, len(data), fields)).headers["Location"]
    r = await patch(client, headers, url, 0, data)
    assert (r.status, r.headers["Upload-Status"]) == (204, "uploaded")
    record = await (await client.get(r.headers["Content-Location"], headers=headers)).json()
    assert record["dry_run"] is True and record["objects"] == {"valid": None, "errors": None}
    fields = dict(CSV_FIELDS, max_error_rate="0.05")
    url = (await create(client, headers, len(data), fields)).headers["Location"]
    r = await patch(client, headers, url, 0, data)
    assert (r.status, r.headers["Upload-Status"]) == (204, "rejected")
    record = await (await client.get(r.headers["Content-Location"], headers=headers)).json()
    assert record["error"]["code"] == "error_rate_exceeded"
    assert await landed(client) == [] and tus_files(client) == []


async def test_any_instance_takes_the_next_patch(aiohttp_client, settings, ready):
    """Two app instances on one database and storage: created and half sent on one, finished
    on the other; while one holds the upload the other answers 423."""
    from ingest_server.web.app import create_app

    a, headers = ready
    b = await aiohttp_client(create_app(settings))
    data = sample_csv(300)
    url = (await create(a, headers, len(data))).headers["Location"]
    assert (await patch(a, headers, url, 0, data[:5000])).status == 204
    assert (await head(b, headers, url)).headers["Upload-Offset"] == "5000"
    gate = asyncio.Event()

    async def slow_body():
        yield data[5000:6000]
        await gate.wait()

    holding = asyncio.create_task(patch(a, headers, url, 5000, slow_body()))
    await until_leased(settings.database.dsn, url.rsplit("/", 1)[1])
    r = await patch(b, headers, url, 5000, data[5000:6000])
    assert (r.status, (await r.json())["error"]["code"]) == (423, "upload_locked")
    gate.set()
    assert (await holding).status == 204
    r = await patch(b, headers, url, 6000, data[6000:])
    assert (r.status, r.headers["Upload-Status"]) == (204, "uploaded")
    record = await (await a.get(r.headers["Content-Location"], headers=headers)).json()
    assert record["total_rows"] == 300


async def test_creation_with_upload(ready):
    """A body on the creation POST is the first PATCH: part of the file, the whole file (then
    the 201 names the upload record), or a checksum mismatch (460, with the upload's Location)."""
    client, headers = ready
    data = sample_csv(100)
    octets = {"Content-Type": "application/offset+octet-stream"}
    r = await client.post(PREFIX, data=data[:700], headers=dict(headers, **TUS, **octets, **{
        "Upload-Length": str(len(data)), "Upload-Metadata": metadata(CSV_FIELDS)}))
    assert (r.status, r.headers["Upload-Offset"]) == (201, "700"), await r.text()
    r = await patch(client, headers, r.headers["Location"], 700, data[700:])
    assert r.headers["Upload-Status"] == "uploaded"
    r = await client.post(PREFIX, data=data, headers=dict(headers, **TUS, **octets, **{
        "Upload-Length": str(len(data)), "Upload-Metadata": metadata(
            dict(CSV_FIELDS, dry_run="true"))}))
    assert (r.status, r.headers["Upload-Status"]) == (201, "uploaded")
    record = await (await client.get(r.headers["Content-Location"], headers=headers)).json()
    assert record["total_rows"] == 100 and record["dry_run"] is True
    r = await client.post(PREFIX, data=data[:50], headers=dict(headers, **TUS, **octets, **{
        "Upload-Length": str(len(data)), "Upload-Metadata": metadata(CSV_FIELDS),
        "Upload-Checksum": checksum(b"other")}))
    assert (r.status, (await r.json())["error"]["code"]) == (460, "checksum_mismatch")
    assert (await head(client, headers, r.headers["Location"])).headers["Upload-Offset"] == "0"
    r = await client.post(PREFIX, data=data[:50], headers=dict(headers, **TUS, **{
        "Content-Type": "text/csv", "Upload-Length": str(len(data)),
        "Upload-Metadata": metadata(CSV_FIELDS)}))
    assert (r.status, (await r.json())["error"]["code"]) == (415, "unsupported_media_type")
