"""Every request body is read the one way (``web/body.py``): each read waits at most
``limits.body_idle_timeout_s``, whatever the route — multipart uploads (tests/test_faults.py),
``/validate``'s form, JSON rows, spec bodies. A client that stops sending gets 408
``body_timeout`` after the configured timeout, not the 60 s default or never."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from conftest import TEST_CLIENT, basic, make_settings
from ingest_server.web.app import create_app

IDLE_S = 0.5
BOUNDARY = "idleBoundary3"
GRAMMAR = {"program": "idle", "input": {"type": "object", "properties": {
    "a": {"type": "string"}}, "required": ["a"]}}


def _validate_head() -> bytes:
    """``/validate``'s form up to the middle of its data part."""
    parts = [(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="type"\r\n\r\n'
              f'event-data\r\n').encode(),
             (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="grammar"; '
              f'filename="g.json"\r\nContent-Type: application/json\r\n\r\n').encode()
             + json.dumps(GRAMMAR).encode() + b"\r\n",
             (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="data"; '
              f'filename="d.csv"\r\nContent-Type: text/csv\r\n\r\n').encode() + b"a\n1\n2\n"]
    return b"".join(parts)


CASES = {
    "validate": ("/api/ingestion/validate", f"multipart/form-data; boundary={BOUNDARY}",
                 _validate_head()),
    "json_rows": ("/api/ingestion/event", "application/json",
                  b'{"event_name": "idle", "event": [{"a": "1"}, '),
    "spec": ("/api/spec/event", "application/json", b'{"program": "idle", "input": '),
}


@pytest.fixture
async def served(aiohttp_client, tmp_path, clean_db):
    settings = make_settings(tmp_path, clean_db, limits={"body_idle_timeout_s": IDLE_S})
    client = await aiohttp_client(create_app(settings))
    resp = await client.get("/api/ingestion/generatejwt", headers=basic(*TEST_CLIENT, json=True))
    return client, (await resp.json())["token"]


async def _stalled(port: int, token: str, path: str, content_type: str,
                   head: bytes) -> tuple[int, dict, float]:
    """Send the request's headers and ``head`` of a longer body, then nothing: the answer and
    how long it took."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write((f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      f"Authorization: Bearer {token}\r\nContent-Type: {content_type}\r\n"
                      f"Content-Length: {len(head) + 100_000}\r\n\r\n").encode() + head)
        await writer.drain()
        started = time.monotonic()
        async with asyncio.timeout(20):  # the default idle timeout (60 s) would fail here
            answer = await reader.readuntil(b"\r\n\r\n")
            lines = answer.decode("latin-1").split("\r\n")
            headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
            body = await reader.readexactly(int(headers["content-length"]))
        return int(lines[0].split()[1]), json.loads(body), time.monotonic() - started
    finally:
        writer.transport.abort()


@pytest.mark.parametrize("case", list(CASES))
async def test_a_stalled_body_gets_408_after_the_configured_idle_timeout(served, case):
    client, token = served
    status, body, waited = await _stalled(client.port, token, *CASES[case])
    assert (status, body["error"]["code"]) == (408, "body_timeout")
    assert body["error"]["details"]["body_idle_timeout_s"] == IDLE_S
    assert waited >= IDLE_S * 0.9
