"""Graceful shutdown of a real server process: SIGTERM while an upload is still arriving.

The upload must finish (every row written, compared with what was sent) within
``server.shutdown_timeout_s``, new connections must be refused at once, and ``/readyz`` must say
503 on a connection that was already open, so a load balancer stops sending.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import signal
from pathlib import Path

import aiohttp

from conftest import JWT_SECRET, TEST_CLIENT
from ingest_server.auth import hash_secret
from testkit.server_process import ServerProcess, free_port, write_config
from testkit.polling import until
from testkit.sql import fetch
from fault_helpers import HEADER, ROW, SPEC, RawUpload, get_token


def _config(tmp_path: Path, dsn: str, grace_s: float) -> Path:
    (tmp_path / "plugins").mkdir(exist_ok=True)
    return write_config(tmp_path / "config.toml", {
        "server": {"host": "127.0.0.1", "plugins_dir": str(tmp_path / "plugins"),
                   "state_dir": str(tmp_path / "state"), "shutdown_timeout_s": grace_s},
        "database": {"dsn": dsn, "pool_max": 4},
        "storage": {"backend": "local", "root": str(tmp_path / "storage")},
        "auth": {"jwt_secret": JWT_SECRET, "clients": [
            {"id": TEST_CLIENT[0], "secret_sha256": hash_secret(TEST_CLIENT[1]),
             "scopes": ["ingest", "spec", "read"]}]},
        "ingest": {"workers": 1},
    })


def _started(tmp_path: Path, dsn: str, grace_s: float) -> ServerProcess:
    server = ServerProcess(_config(tmp_path, dsn, grace_s), free_port(), tmp_path / "server.log")
    server.start()
    return server


async def _token_and_spec(server: ServerProcess) -> str:
    """A token, and the event spec the uploads of these tests go to."""
    async with aiohttp.ClientSession() as session:
        token = await get_token(session, server.url)
        async with session.post(server.url + "/api/spec/event", json=SPEC,
                                headers={"Authorization": f"Bearer {token}"}) as r:
            assert r.status == 201, await r.text()
    return token


async def _raw_get(port: int, path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, int]:
    """A keep-alive connection that has made one GET; returns it and the status."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    status, _ = await _get_on(reader, writer, path)
    return reader, writer, status


async def _get_on(reader, writer, path: str) -> tuple[int, dict]:
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(lines[0].split()[1]), json.loads(body)


async def test_sigterm_lets_an_arriving_upload_finish(tmp_path, clean_db):
    server = _started(tmp_path, clean_db, grace_s=20.0)
    try:
        token = await _token_and_spec(server)
        reader, writer, status = await _raw_get(server.port, "/readyz")
        assert status == 200
        raw = RawUpload(server.port, token, rows=6_000)
        await raw.open(rows=1_000)
        await until(lambda: fetch(clean_db, "SELECT id FROM uploads"))
        server.process.send_signal(signal.SIGTERM)
        # new connections are refused while the upload drains...
        async def refused():
            try:
                _, w = await asyncio.open_connection("127.0.0.1", server.port)
            except (ConnectionRefusedError, ConnectionResetError):  # reset: queued as it closed
                return True
            w.close()
            return False
        await until(refused, timeout_s=5)
        # a connection opened before the signal is still served, and told not to send more
        assert await _get_on(reader, writer, "/readyz") == (503, {
            "status": "draining", "checks": {"database": "ok", "storage": "ok"}})
        writer.close()
        # ...and the rest of the body still arrives, slowly, after the signal
        for _ in range(5):
            await raw.send(1_000)
            await asyncio.sleep(0.1)  # a slow client: pacing the sender, not waiting for a state
        await raw.finish()
        status, body = await raw.response()
        raw.close()
        assert status == 200, body
        assert body["status"] == "uploaded" and body["valid_rows"] == 6_000
        assert server.process.wait(timeout=25) == 0
        storage = tmp_path / "storage"
        (key,) = [p for p in storage.rglob("*.csv") if ".staging" not in p.parts]
        rows = list(csv.reader(io.StringIO(key.read_text(encoding="utf-8"), newline="")))
        expected = list(csv.reader(io.StringIO((HEADER + ROW * 6_000).decode(), newline="")))
        assert rows[1:] == expected[1:] and len(rows) == 6_001
        (row,) = await fetch(clean_db, "SELECT status, valid_rows FROM uploads")
        assert (row["status"], row["valid_rows"]) == ("uploaded", 6_000)
    finally:
        server.kill()


async def test_sigterm_cuts_an_upload_past_the_grace_period(tmp_path, clean_db):
    """A client still sending when the grace period ends is cut: its upload ends failed, nothing
    is published or left staged, and the process exits on time."""
    server = _started(tmp_path, clean_db, grace_s=0.5)
    try:
        token = await _token_and_spec(server)
        raw = RawUpload(server.port, token, rows=6_000)
        await raw.open(rows=1_000)
        await until(lambda: fetch(clean_db, "SELECT id FROM uploads"))
        server.process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(server.process.wait, 15) == 0
        raw.close()
        (row,) = await fetch(clean_db, "SELECT status FROM uploads")
        assert row["status"] == "failed"
        assert not [p for p in (tmp_path / "storage").rglob("*") if p.is_file()]
    finally:
        server.kill()
