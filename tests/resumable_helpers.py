"""Helpers of the resumable-upload tests: tus headers, a raw tus client on aiohttp, sample data."""

from __future__ import annotations

import base64
import hashlib

from testkit.sql import fetch
import json
from ingest_server.web import appkeys

PREFIX = "/api/ingestion/resumable"
TUS = {"Tus-Resumable": "1.0.0"}
CSV_FIELDS = {"filename": "data.csv", "ingestion_type": "event",
              "ingestion_name": "teacherspresent", "program_name": "school-attendance"}


def metadata(fields: dict[str, str]) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in fields.items())


def sample_csv(rows: int) -> bytes:
    """Valid rows with every 7th one invalid (no teachers_present), so both objects are written."""
    out = [b"date,school_id,teachers_present,remarks,score"]
    for i in range(rows):
        present = b"" if i % 7 == 3 else str(i % 40).encode()
        out.append(b"2024-01-%02d,S%d,%s,remark %d,%d.5" % (i % 28 + 1, i, present, i, i % 10))
    return b"\n".join(out) + b"\n"


def checksum(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm} {base64.b64encode(hashlib.new(algorithm, data).digest()).decode()}"


async def create(client, headers, length: int, fields=None, **extra):
    h = dict(headers, **TUS, **{"Upload-Length": str(length),
                                "Upload-Metadata": metadata(fields or CSV_FIELDS)}, **extra)
    return await client.post(PREFIX, headers=h)


async def patch(client, headers, url: str, offset: int, data: bytes, **extra):
    h = dict(headers, **TUS, **{"Upload-Offset": str(offset),
                                "Content-Type": "application/offset+octet-stream"}, **extra)
    return await client.patch(url, data=data, headers=h)


async def head(client, headers, url: str):
    return await client.head(url, headers=dict(headers, **TUS))

sql = fetch  # a query on a fresh connection


async def assert_same_outcome(client, resumable: dict, one_shot: dict) -> None:
    """The same answer but for ids and times (keys differ only by the upload id), and every
    object byte for byte."""
    def normal(body: dict) -> dict:
        text = json.dumps({k: v for k, v in body.items()
                           if k not in {"pid", "started_at", "finished_at"}})
        return json.loads(text.replace(body["upload_id"], "X"))

    assert normal(resumable) == normal(one_shot)
    storage = client.app[appkeys.STORAGE]
    mine, theirs = resumable["objects"], one_shot["objects"]
    keys = [pair for kind in ("valid", "errors")
            for pair in zip(_listed(mine[kind]), _listed(theirs[kind]))]
    assert keys
    for ka, kb in keys:
        got = b"".join([c async for c in storage.read(ka)])
        want = b"".join([c async for c in storage.read(kb)])
        assert got == want and got


def _listed(value) -> list[str]:
    return [k for k in (value if isinstance(value, list) else [value]) if k]
