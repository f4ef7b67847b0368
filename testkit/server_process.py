"""The real server as a subprocess (``python -m ingest_server --config FILE``): for tests that
must kill it like a crash would (SIGKILL) or watch it refuse to start, and for the benchmarks
(:class:`ServerConfig`: a fixed config in a run folder, started and stopped inside their event
loop)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parent.parent
CLIENT_ID = "bench"  # the one client of a ServerConfig


def kill_group(process: subprocess.Popen | None) -> None:
    """SIGKILL a process's whole group (started with start_new_session) and reap it."""
    if process is None:
        return
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def write_config(path: Path, sections: dict[str, dict[str, Any]]) -> Path:
    """A config file from ``{section: {key: value}}``; ``auth.clients`` as a list of dicts."""
    lines: list[str] = []
    clients = sections.get("auth", {}).get("clients", [])
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in values.items() if k != "clients"]
    for client in clients:
        lines.append("[[auth.clients]]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in client.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class ServerProcess:
    """One ``ingest-server`` process on 127.0.0.1:``port``, its output in ``log_path``."""

    def __init__(self, config: Path, port: int, log_path: Path,
                 cfg: "ServerConfig | None" = None) -> None:
        self.config, self.port, self.log_path = config, port, log_path
        self.cfg = cfg  # what wrote ``config``, for a benchmark's server
        self.process: subprocess.Popen[bytes] | None = None
        # Another release's code (testkit/old_release.py): its folder goes first on sys.path.
        self.code: Path | None = None
        self.env: dict[str, str] = {}  # variables for this process only (e.g. INGEST_TEST_HOLD)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def command(self) -> list[str]:
        return [sys.executable, "-m", "ingest_server", "--config", str(self.config),
                "--port", str(self.port)]

    def spawn(self) -> subprocess.Popen[bytes]:
        # The environment must not override the file (INGEST_* variables do).
        env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
        env.setdefault("XDG_RUNTIME_DIR", "/tmp")  # the embedded PostgreSQL needs one
        env.update(self.env)
        if self.code is not None:  # run from that folder: `-m` puts the working folder first
            env["PYTHONPATH"] = str(self.code)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(), env=env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True, cwd=self.code or REPO)
        return self.process

    def start(self, timeout_s: float = 30.0) -> None:
        """Spawn and return once ``/healthz`` answers (raise with the log if it exits first)."""
        self.spawn()
        try:
            self.wait_for("/healthz", timeout_s)
        except RuntimeError:
            self.kill()
            raise

    def wait_for(self, path: str, timeout_s: float) -> None:
        """Return once ``path`` answers 200; raise with the log if the process exits first."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + path, timeout=1) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server did not answer {path} in {timeout_s} s:\n{self.log()}")

    async def start_async(self, timeout_s: float = 60.0, path: str = "/readyz") -> None:
        """:meth:`start` inside an event loop: spawn, then poll ``path`` without blocking it."""
        self.spawn()
        deadline = time.monotonic() + timeout_s
        async with aiohttp.ClientSession() as session:
            while True:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise RuntimeError(f"server exited with {self.process.returncode}:\n"
                                       f"{self.log()}")
                try:
                    async with session.get(self.url + path,
                                           timeout=aiohttp.ClientTimeout(total=2)) as r:
                        if r.status == 200:
                            return
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.url}{path} not ready after {timeout_s:.0f} s")
                await asyncio.sleep(0.1)

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM and wait (the graceful shutdown), SIGKILL if it takes longer."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        """SIGKILL, the way a crash or the OOM killer ends a process: no cleanup runs."""
        kill_group(self.process)
        self.process = None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return "(no log)"


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

    def process(self) -> ServerProcess:
        """The server of this config (the file written into ``run_dir``; not started yet)."""
        (self.run_dir / "plugins").mkdir(parents=True, exist_ok=True)
        path = self.run_dir / "config.toml"
        path.write_text(self.toml())
        return ServerProcess(path, self.port, self.run_dir / "server.log", cfg=self)
