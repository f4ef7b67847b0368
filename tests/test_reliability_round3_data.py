"""Issue 21, items 1, 2, 4, 5 and 14: data that a record says is there and is not, and one client
reading another's. Production app, real PostgreSQL, real local storage (and SeaweedFS S3 for the
cqube layout's replacement)."""

from __future__ import annotations

import asyncio
import io
import zipfile
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from yarl import URL

from conftest import JWT_SECRET, RAWDATA_CLIENT as PULLER, TEST_CLIENT, basic, make_settings, \
    s3_settings
from ingest_helpers import SPEC, landed, read_object, register, upload
from ingest_server.auth import hash_secret
from ingest_server.web.app import create_app
from ingest_server.web.appkeys import SETTINGS, STORAGE

OTHER = ("other-office", "other-office-secret-0123456789")
ADMIN = ("auditor", "auditor-secret-0123456789abcdef")
READER = ("reader", "reader-secret-0123456789abcdef")
UPLOADS = "/api/ingestion/uploads"
DATA = (b"date,school_id,teachers_present,remarks\r\n"
        b"2024-01-01,S1,5,fine\r\n2024-01-02,S2,abc,bad\r\n2024-01-03,S3,7,ok\r\n")
VALID_ROWS = [["date", "school_id", "teachers_present", "remarks"],
              ["2024-01-01", "S1", "5", "fine"], ["2024-01-03", "S3", "7", "ok"]]
CQUBE_SPEC = {"program": "schools", "input": {"type": "object", "properties": {
    "school_name": {"type": "string", "shouldnotnull": True},
    "students": {"type": "number"}}, "required": ["school_name", "students"]}}
CQUBE_FORM = {"ingestion_type": "event", "ingestion_name": "schools",
              "program_name": "school-infra"}


def clients(settings) -> list[dict]:
    out = [{"id": c.id, "secret_sha256": c.secret_sha256, "scopes": list(c.scopes),
            "disabled": c.disabled} for c in settings.auth.clients]
    return out + [
        {"id": OTHER[0], "secret_sha256": hash_secret(OTHER[1]), "scopes": ["ingest", "read"]},
        {"id": ADMIN[0], "secret_sha256": hash_secret(ADMIN[1]), "scopes": ["read", "admin"]},
    ]


def settings_for(tmp_path, dsn, **sections):
    base = make_settings(tmp_path, dsn, **sections)
    auth = dict(sections.pop("auth", {}), jwt_secret=JWT_SECRET, clients=clients(base))
    return make_settings(tmp_path, dsn, auth=auth, **sections)


async def app(aiohttp_client, settings):
    return await aiohttp_client(create_app(settings))


async def bearer(client, who) -> dict[str, str]:
    resp = await client.get("/api/ingestion/generatejwt",
                            headers=dict(basic(*who), Accept="application/json"))
    assert resp.status == 200, await resp.text()
    return {"Authorization": f"Bearer {(await resp.json())['token']}"}


async def record(client, headers, upload_id) -> dict:
    resp = await client.get(f"{UPLOADS}/{upload_id}", headers=headers)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def valid_of(client, headers, upload_id):
    resp = await client.get(f"{UPLOADS}/{upload_id}/valid", headers=headers)
    return resp.status, await resp.read()


