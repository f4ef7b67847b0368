"""A real ingest-server in a subprocess for benchmarks: its own database, storage and client.

The database is a fresh one created on the given PostgreSQL (and dropped afterwards), so a run
never sees earlier uploads or specs; with no DSN the server starts its embedded pgserver in the
run directory. Storage is a local folder in the run directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg

REPO = Path(__file__).resolve().parent.parent
CLIENT_ID = "bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + name))


@contextlib.asynccontextmanager
async def fresh_database(dsn: str):
    """Yield a DSN of a new, empty database on ``dsn``'s server; dropped on exit.
    An empty ``dsn`` yields "" (the server then starts its embedded PostgreSQL)."""
    if not dsn:
        yield ""
        return
    name = f"bench_ingest_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')  # name is ours, not user input
    finally:
        await conn.close()
    try:
        yield _with_database(dsn, name)
    finally:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


@dataclass
class ServerConfig:
    run_dir: Path
    port: int
    dsn: str
    workers: int            # ingest.workers (0 = one per CPU)
    secret: str
    chunk_bytes: int = 0    # ingest.chunk_bytes (0 = the server's default)

    @property
    def storage_root(self) -> Path:
        return self.run_dir / "storage"

    def toml(self) -> str:
        sha = hashlib.sha256(self.secret.encode()).hexdigest()
        q = json.dumps  # TOML basic strings are JSON-compatible for these values
        return "\n".join([
            "[server]", 'host = "127.0.0.1"', f"port = {self.port}", "workers = 1",
            f"plugins_dir = {q(str(self.run_dir / 'plugins'))}",
            f"state_dir = {q(str(self.run_dir / 'state'))}", 'log_level = "WARNING"',
            "shutdown_timeout_s = 5.0",
            "[database]", f"dsn = {q(self.dsn)}", f"data_dir = {q(str(self.run_dir / 'pg'))}",
            "[storage]", 'backend = "local"', f"root = {q(str(self.storage_root))}",
            "[limits]", f"max_upload_bytes = {8 << 30}",
            f"zip_max_uncompressed_bytes = {8 << 30}",
            "[ingest]", f"workers = {self.workers}",
            *([f"chunk_bytes = {self.chunk_bytes}"] if self.chunk_bytes else []),
            # Repeated runs of the same file must each write their objects, not be deduplicated.
            "idempotency_window_s = 0",
            "[[auth.clients]]", f"id = {q(CLIENT_ID)}", f"secret_sha256 = {q(sha)}",
            'scopes = ["ingest", "spec", "read"]', ""])


class ServerProcess:
    """``python -m ingest_server --config <run_dir>/config.toml``, output in server.log."""

    def __init__(self, cfg: ServerConfig) -> None:
        self.cfg = cfg
        self.url = f"http://127.0.0.1:{cfg.port}"
        self.proc: subprocess.Popen | None = None
        self._log = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    async def start(self, timeout_s: float = 60.0) -> None:
        cfg = self.cfg
        (cfg.run_dir / "plugins").mkdir(parents=True, exist_ok=True)
        path = cfg.run_dir / "config.toml"
        path.write_text(cfg.toml())
        self._log = open(cfg.run_dir / "server.log", "wb")
        env = dict(os.environ, XDG_RUNTIME_DIR=os.environ.get("XDG_RUNTIME_DIR", "/tmp"))
        env = {k: v for k, v in env.items() if not k.startswith("INGEST_")}
        self.proc = subprocess.Popen([sys.executable, "-m", "ingest_server", "--config", str(path)],
                                     cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        await wait_ready(f"{self.url}/readyz", self.proc, timeout_s, cfg.run_dir / "server.log")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log is not None:
            self._log.close()


async def wait_ready(url: str, proc: subprocess.Popen, timeout_s: float, log: Path | None) -> None:
    """Poll ``url`` until it answers 200; fail early if the process died."""
    deadline = time.monotonic() + timeout_s
    async with aiohttp.ClientSession() as session:
        while True:
            if proc.poll() is not None:
                tail = log.read_text(errors="replace")[-2000:] if log else ""
                raise RuntimeError(f"server exited with {proc.returncode}:\n{tail}")
            try:
                async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as r:
                    if r.status == 200:
                        return
            except (aiohttp.ClientError, asyncio.TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} not ready after {timeout_s:.0f} s")
            await asyncio.sleep(0.1)
