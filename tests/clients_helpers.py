"""Several clients against one app (another office, an auditor, a reader, a state instance
pulling raw data): their settings, tokens and what they read back. Used by the tests of
duplicates, object owners, the cqube profile and raw data."""

from __future__ import annotations

import io
import zipfile

from conftest import JWT_SECRET, basic, make_settings
from ingest_server.auth import hash_secret
from ingest_server.web.app import create_app

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
    """A ZIP of one member: the same bytes for the same name and data, whenever it is made (a
    name alone would stamp the member with the time, to 2 s: two ZIPs of the same file made
    across such a boundary differ, and the second is no duplicate of the first)."""
    buf = io.BytesIO()
    member = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
    member.external_attr = 0o600 << 16  # what writestr gives a member named by a string
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(member, data)
    return buf.getvalue()
