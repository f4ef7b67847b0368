"""The container's start, as a plain process (Docker cannot run here).

The Dockerfile's own ENTRYPOINT, ENV, WORKDIR layout and HEALTHCHECK are read from the file and
run against a copy of what the image holds (/app: config.toml, plugins/): the server starts with
no make, writes only under the declared VOLUME, answers its health check, and stops cleanly on
SIGTERM. And the embedded database refuses a second replica with a clear message.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import JWT_SECRET
from testkit.replica_cluster import Replica
from testkit.server_process import free_port, write_config
from dockerfile_helpers import DOCKERFILE, ROOT, _env_pairs, parse


def _image() -> dict:
    """What the final stage says: ENV, VOLUMEs, ENTRYPOINT, HEALTHCHECK command, WORKDIR."""
    instructions = parse(DOCKERFILE.read_text(encoding="utf-8"))
    final = instructions[max(i for i, ins in enumerate(instructions) if ins.keyword == "FROM"):]
    out = {"env": {}, "volumes": []}
    for ins in final:
        if ins.keyword == "ENV":
            out["env"].update(_env_pairs(ins.args))
        elif ins.keyword == "VOLUME":
            out["volumes"] += json.loads(ins.args)
        elif ins.keyword == "ENTRYPOINT":
            out["entrypoint"] = json.loads(ins.args)
        elif ins.keyword == "WORKDIR":
            out["workdir"] = ins.args
        elif ins.keyword == "HEALTHCHECK":
            out["healthcheck"] = json.loads(ins.args[ins.args.index("CMD") + 3:].strip())
    return out


def _in_app(args: list[str], workdir: str, app: Path) -> list[str]:
    return [a.replace(workdir, str(app)) if a.startswith(workdir) else a for a in args]


def _files(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*") if p.is_file()}


def test_the_image_start_command_runs_without_make(tmp_path, clean_db):
    image = _image()
    workdir = image["workdir"]
    assert image["volumes"] == [f"{workdir}/data"]
    app = tmp_path / "app"
    app.mkdir()
    shutil.copy(ROOT / "config.toml", app / "config.toml")  # COPY config.toml /app/config.toml
    shutil.copytree(ROOT / "plugins", app / "plugins")       # COPY plugins /app/plugins
    before = _files(app)
    port = free_port()
    env = dict(image["env"], INGEST_SERVER_HOST="127.0.0.1", INGEST_SERVER_PORT=str(port),
               INGEST_DATABASE_DSN=clean_db, INGEST_AUTH_JWT_SECRET=JWT_SECRET,
               INGEST_INGEST_WORKERS="1",
               PATH=f"{Path(sys.executable).parent}:/usr/bin:/bin",
               PYTHONPATH=os.environ.get("PYTHONPATH", ""))
    command = _in_app(image["entrypoint"], workdir, app)
    with open(tmp_path / "server.log", "wb") as log:
        server = subprocess.Popen(command, cwd=app, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, (tmp_path / "server.log").read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()
            time.sleep(0.05)
        # the image's HEALTHCHECK, as Docker would run it inside the container
        check = subprocess.run(image["healthcheck"], env=env, capture_output=True, timeout=10)
        assert check.returncode == 0, check.stderr
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    written = _files(app) - before
    assert all(p.parts[0] == "data" for p in written), sorted(map(str, written))


@pytest.fixture
def shared_data_dir():
    # Not under pytest's private (0700) tree: as root, pgserver runs postgres as another user.
    data = Path(tempfile.mkdtemp(prefix="ingest-embedded-"))
    data.chmod(0o755)
    yield data
    pid_file = data / "pg" / "postmaster.pid"
    if pid_file.exists():  # a postmaster outlived its server: stop it
        try:
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    shutil.rmtree(data, ignore_errors=True)


def _embedded_config(base: Path, data: Path) -> Path:
    (base / "plugins").mkdir(parents=True, exist_ok=True)
    return write_config(base / "config.toml", {
        "server": {"plugins_dir": str(base / "plugins"), "state_dir": str(base / "state")},
        "database": {"dsn": "", "data_dir": str(data / "pg")},
        "storage": {"backend": "local", "root": str(base / "storage")},
        "auth": {"jwt_secret": JWT_SECRET},
        "ingest": {"workers": 1},
    })


def test_a_second_replica_on_the_embedded_database_is_refused(tmp_path, shared_data_dir):
    """Two containers (two host names) with the embedded database's folder on a shared volume:
    the second stops at start-up with a message saying what to do, the first serves on."""
    first = Replica("box-a", _embedded_config(tmp_path / "a", shared_data_dir), free_port(),
                    tmp_path / "a.log")
    second = Replica("box-b", _embedded_config(tmp_path / "b", shared_data_dir), free_port(),
                     tmp_path / "b.log")
    first.start()
    try:
        process = second.spawn()
        assert process.wait(timeout=60) == 1
        log = second.log()
        assert "embedded_database_in_use" in log and "database.dsn" in log, log
        with urllib.request.urlopen(first.url + "/readyz", timeout=5) as r:
            assert r.status == 200
        first.terminate()
        assert first.wait(30) == 0
        second.start()  # the owner is gone: the folder may be taken over
        second.terminate()
        assert second.wait(30) == 0
    finally:
        first.kill()
        second.kill()
