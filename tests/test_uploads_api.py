"""Upload records and files: per-client isolation and the admin scope, listing filters, the valid
rows and formula-safe error downloads, and retraction (objects gone, record kept, audited, a
failed delete finished by a retry). Real PostgreSQL, real local storage and SeaweedFS S3."""

from __future__ import annotations

import csv
import io
import logging
import subprocess
from datetime import date, timedelta

import pytest

from conftest import JWT_SECRET, TEST_CLIENT, basic, make_settings, s3_settings
from ingest_helpers import SPEC, build_zip, landed, read_object, register, upload
from ingest_server.auth import hash_secret
from ingest_server.web.app import create_app
from ingest_server.web.appkeys import STORAGE

OTHER = ("other-office", "other-office-secret-0123456789")
ADMIN = ("auditor", "auditor-secret-0123456789abcdef")
READER = ("reader", "reader-secret-0123456789abcdef")
GOOD_AND_BAD = (b"date,school_id,teachers_present,remarks\r\n"
                b"2024-01-01,S1,5,=HYPERLINK(\"http://x\")\r\n"
                b"2024-01-02,S2,abc,+cmd\r\n"
                b"2024-01-03,,7,@SUM(A1)\r\n"
                b"2024-01-04,S4,-3,ok\r\n")
UPLOADS = "/api/ingestion/uploads"


@pytest.fixture(params=["local", "s3"])
async def app_client(request, aiohttp_client, tmp_path, clean_db):
    storage = s3_settings(request.getfixturevalue("s3_server")) if request.param == "s3" else {}
    settings = make_settings(tmp_path, clean_db, storage=storage)
    clients = [{"id": c.id, "secret_sha256": c.secret_sha256, "scopes": list(c.scopes),
                "disabled": c.disabled} for c in settings.auth.clients]
    clients += [{"id": OTHER[0], "secret_sha256": hash_secret(OTHER[1]), "scopes": ["ingest", "read"]},
                {"id": ADMIN[0], "secret_sha256": hash_secret(ADMIN[1]), "scopes": ["read", "admin"]}]
    settings = make_settings(tmp_path, clean_db, storage=storage,
                             auth={"jwt_secret": JWT_SECRET, "clients": clients})
    client = await aiohttp_client(create_app(settings))
    client.backend = request.param
    return client


async def bearer(client, who) -> dict[str, str]:
    resp = await client.get("/api/ingestion/generatejwt",
                            headers=dict(basic(*who), Accept="application/json"))
    assert resp.status == 200, await resp.text()
    return {"Authorization": f"Bearer {(await resp.json())['token']}"}


async def test_each_client_sees_only_its_own_uploads_and_admin_sees_all(app_client):
    c = app_client
    mine, theirs = await bearer(c, TEST_CLIENT), await bearer(c, OTHER)
    admin, reader = await bearer(c, ADMIN), await bearer(c, READER)
    await register(c, mine)
    _, a = await upload(c, mine, GOOD_AND_BAD, filename="mine.csv")
    _, b = await upload(c, theirs, GOOD_AND_BAD.replace(b"S4", b"S5"), filename="theirs.csv")
    assert a["client"] == TEST_CLIENT[0] and b["client"] == OTHER[0]

    async def ids(headers, **params):
        resp = await c.get(UPLOADS, headers=headers, params=params)
        assert resp.status == 200
        body = await resp.json()
        return [u["upload_id"] for u in body["uploads"]], body["total"]

    assert await ids(mine) == ([a["upload_id"]], 1)
    assert await ids(theirs) == ([b["upload_id"]], 1)
    assert await ids(reader) == ([], 0)
    assert await ids(admin) == ([b["upload_id"], a["upload_id"]], 2)  # newest first
    for path in ("", "/errors", "/valid"):
        resp = await c.get(f"{UPLOADS}/{a['upload_id']}{path}", headers=theirs)
        assert resp.status == 404 and (await resp.json())["error"]["code"] == "upload_not_found"
        assert (await c.get(f"{UPLOADS}/{a['upload_id']}{path}", headers=admin)).status == 200
        assert (await c.get(f"{UPLOADS}/{a['upload_id']}{path}", headers=mine)).status == 200
    fs = "/api/ingestion/file-status"
    assert (await c.get(fs, params={"filename": "mine.csv"}, headers=theirs)).status == 404
    assert (await c.get(fs, params={"filename": "mine.csv"}, headers=mine)).status == 200
    assert (await c.get(fs, params={"filename": "mine.csv"}, headers=admin)).status == 200
    # Retraction: another client cannot (404, as if missing); admin can without the ingest scope.
    resp = await c.delete(f"{UPLOADS}/{a['upload_id']}", headers=theirs)
    assert resp.status == 404
    resp = await c.delete(f"{UPLOADS}/{a['upload_id']}", headers=reader)
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "insufficient_scope"
    resp = await c.delete(f"{UPLOADS}/{b['upload_id']}", headers=admin)
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "retracted" and body["retracted_by"] == ADMIN[0]


