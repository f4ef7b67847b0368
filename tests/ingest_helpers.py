"""Helpers shared by the ingestion tests: specs, forms, and reading what landed in storage."""

from __future__ import annotations

import csv
import io
import zipfile

import aiohttp
import asyncpg

from ingest_server.storage import LocalStorage
from ingest_server.web.appkeys import INGEST, STORAGE
from testkit.stored import published
from testkit.polling import until

SPEC = {
    "program": "teacherspresent",
    "input": {
        "type": "object",
        "properties": {
            "date": {"type": "string", "shouldnotnull": True},
            "school_id": {"type": "string", "shouldnotnull": True},
            "teachers_present": {"type": "number", "shouldnotnull": True},
            "remarks": {"type": "string"},
            "score": {"type": "number"},
        },
        "required": ["date", "school_id", "teachers_present"],
    },
}


async def notified(client) -> None:
    """Wait until the ``upload_finished`` hooks (background work) of every upload so far ran."""
    service = client.app[INGEST]
    await until(lambda: service.notifier.pending == 0)


async def register(client, headers, spec=SPEC, kind="event"):
    resp = await client.post(f"/api/spec/{kind}", json=spec, headers=headers)
    assert resp.status in (200, 201), await resp.text()
    return await resp.json()


def form(content: bytes, *, fields: dict | None = None, file_first: bool = False,
         filename: str = "data.csv", content_type: str = "text/csv") -> aiohttp.FormData:
    data = aiohttp.FormData()
    fields = fields if fields is not None else {
        "ingestion_type": "event", "ingestion_name": "teacherspresent",
        "program_name": "school-attendance"}

    def add_fields():
        for k, v in fields.items():
            data.add_field(k, v)

    if not file_first:
        add_fields()
    data.add_field("file", io.BytesIO(content), filename=filename, content_type=content_type)
    if file_first:
        add_fields()
    return data


async def upload(client, headers, content: bytes, *, path="/api/ingestion/new_programs",
                 params=None, extra_headers=None, **kw):
    h = dict(headers, **(extra_headers or {}))
    resp = await client.post(path, data=form(content, **kw), headers=h, params=params)
    return resp.status, await resp.json()


async def landed(client) -> list[str]:
    """Every published object in the app's storage, whichever the backend."""
    return await published(client.app[STORAGE])


async def read_object(client, key: str) -> list[list[str]]:
    """A published CSV object, parsed."""
    data = b"".join([chunk async for chunk in client.app[STORAGE].read(key)])
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


async def staged_left(client) -> list[str]:
    """Staged (unpublished) data left behind: local staging files or open S3 multipart uploads."""
    storage = client.app[STORAGE]
    if isinstance(storage, LocalStorage):
        return sorted(str(p) for p in storage.staging.rglob("*") if p.is_file())
    page = await storage.client.list_multipart_uploads(Bucket=storage.bucket,
                                                       Prefix=storage.prefix)
    return sorted(u["Key"] for u in page.get("Uploads", []))


def build_zip(entries, method=zipfile.ZIP_DEFLATED) -> bytes:
    """A zip of ``(name or ZipInfo, bytes)`` pairs, built in memory."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return buf.getvalue()


async def statuses(dsn: str) -> list[str]:
    """The status of every upload recorded in the database at ``dsn``."""
    conn = await asyncpg.connect(dsn)
    try:
        return [r["status"] for r in await conn.fetch("SELECT status FROM uploads")]
    finally:
        await conn.close()
