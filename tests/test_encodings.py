"""File encodings: only real file encodings are accepted (an allow-list), UTF-16/32 need their BOM,
and every accepted encoding takes any bytes without a 500."""

from __future__ import annotations

import pytest

from ingest_helpers import landed, register, upload


@pytest.mark.parametrize("encoding", ["punycode", "idna", "undefined", "utf-7",
                                      "unicode_escape", "rot13", "base64"])
async def test_only_file_encodings_are_accepted(client, auth_headers, clean_db, encoding):
    await register(client, auth_headers)
    content = "date,school_id,teachers_present\n2024-01-01,S+2D800-,1\n".encode("utf-7")
    status, body = await upload(client, auth_headers, content, params={"encoding": encoding})
    assert status == 400 and body["error"]["code"] == "unknown_encoding", body
    assert await landed(client) == []


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32"])
async def test_utf16_or_32_without_its_bom_is_a_400(client, auth_headers, encoding):
    await register(client, auth_headers)
    text = "date,school_id,teachers_present\n2024-01-01,S1,1\n"
    content = text.encode(encoding + "-le")
    status, body = await upload(client, auth_headers, content, params={"encoding": encoding})
    assert status == 400 and body["error"]["code"] == "not_text", body  # was: 500
    status, body = await upload(client, auth_headers, text.encode(encoding),
                                params={"encoding": encoding})
    assert status == 200 and body["valid_rows"] == 1, body


def test_every_accepted_encoding_takes_any_bytes():
    """Whatever the bytes, an accepted encoding decodes them or refuses the file with a 400:
    never another exception (a 500)."""
    import random

    from ingest_server.csvstream.transcode import ALLOWED_ENCODINGS, Utf8Transcoder
    from ingest_server.errors import FileRejected

    for name in sorted(ALLOWED_ENCODINGS):
        for seed in range(20):
            rng = random.Random(seed)
            data = bytes(rng.randrange(256) for _ in range(200))
            t = Utf8Transcoder(name)
            try:
                out = t.feed(data[:101]) + t.feed(data[101:]) + t.finish()
            except FileRejected as e:
                assert e.code == "not_text"
                continue
            out.decode("utf-8", "surrogateescape")
