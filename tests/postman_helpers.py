"""Running the Postman collection with newman against a real server (``run_server``, the ``newman``
and ``postman_dsn`` fixtures)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from ingest_server.auth import hash_secret
from testkit.accounts import fresh_database


ROOT = Path(__file__).resolve().parents[1]


POSTMAN = ROOT / "postman"


NEWMAN = POSTMAN / "node_modules" / ".bin" / "newman"


CLIENT_ID, CLIENT_SECRET = "postman-ci", "postman-ci-secret-0123456789abcdef"


JWT_SECRET = "postman-jwt-secret-" + "0123456789abcdef" * 3


CLIENT_BLOCK = f"""[[auth.clients]]
id = "{CLIENT_ID}"
secret_sha256 = "{hash_secret(CLIENT_SECRET)}"
scopes = ["ingest", "spec", "read", "rawdata"]
"""


def _requests(items: list[dict], folder: str = ""):
    for item in items:
        if "item" in item:
            yield from _requests(item["item"], item["name"])
        else:
            yield folder, item


def _script(item: dict, listen: str) -> str:
    return "\n".join(line for event in item.get("event", []) if event["listen"] == listen
                     for line in event["script"]["exec"])


@pytest.fixture(scope="session")
def newman() -> Path:
    """newman from the lock file; installed here when missing (``make test`` does it first).
    A fixture listed first, so a machine without node skips before a server is started."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm not found: the Postman collection cannot be run with newman")
    if not NEWMAN.exists():
        done = subprocess.run(["npm", "ci", "--prefix", str(POSTMAN), "--no-audit", "--no-fund"],
                              timeout=600, capture_output=True, text=True)
        if done.returncode != 0:
            pytest.fail(f"npm ci --prefix postman failed:\n{done.stdout}\n{done.stderr}")
    return NEWMAN


@pytest.fixture
def postman_dsn(pg_dsn):
    """A database of its own on the session's server: the run must start from nothing."""
    with fresh_database(pg_dsn, "ingest_postman") as dsn:
        yield dsn


def _config(tmp_path: Path, dsn: str, port: int, open_endpoint: bool = False,
            processing: bool = False) -> Path:
    """A configured client (with the ``rawdata`` scope getRawData needs) and a closed token
    endpoint; or, ``open_endpoint``, what ``make serve`` runs: the open endpoint and no client
    (its anonymous token has no ``rawdata``: the collection checks the 403 instead).
    ``processing``: the processing API on, in the same database (the Processing folder)."""
    path = tmp_path / "config.toml"
    path.write_text(f"""
[server]
host = "127.0.0.1"
port = {port}
plugins_dir = "plugins"
state_dir = "state"
log_level = "WARNING"
shutdown_timeout_s = 2.0

[database]
dsn = {json.dumps(dsn)}
pool_max = 4
startup_wait_s = 10.0

[storage]
backend = "local"
root = "storage"

[auth]
open_token_endpoint = {"true" if open_endpoint else "false"}
jwt_secret = "{JWT_SECRET}"

{"" if open_endpoint else CLIENT_BLOCK}
[ingest]
workers = 1

[processing]
enabled = {"true" if processing else "false"}
""", encoding="utf-8")
    return path


def _wait_healthy(proc: subprocess.Popen, url: str, log: Path, deadline_s: float = 60.0) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the server exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    pytest.fail(f"the server did not answer /healthz within {deadline_s} s:\n"
                f"{log.read_text()[-4000:]}")


def run_server(tmp_path: Path, config: Path, port: int, env_extra: dict[str, str] | None = None):
    """A live ``python -m ingest_server`` on ``config``: yields (url, log, storage folder)."""
    log = tmp_path / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    env.update(env_extra or {})
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "ingest_server", "--config", str(config)],
                                cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(proc, url, log)
        yield url, log, tmp_path / "storage"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