async def test_listing_filters_paging_and_newest_first(app_client):
    c = app_client
    h = await bearer(c, TEST_CLIENT)
    await register(c, h)
    await register(c, h, spec=dict(SPEC, program="otherspec"))
    made = []
    for i, (name, program, spec) in enumerate([("a-jan.csv", "prog-a", "teacherspresent"),
                                               ("b-JAN.csv", "prog-b", "teacherspresent"),
                                               ("c-feb.csv", "prog-a", "otherspec")]):
        _, body = await upload(c, h, GOOD_AND_BAD + f"2024-02-0{i},S{i},1,x\r\n".encode(),
                               filename=name, fields={"ingestion_type": "event",
                                                      "ingestion_name": spec, "program_name": program})
        made.append(body["upload_id"])
    _, bad = await upload(c, h, GOOD_AND_BAD, filename="bad.csv", params={"max_error_rate": "0"})
    assert bad["status"] == "rejected"

    async def ids(**params):
        resp = await c.get(UPLOADS, headers=h, params=params)
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        return [u["upload_id"] for u in body["uploads"]], body["total"]

    newest_first = [bad["upload_id"], *reversed(made)]
    assert await ids() == (newest_first, 4)
    assert await ids(program_name="prog-a") == ([made[2], made[0]], 2)
    assert await ids(ingestion_name="otherspec") == ([made[2]], 1)
    assert await ids(filename="jan") == ([made[1], made[0]], 2)  # substring, any case
    assert await ids(status="rejected") == ([bad["upload_id"]], 1)
    assert await ids(limit="2", offset="1") == (newest_first[1:3], 4)
    today = date.today()
    assert (await ids(**{"from": today.isoformat(), "to": today.isoformat()}))[1] == 4
    assert await ids(to=(today - timedelta(days=2)).isoformat()) == ([], 0)
    assert await ids(**{"from": (today + timedelta(days=2)).isoformat()}) == ([], 0)
    for params in ({"from": "yesterday"}, {"status": "bogus"}, {"limit": "x"}):
        resp = await c.get(UPLOADS, headers=h, params=params)
        assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_field"


def _rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


async def test_valid_rows_and_error_file_exact_and_formula_safe(app_client):
    c = app_client
    h = await bearer(c, TEST_CLIENT)
    await register(c, h)
    _, body = await upload(c, h, GOOD_AND_BAD)
    uid = body["upload_id"]
    valid = await c.get(f"{UPLOADS}/{uid}/valid", headers=h)
    assert valid.status == 200 and valid.content_type == "text/csv"
    got_valid = await valid.read()
    assert _rows(got_valid) == await read_object(c, body["objects"]["valid"])
    exact = await (await c.get(f"{UPLOADS}/{uid}/errors", headers=h)).read()
    stored = b"".join([x async for x in c.app[STORAGE].read(body["objects"]["errors"])])
    assert exact == stored  # byte for byte
    resp = await c.get(f"{UPLOADS}/{uid}/errors", headers=h, params={"formula_safe": "true"})
    assert resp.status == 200
    assert 'formula-safe' in resp.headers["Content-Disposition"]
    safe, original = _rows(await resp.read()), _rows(exact)
    assert len(safe) == len(original)
    for srow, orow in zip(safe, original):
        assert srow == [("'" + cell) if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell
                        for cell in orow]
    assert ["2024-01-02", "S2", "abc", "'+cmd"] == safe[1][:4]
    assert safe[2][3] == "'@SUM(A1)"


async def test_retract_removes_objects_keeps_record_and_logs(app_client, caplog):
    c = app_client
    h = await bearer(c, TEST_CLIENT)
    await register(c, h)
    _, body = await upload(c, h, GOOD_AND_BAD)
    uid, keys = body["upload_id"], [body["objects"]["valid"], body["objects"]["errors"]]
    assert set(keys) <= set(await landed(c))
    with caplog.at_level(logging.INFO, logger="ingest_server.retraction"):
        resp = await c.delete(f"{UPLOADS}/{uid}", headers=h)
    assert resp.status == 200, await resp.text()
    done = await resp.json()
    assert done["status"] == "retracted" and done["retracted_by"] == TEST_CLIENT[0]
    assert done["retracted_at"] and done["retract_error"] is None
    assert not set(keys) & set(await landed(c))
    line = next(r for r in caplog.records if r.getMessage() == "upload retracted")
    assert line.fields["upload_id"] == uid and line.fields["client"] == TEST_CLIENT[0]
    again = await c.delete(f"{UPLOADS}/{uid}", headers=h)  # idempotent
    assert again.status == 200 and (await again.json())["status"] == "retracted"
    gone = await c.get(f"{UPLOADS}/{uid}/errors", headers=h)
    assert gone.status == 410 and (await gone.json())["error"]["code"] == "upload_retracted"
    listed = await (await c.get(UPLOADS, headers=h, params={"status": "retracted"})).json()
    assert [u["upload_id"] for u in listed["uploads"]] == [uid]
    # The same file may land again once the earlier copy is retracted (not a duplicate).
    _, again_up = await upload(c, h, GOOD_AND_BAD)
    assert again_up["status"] == "uploaded" and "duplicate_of" not in again_up["objects"]


