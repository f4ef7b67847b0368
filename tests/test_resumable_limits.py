"""tus creation refuses what the upload could never do, before any byte is sent: every option
checked at creation (issue 21 item 15), against the real app, database and storage."""

from __future__ import annotations

import pytest

from ingest_helpers import SPEC, register
from resumable_helpers import CSV_FIELDS, create, metadata, sample_csv, sql


@pytest.fixture
async def ready(client, auth_headers, clean_db):
    await sql(clean_db, "TRUNCATE resumable_uploads")
    await register(client, auth_headers, spec=SPEC)
    return client, auth_headers


@pytest.mark.parametrize("encoding", ["punycode", "utf-7", "undefined", "no-such-codec", "rot13"])
async def test_an_unusable_encoding_is_refused_at_creation(ready, clean_db, encoding):
    """Was: 201, then 400 ``unknown_encoding`` only on the PATCH that completed the file."""
    client, headers = ready
    data = sample_csv(50)
    for body in (None, data):  # creation, and creation-with-upload (the body is never read)
        extra = {"Content-Type": "application/offset+octet-stream"} if body else {}
        r = await client.post("/api/ingestion/resumable", data=body, headers={
            **headers, "Tus-Resumable": "1.0.0", "Upload-Length": str(len(data)),
            "Upload-Metadata": metadata(dict(CSV_FIELDS, encoding=encoding)), **extra})
        answer = await r.json()
        assert (r.status, answer["error"]["code"]) == (400, "unknown_encoding"), answer
        assert answer["error"]["details"]["encoding"] == encoding
        assert "Location" not in r.headers
    assert await sql(clean_db, "SELECT id FROM resumable_uploads") == []
    assert await sql(clean_db, "SELECT id FROM uploads") == []


async def test_a_file_encoding_is_accepted_at_creation(ready, clean_db):
    client, headers = ready
    for encoding in ("latin-1", "UTF-8", "cp1252", "utf-16"):
        r = await create(client, headers, 10, dict(CSV_FIELDS, encoding=encoding))
        assert r.status == 201, (encoding, await r.text())
    rows = await sql(clean_db, "SELECT request->>'encoding' AS e FROM resumable_uploads ORDER BY e")
    assert [r["e"] for r in rows] == sorted(["latin-1", "UTF-8", "cp1252", "utf-16"])

