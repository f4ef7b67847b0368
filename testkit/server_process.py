"""The real server as a subprocess (``python -m ingest_server --config FILE``), for tests that
must kill it like a crash would (SIGKILL), or watch it refuse to start."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any


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

    def __init__(self, config: Path, port: int, log_path: Path) -> None:
        self.config, self.port, self.log_path = config, port, log_path
        self.process: subprocess.Popen[bytes] | None = None
        # Another release's code (testkit/old_release.py): its folder goes first on sys.path.
        self.code: Path | None = None
        self.env: dict[str, str] = {}  # variables for this process only (e.g. INGEST_TEST_HOLD)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "ingest_server", "--config", str(self.config),
                "--port", str(self.port)]

    def spawn(self) -> subprocess.Popen[bytes]:
        # The environment must not override the file (INGEST_* variables do).
        env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
        env.update(self.env)
        if self.code is not None:  # run from that folder: `-m` puts the working folder first
            env["PYTHONPATH"] = str(self.code)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(), env=env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True, cwd=self.code)
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

    def kill(self) -> None:
        """SIGKILL, the way a crash or the OOM killer ends a process: no cleanup runs."""
        kill_group(self.process)
        self.process = None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return "(no log)"