async def test_only_uploaded_files_can_be_retracted(app_client):
    c = app_client
    h = await bearer(c, TEST_CLIENT)
    await register(c, h)
    _, rejected = await upload(c, h, GOOD_AND_BAD, params={"max_error_rate": "0"})
    _, dry = await upload(c, h, GOOD_AND_BAD, params={"dry_run": "true"})
    for uid in (rejected["upload_id"], dry["upload_id"]):
        resp = await c.delete(f"{UPLOADS}/{uid}", headers=h)
        assert resp.status == 409 and (await resp.json())["error"]["code"] == "not_retractable"


async def test_retracting_a_national_zip_removes_every_member_file(app_client):
    c = app_client
    h = await bearer(c, TEST_CLIENT)
    await register(c, h)
    await register(c, h, spec=dict(SPEC, program="other"))
    archive = build_zip([("teacherspresent.csv", GOOD_AND_BAD), ("other.csv", GOOD_AND_BAD)])
    _, body = await upload(c, h, archive, path="/api/ingestion/national_programs", fields={},
                           filename="pack.zip", content_type="application/zip")
    keys = body["objects"]["valid"] + body["objects"]["errors"]
    assert len(keys) == 4 and set(keys) <= set(await landed(c))
    valid = await c.get(f"{UPLOADS}/{body['upload_id']}/valid", headers=h,
                        params={"member": "other"})
    assert valid.status == 200
    resp = await c.delete(f"{UPLOADS}/{body['upload_id']}", headers=h)
    assert resp.status == 200
    assert not set(keys) & set(await landed(c))


async def test_a_failed_delete_leaves_retracting_and_a_retry_finishes(app_client, tmp_path):
    """A real failure: the valid rows file is made immutable (chattr +i), so even root cannot
    delete it. The upload is not reported retracted; after the fault is gone a retry finishes."""
    c = app_client
    if c.backend != "local":
        pytest.skip("the fault is made on the local file system")
    h = await bearer(c, TEST_CLIENT)
    await register(c, h)
    _, body = await upload(c, h, GOOD_AND_BAD)
    uid = body["upload_id"]
    path = tmp_path / "storage" / body["objects"]["valid"]
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available on this file system")
    try:
        resp = await c.delete(f"{UPLOADS}/{uid}", headers=h)
        assert resp.status == 502
        err = (await resp.json())["error"]
        assert err["code"] == "retract_incomplete"
        assert err["details"]["remaining"] == [body["objects"]["valid"]]
        record = await (await c.get(f"{UPLOADS}/{uid}", headers=h)).json()
        assert record["status"] == "retracting"
        assert record["retract_error"]["remaining"][0]["key"] == body["objects"]["valid"]
        assert path.exists()
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)
    resp = await c.delete(f"{UPLOADS}/{uid}", headers=h)
    assert resp.status == 200 and (await resp.json())["status"] == "retracted"
    assert not path.exists()
    assert not {body["objects"]["valid"], body["objects"]["errors"]} & set(await landed(c))


async def test_the_open_token_endpoint_never_grants_admin(aiohttp_client, tmp_path, clean_db):
    settings = make_settings(tmp_path, clean_db, auth={"open_token_endpoint": True})
    c = await aiohttp_client(create_app(settings))
    resp = await c.get("/api/ingestion/generatejwt", headers={"Accept": "application/json"})
    assert resp.status == 200
    body = await resp.json()
    assert body["scope"].split() == ["ingest", "read", "spec"]
    h = {"Authorization": f"Bearer {body['token']}"}
    await register(c, h)
    _, up = await upload(c, h, GOOD_AND_BAD)
    assert up["client"] == "anonymous"
    mine = await bearer(c, TEST_CLIENT)
    assert (await c.get(f"{UPLOADS}/{up['upload_id']}", headers=mine)).status == 404