def zipped(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(name, data)
    return buf.getvalue()


# --- item 1: duplicates per client; a retraction never leaves a record pointing at gone objects

async def test_another_clients_identical_file_lands_as_its_own(aiohttp_client, tmp_path,
                                                               clean_db):
    c = await app(aiohttp_client, settings_for(tmp_path, clean_db))
    mine, theirs = await bearer(c, TEST_CLIENT), await bearer(c, OTHER)
    await register(c, mine)
    _, a = await upload(c, mine, DATA)
    _, b = await upload(c, theirs, DATA)
    assert b["status"] == "uploaded" and "duplicate_of" not in b["objects"], b
    assert a["upload_id"] not in str(b)  # nothing of A's upload is shown to B
    assert not set(a["objects"].values()) & set(b["objects"].values())
    assert await read_object(c, b["objects"]["valid"]) == VALID_ROWS
    resp = await c.delete(f"{UPLOADS}/{a['upload_id']}", headers=mine)
    assert resp.status == 200 and (await resp.json())["status"] == "retracted"
    assert (await record(c, theirs, b["upload_id"]))["status"] == "uploaded"
    status, body = await valid_of(c, theirs, b["upload_id"])
    assert status == 200 and body.decode().splitlines()[1] == "2024-01-01,S1,5,fine"
    assert sorted(await landed(c)) == sorted(b["objects"].values())


@pytest.mark.parametrize("route", ["new_programs", "national_programs"])
async def test_retracting_an_upload_retracts_its_duplicates_and_the_file_lands_again(
        aiohttp_client, tmp_path, clean_db, route):
    c = await app(aiohttp_client, settings_for(tmp_path, clean_db))
    h = await bearer(c, TEST_CLIENT)
    await register(c, h)
    send = (lambda: upload(c, h, DATA)) if route == "new_programs" else \
        (lambda: upload(c, h, zipped("teacherspresent.csv", DATA), fields={},
                        path="/api/ingestion/national_programs", filename="tp.zip",
                        content_type="application/zip"))
    _, first = await send()
    _, second = await send()
    assert second["objects"]["duplicate_of"] == first["upload_id"]
    objects = sorted(await landed(c))
    resp = await c.delete(f"{UPLOADS}/{first['upload_id']}", headers=h)
    assert resp.status == 200, await resp.text()
    assert await landed(c) == []
    dup = await record(c, h, second["upload_id"])
    assert (dup["status"], dup["retracted_by"]) == ("retracted", TEST_CLIENT[0])
    status, _ = await valid_of(c, h, second["upload_id"])
    assert status == 410
    # The same bytes again land again, as this upload's own objects (not "duplicate of" a
    # retracted upload).
    _, third = await send()
    assert third["status"] == "uploaded" and "duplicate_of" not in third["objects"], third
    assert len(await landed(c)) == len(objects)
    valid = third["objects"]["valid"]
    key = valid[0] if isinstance(valid, list) else valid
    assert await read_object(c, key) == VALID_ROWS
    assert third["upload_id"] in key


async def test_retraction_racing_identical_uploads_leaves_no_record_without_its_data(
        aiohttp_client, tmp_path, clean_db):
    """The original retracted while 6 more copies of its bytes arrive at once: whatever the
    order, every upload that ends `uploaded` has its data in storage (its own objects, or an
    original that is still `uploaded`), and every retracted one's own objects are gone."""
    c = await app(aiohttp_client, settings_for(tmp_path, clean_db))
    h = await bearer(c, TEST_CLIENT)
    await register(c, h)
    _, first = await upload(c, h, DATA)
    _, _ = await upload(c, h, DATA)  # a duplicate of it, to be retracted with it
    results = await asyncio.gather(
        c.delete(f"{UPLOADS}/{first['upload_id']}", headers=h),
        *(upload(c, h, DATA) for _ in range(6)))
    assert results[0].status == 200, await results[0].text()
    stored = set(await landed(c))
    listing = await (await c.get(UPLOADS, headers=h, params={"limit": "50"})).json()
    records = {u["upload_id"]: u for u in listing["uploads"]}
    assert len(records) == 8
    for u in records.values():
        original = records.get(u["objects"].get("duplicate_of"), u)
        keys = {original["objects"]["valid"], original["objects"]["errors"]}
        if u["status"] == "uploaded":
            assert original["status"] == "uploaded" and keys <= stored, u
            assert await read_object(c, original["objects"]["valid"]) == VALID_ROWS
        else:
            assert u["status"] == "retracted", u
            if original is u:
                assert not keys & stored, u
    assert any(u["status"] == "uploaded" for u in records.values())


async def test_retracting_a_duplicate_leaves_the_original(aiohttp_client, tmp_path, clean_db):
    c = await app(aiohttp_client, settings_for(tmp_path, clean_db))
    h = await bearer(c, TEST_CLIENT)
    await register(c, h)
    _, first = await upload(c, h, DATA)
    _, second = await upload(c, h, DATA)
    assert second["objects"]["duplicate_of"] == first["upload_id"]
    resp = await c.delete(f"{UPLOADS}/{second['upload_id']}", headers=h)
    assert resp.status == 200 and (await resp.json())["status"] == "retracted"
    assert (await record(c, h, first["upload_id"]))["status"] == "uploaded"
    assert await read_object(c, first["objects"]["valid"]) == VALID_ROWS
    # and the original is still what the same bytes are a duplicate of
    _, third = await upload(c, h, DATA)
    assert third["objects"]["duplicate_of"] == first["upload_id"]


async def test_cqube_profile_duplicate_of_a_retracted_upload_is_not_uploaded(
        aiohttp_client, tmp_path, clean_db):
    c = await app(aiohttp_client, settings_for(tmp_path, clean_db, compat={"profile": "cqube"}))
    h = await bearer(c, TEST_CLIENT)
    await register(c, h)
    _, first = await upload(c, h, DATA, filename="a.csv")
    _, second = await upload(c, h, DATA, filename="a.csv")
    assert first["message"] == second["message"] == "File is being processed"
    assert second["objects"]["duplicate_of"] == first["upload_id"]
    assert (await c.delete(f"{UPLOADS}/{first['upload_id']}", headers=h)).status == 200
    resp = await c.get("/api/ingestion/file-status", headers=h, params={
        "filename": "a.csv", "ingestion_type": "event", "ingestion_name": "teacherspresent"})
    body = await resp.json()
    assert resp.status == 200 and body["response"]["pid"] == second["pid"]
    assert body["response"]["file_status"].startswith("Error ->"), body
    _, third = await upload(c, h, DATA, filename="a.csv")
    assert third["file_status"] == "Uploaded" and "duplicate_of" not in third["objects"]
    assert await read_object(c, third["objects"]["valid"]) == VALID_ROWS


async def test_migration_retracts_duplicates_left_pointing_at_a_retracted_upload(
        aiohttp_client, tmp_path, clean_db):
    """Records left by the earlier code (a duplicate still 'uploaded' after its original was
    retracted): migration 080 marks them retracted; meanwhile they are never anyone's
    duplicate_of."""
    c = await app(aiohttp_client, settings_for(tmp_path, clean_db))
    h = await bearer(c, TEST_CLIENT)
    await register(c, h)
    _, first = await upload(c, h, DATA)
    _, second = await upload(c, h, DATA)
    conn = await asyncpg.connect(clean_db)
    try:  # what the earlier code did: the original retracted, its duplicate left alone
        await conn.execute("UPDATE uploads SET status = 'retracted', retracted_by = 'x', "
                           "retracted_at = now() WHERE id = $1", first["upload_id"])
        for key in first["objects"].values():
            await c.app[STORAGE].delete(key)
        _, third = await upload(c, h, DATA)
        assert "duplicate_of" not in third["objects"], third
        assert await read_object(c, third["objects"]["valid"]) == VALID_ROWS
        sql = (Path(__file__).parent.parent / "ingest_server" / "migrations" /
               "080_duplicates_follow_retraction.sql").read_text()
        await conn.execute(sql)
        rows = dict(await conn.fetch("SELECT id, status FROM uploads"))
    finally:
        await conn.close()
    assert rows == {first["upload_id"]: "retracted", second["upload_id"]: "retracted",
                    third["upload_id"]: "uploaded"}


# --- item 2: the cqube layout's replacement ---------------------------------------------------

@pytest.fixture(params=["local", "s3"])
async def cqube_layout(request, aiohttp_client, tmp_path, clean_db):
    storage = s3_settings(request.getfixturevalue("s3_server")) if request.param == "s3" else {}
    c = await app(aiohttp_client, settings_for(tmp_path, clean_db,
                                               storage={**storage, "layout": "cqube"}))
    await register(c, await bearer(c, TEST_CLIENT), CQUBE_SPEC)
    return c


async def test_a_replaced_upload_is_told_and_its_retraction_spares_the_replacement(cqube_layout):
    c = cqube_layout
    mine, theirs = await bearer(c, TEST_CLIENT), await bearer(c, OTHER)
    _, a = await upload(c, mine, b"school_name,students\nA-school,1\n", fields=CQUBE_FORM)
    _, b = await upload(c, theirs, b"school_name,students\nB-school,2\n", fields=CQUBE_FORM)
    key = a["objects"]["valid"]
    assert b["objects"]["valid"] == key  # same name, same day: B replaced A's object
    ra = await record(c, mine, a["upload_id"])
    assert [(r["part"], r["key"]) for r in ra["replaced"]] == [("valid", key)]
    assert ra["replaced"][0]["by_upload_id"] is None  # another client's: not named
    assert b["upload_id"] not in str(ra)
    status, body = await valid_of(c, mine, a["upload_id"])
    assert status == 410 and b"B-school" not in body
    assert (await c.get(f"{UPLOADS}/{a['upload_id']}/valid", headers=mine)).status == 410
    # A retracts: only what A still owns goes (nothing here: it had no error file).
    resp = await c.delete(f"{UPLOADS}/{a['upload_id']}", headers=mine)
    assert resp.status == 200 and (await resp.json())["status"] == "retracted"
    assert await read_object(c, key) == [["school_name", "students"], ["'B-school'", "2"]]
    assert (await record(c, theirs, b["upload_id"]))["status"] == "uploaded"
    status, body = await valid_of(c, theirs, b["upload_id"])
    assert status == 200 and b"B-school" in body
    assert "replaced" not in await record(c, theirs, b["upload_id"])


async def test_own_replacement_is_named_and_the_owner_retraction_removes_the_object(cqube_layout):
    c = cqube_layout
    h = await bearer(c, TEST_CLIENT)
    _, a1 = await upload(c, h, b"school_name,students\nFirst,1\nbad,x\n", fields=CQUBE_FORM)
    _, a2 = await upload(c, h, b"school_name,students\nSecond,2\n", fields=CQUBE_FORM)
    r1 = await record(c, h, a1["upload_id"])
    assert [(r["part"], r["by_upload_id"]) for r in r1["replaced"]] == [
        ("valid", a2["upload_id"])]
    # A1's error file is its own (one per upload): a retraction of A1 deletes it and only it.
    resp = await c.delete(f"{UPLOADS}/{a1['upload_id']}", headers=h)
    assert resp.status == 200
    assert sorted(await landed(c)) == [a2["objects"]["valid"]]
    assert await read_object(c, a2["objects"]["valid"]) == [["school_name", "students"],
                                                             ["'Second'", "2"]]
    resp = await c.delete(f"{UPLOADS}/{a2['upload_id']}", headers=h)
    assert resp.status == 200 and await landed(c) == []


# --- item 4: cqube file-status is per client --------------------------------------------------

async def test_cqube_file_status_answers_another_clients_upload_as_unknown(
        aiohttp_client, tmp_path, clean_db):
    c = await app(aiohttp_client, settings_for(tmp_path, clean_db, compat={"profile": "cqube"}))
    mine, theirs, admin = (await bearer(c, TEST_CLIENT), await bearer(c, OTHER),
                           await bearer(c, ADMIN))
    await register(c, mine)
    await upload(c, mine, DATA, filename="mine.csv")
    await upload(c, mine, zipped("teacherspresent.csv", DATA), fields={},
                 path="/api/ingestion/national_programs", filename="teacherspresent.zip",
                 content_type="application/zip")
    for name, kind in (("mine.csv", "teacherspresent"), ("teacherspresent.zip",
                                                         "teacherspresent")):
        q = {"filename": name, "ingestion_type": "event", "ingestion_name": kind}
        resp = await c.get("/api/ingestion/file-status", headers=theirs, params=q)
        assert (resp.status, await resp.json()) == (400, {"message": "No records found"})
        resp = await c.get("/api/ingestion/file-status", headers=mine, params=q)
        assert resp.status == 200 and (await resp.json())["upload"]["client"] == TEST_CLIENT[0]
        resp = await c.get("/api/ingestion/file-status", headers=admin, params=q)
        assert resp.status == 200


# --- items 5 and 14: getRawData is an explicit grant; its links never come from a hostile Host

async def national(c, h):
    await register(c, h)
    _, body = await upload(c, h, zipped("teacherspresent.csv", DATA), fields={},
                           path="/api/ingestion/national_programs", filename="tp.zip",
                           content_type="application/zip")
    assert body["status"] == "uploaded", body
    return body


RAW = "/api/ingestion/getRawData"
PROGRAMS = {"program_names": ["teacherspresent"]}


async def test_get_raw_data_needs_the_rawdata_scope(aiohttp_client, tmp_path, clean_db):
    c = await app(aiohttp_client, settings_for(tmp_path, clean_db))
    await national(c, await bearer(c, TEST_CLIENT))
    for who in (TEST_CLIENT, OTHER, READER):
        resp = await c.post(RAW, json=PROGRAMS, headers=await bearer(c, who))
        body = await resp.json()
        assert resp.status == 403 and body["error"]["code"] == "insufficient_scope", body
        assert body["error"]["details"]["required_scope"] == "rawdata"
    resp = await c.post(RAW, json=PROGRAMS, headers=await bearer(c, PULLER))
    assert resp.status == 200
    [entry] = (await resp.json())["data"]
    [link] = entry["urls"]
    got = await c.get(URL(link).path_qs)
    assert got.status == 200 and b"2024-01-03,S3,7,ok" in await got.read()


async def test_cqube_profile_get_raw_data_is_guarded_as_cqube_does(aiohttp_client, tmp_path,
                                                                    clean_db):
    """cQube's controller guards getRawData with the JwtGuard of its other ingestion routes:
    a token that may read file-status may pull raw data (no extra grant)."""
    c = await app(aiohttp_client, settings_for(tmp_path, clean_db, compat={"profile": "cqube"}))
    await national(c, await bearer(c, TEST_CLIENT))
    for who in (TEST_CLIENT, READER, PULLER):
        resp = await c.post(RAW, json=PROGRAMS, headers=await bearer(c, who))
        assert resp.status == 200, await resp.text()
        assert len((await resp.json())["data"][0]["urls"]) == 1
    resp = await c.post(RAW, json=PROGRAMS)
    assert resp.status == 403


async def raw_request(c, host: bytes | None, token: str) -> tuple[int, bytes]:
    """POST getRawData with exactly this Host header line (None: none at all), over a socket."""
    body = b'{"program_names": ["teacherspresent"]}'
    reader, writer = await asyncio.open_connection("127.0.0.1", c.server.port)
    head = [b"POST " + RAW.encode() + b" HTTP/1.1"]
    if host is not None:
        head.append(b"Host: " + host)
    head += [b"Authorization: Bearer " + token.encode(), b"Content-Type: application/json",
             b"Content-Length: " + str(len(body)).encode(), b"Connection: close"]
    writer.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    status = int(answer.split(b" ", 2)[1])
    return status, answer.split(b"\r\n\r\n", 1)[1]


HOSTILE = [b"evil.example/x?y=", b"", b"\xc3\xa9vil.example", b"a b", b"evil.example@x",
           b"x:99999999", b"[::1", b"evil.example#frag", None]


@pytest.mark.parametrize("host", HOSTILE)
async def test_links_never_carry_a_hostile_host(aiohttp_client, tmp_path, clean_db, host):
    c = await app(aiohttp_client, settings_for(tmp_path, clean_db))
    await national(c, await bearer(c, TEST_CLIENT))
    token = (await bearer(c, PULLER))["Authorization"].split()[1]
    status, body = await raw_request(c, host, token)
    assert status == 400, body  # never a 500, never a link built on it
    if host is None:  # HTTP/1.1 without Host: aiohttp's own parser refuses it
        assert body.startswith(b"Missing 'Host' header"), body
    else:
        assert b'"invalid_host"' in body and b"server.public_url" in body
    ok_status, ok = await raw_request(c, b"ingest.example.org:8443", token)
    assert ok_status == 200 and b"http://ingest.example.org:8443/api/ingestion/raw?" in ok


@pytest.mark.parametrize("host", HOSTILE)
async def test_links_use_the_configured_public_url(aiohttp_client, tmp_path, clean_db, host):
    c = await app(aiohttp_client, settings_for(
        tmp_path, clean_db, server={"public_url": "https://ingest.example.org/base/"}))
    await national(c, await bearer(c, TEST_CLIENT))
    token = (await bearer(c, PULLER))["Authorization"].split()[1]
    status, body = await raw_request(c, host, token)
    if host is None:  # HTTP/1.1 without Host: aiohttp's own parser refuses it, before us
        assert (status, body) == (400, b"Missing 'Host' header in request.")
        return
    assert status == 200, body
    assert body.count(b"https://ingest.example.org/base/api/ingestion/raw?key=") == 1
    assert b"evil" not in body


async def test_migration_gives_each_existing_key_to_its_latest_upload(cqube_layout):
    """Migration 081 on objects published before ownership was recorded: each key belongs to
    the latest upload that wrote it, so a retraction of the earlier one spares it."""
    c = cqube_layout
    h = await bearer(c, TEST_CLIENT)
    _, a1 = await upload(c, h, b"school_name,students\nFirst,1\n", fields=CQUBE_FORM)
    _, a2 = await upload(c, h, b"school_name,students\nSecond,2\n", fields=CQUBE_FORM)
    sql = (Path(__file__).parent.parent / "ingest_server" / "migrations" /
           "081_object_owners.sql").read_text()
    conn = await asyncpg.connect(c.app[SETTINGS].database.dsn)
    try:  # as before the migration: no ownership recorded, no `replaced`
        await conn.execute("TRUNCATE object_owners")
        await conn.execute("UPDATE uploads SET replaced = NULL")
        await conn.execute(sql)
        owners = dict(await conn.fetch("SELECT key, upload_id FROM object_owners"))
    finally:
        await conn.close()
    assert owners == {a2["objects"]["valid"]: a2["upload_id"]}
    assert (await c.delete(f"{UPLOADS}/{a1['upload_id']}", headers=h)).status == 200
    assert await read_object(c, a2["objects"]["valid"]) == [["school_name", "students"],
                                                             ["'Second'", "2"]]


async def test_when_the_replacing_upload_is_retracted_the_replaced_one_stays_without_it(
        cqube_layout):
    """A national ZIP sent twice on one day (the cqube layout: one emission file), then the later
    one retracted: its object is gone, and the earlier upload neither offers a link to it
    (getRawData) nor claims it back (410 object_replaced, not a 404 of a file it owned)."""
    c = cqube_layout
    h, pull = await bearer(c, TEST_CLIENT), await bearer(c, PULLER)

    async def send(rows: bytes):
        _, body = await upload(c, h, zipped("schools.csv", b"school_name,students\n" + rows),
                               fields={}, path="/api/ingestion/national_programs",
                               filename="schools.zip", content_type="application/zip")
        assert body["status"] == "uploaded", body
        return body

    async def links():
        resp = await c.post(RAW, json={"program_names": ["schools"]}, headers=pull)
        assert resp.status == 200, await resp.text()
        return (await resp.json())["data"][0]["urls"]

    first = await send(b"First,1\n")
    second = await send(b"Second,2\n")
    [key] = second["objects"]["valid"]
    assert first["objects"]["valid"] == [key]
    [link] = await links()
    async with aiohttp.ClientSession() as session, session.get(link) as got:  # S3 or us
        assert got.status == 200 and b"'Second',2" in await got.read()
    assert (await c.delete(f"{UPLOADS}/{second['upload_id']}", headers=h)).status == 200
    assert key not in await landed(c)
    assert await links() == []
    resp = await c.get(f"{UPLOADS}/{first['upload_id']}/valid", headers=h,
                       params={"member": "schools"})
    body = await resp.json()
    assert resp.status == 410 and body["error"]["code"] == "object_replaced", body
    assert body["error"]["details"]["by_upload_id"] == second["upload_id"]
