"""Shared fixtures: a real PostgreSQL and a real SeaweedFS S3 server, started once per session.

PostgreSQL is the server at ``INGEST_TEST_DSN`` when set (a fresh database is created in it for
the session and dropped after), else an embedded pgserver in a temporary folder.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import tempfile
import uuid
from pathlib import Path

import asyncpg
import pytest

from ingest_server.auth import hash_secret
from testkit.s3_server import SeaweedS3
from ingest_server.config import load_settings

# Re-exported: the tests import them from here.
from testkit.accounts import (DISABLED_CLIENT, JWT_SECRET, RAWDATA_CLIENT,  # noqa: E402,F401
                              READ_ONLY_CLIENT, TEST_CLIENT, _with_database, basic,
                              fresh_database)


@pytest.fixture(autouse=True)
def _root_logger_restored():
    """A test that runs ``main()`` configures the root logger onto its captured stderr, which is
    closed after the test: later tests' log lines then fail with "I/O operation on closed file"
    (seen as test_cli failing after test_db). Each test gets the root logger back as it was."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="session")
def pg_dsn(tmp_path_factory):
    base = os.environ.get("INGEST_TEST_DSN")
    if base:
        with fresh_database(base, "ingest_test") as dsn:
            yield dsn
        return
    os.environ.setdefault("XDG_RUNTIME_DIR", str(tmp_path_factory.getbasetemp()))
    import pgserver

    # Not under pytest's private (0700) temp tree: as root, pgserver runs postgres as another user.
    data = Path(tempfile.mkdtemp(prefix="ingest-test-pg-"))
    data.chmod(0o755)
    server = pgserver.get_server(data, cleanup_mode="delete")
    yield server.get_uri()
    pid_file = Path(data) / "postmaster.pid"
    server.cleanup()
    if pid_file.exists():  # cleanup did not stop it: do not leave a postmaster behind
        try:
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A real SeaweedFS S3 server shared by the session; SIGTERM then SIGKILL at teardown."""
    server = SeaweedS3(tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    yield server
    server.stop()


def s3_settings(server: SeaweedS3) -> dict:
    """The [storage] section for the test S3 server, in a prefix of its own."""
    return {"backend": "s3", "bucket": "ingest-tests", "endpoint_url": server.endpoint_url,
            "region": server.region, "access_key_id": server.access_key_id,
            "secret_access_key": server.secret_access_key,
            "prefix": f"t-{uuid.uuid4().hex}/"}


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A real 512 KiB filesystem, to fill up (mounting needs root; skipped elsewhere)."""
    mountpoint = tmp_path / "tiny"
    mountpoint.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mountpoint)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {result.stderr.strip()}")
    yield mountpoint
    subprocess.run(["umount", "-l", str(mountpoint)], check=True)


@pytest.fixture
async def clean_db(pg_dsn):
    """The session database with every table emptied (tables are created by the app's migrations)."""
    conn = await asyncpg.connect(pg_dsn)
    try:
        # DELETE, not TRUNCATE: on tables this small it is ~3x cheaper (TRUNCATE makes new files),
        # and one multi-statement call is one commit. object_owners: keys are reused in the cqube
        # layout; auth_failures: failed logins are counted per address. Referencing tables first.
        tables = await conn.fetch(
            "SELECT t FROM unnest($1::text[]) WITH ORDINALITY AS u(t, n) "
            "WHERE to_regclass('public.' || t) IS NOT NULL ORDER BY n",
            ["object_owners", "auth_failures", "uploads", "specs"])
        if tables:
            await conn.execute("; ".join(f"DELETE FROM {r['t']}" for r in tables))
    finally:
        await conn.close()
    return pg_dsn


def make_settings(tmp_path: Path, dsn: str, **sections):
    """Test settings: real database, local storage under tmp_path, known clients and secret."""
    overrides = {
        "server": {"plugins_dir": str(tmp_path / "plugins"), "state_dir": str(tmp_path / "state")},
        "database": {"dsn": dsn, "pool_max": 4, "startup_wait_s": 0.0},
        "storage": {"backend": "local", "root": str(tmp_path / "storage")},
        "auth": {"jwt_secret": JWT_SECRET, "clients": [
            {"id": TEST_CLIENT[0], "secret_sha256": hash_secret(TEST_CLIENT[1]),
             "scopes": ["ingest", "spec", "read"]},
            {"id": READ_ONLY_CLIENT[0], "secret_sha256": hash_secret(READ_ONLY_CLIENT[1]),
             "scopes": ["read"]},
            {"id": DISABLED_CLIENT[0], "secret_sha256": hash_secret(DISABLED_CLIENT[1]),
             "disabled": True},
            {"id": RAWDATA_CLIENT[0], "secret_sha256": hash_secret(RAWDATA_CLIENT[1]),
             "scopes": ["read", "rawdata"]},
        ]},
        "ingest": {"workers": 1},
    }
    for section, values in sections.items():
        overrides.setdefault(section, {}).update(values)
    return load_settings(None, env={}, overrides=overrides)


@pytest.fixture(params=["local"])
def settings(request, tmp_path, clean_db):
    """Test settings; a test module may parametrize ``backend`` over ["local", "s3"]."""
    storage = s3_settings(request.getfixturevalue("s3_server")) if request.param == "s3" else {}
    return make_settings(tmp_path, clean_db, storage=storage)


@pytest.fixture
async def client(aiohttp_client, settings):
    """A test client on the production app factory."""
    from ingest_server.web.app import create_app

    return await aiohttp_client(create_app(settings))


@pytest.fixture
async def token(client):
    """A bearer token of the full-scope test client."""
    resp = await client.get("/api/ingestion/generatejwt", headers=basic(*TEST_CLIENT, json=True))
    assert resp.status == 200, await resp.text()
    return (await resp.json())["token"]


@pytest.fixture
def auth_headers(token):
    return {"Authorization": f"Bearer {token}"}


# -- markers: `make test-fast` runs `-m "not browser and not replicas and not slow"` --------------
# Modules (or single tests, "module::test") that need a browser, several server processes behind
# nginx, or tens of seconds (server processes, hypothesis budgets, external tools). A test may
# also carry @pytest.mark.slow itself. The markers are declared in pyproject.toml.
MARKERS = {
    **dict.fromkeys(["test_console.py", "test_console_files.py", "test_console_new_user.py",
                     "test_processing_console.py"], "browser"),
    "test_docs_page.py::test_swagger_ui_renders_under_its_csp_in_a_real_browser": "browser",
    "test_replicas.py": "replicas",
    **dict.fromkeys([
        "test_container.py", "test_cqube_keywords_diff.py", "test_deploy.py", "test_faults.py",
        "test_fuzz.py", "test_load.py", "test_makefile.py", "test_metrics_workers.py",
        "test_postman.py", "test_postman_cqube.py", "test_processing_stateful.py",
        "test_readme.py", "test_resumable_tuspy.py", "test_schemathesis.py", "test_shutdown.py",
        "test_startup.py", "test_event_loop.py", "test_upgrade.py", "test_validation_diff.py",
        # single tests of a few seconds each (a deadline waited out, a server or S3 restarted,
        # thousands of offsets or threads): measured with --durations, at least ~3 s
        "test_auth_attacks.py::test_many_addresses_guessing_one_client_slow_it_down_but_never_lock_it",
        "test_compiler.py::test_cerberus_fallbacks_are_safe_from_many_threads",
        "test_concurrent_rows.py::test_concurrent_transforming_uploads_write_every_row_right",
        "test_connections.py::test_exhausted_file_descriptors_log_once_per_interval_and_recover",
        "test_connections.py::test_half_sent_headers_are_dropped_after_the_header_timeout",
        "test_hostile_inputs.py::test_invalid_utf8_at_every_offset",
        "test_ingest_csv.py::test_cleanup_survives_a_second_cancellation",
        "test_plugins.py::test_webhook_notifier",
        "test_processing_datasets.py::test_query_builder_queries_of_section_5",
        "test_storage.py::test_s3_server_killed_mid_upload_then_cleanup_after_restart",
        "test_workbook_limit.py::test_damage_found_mid_sheet_leaves_nothing",
        "test_ziparchive.py::test_member_argument_is_rechecked"], "slow"),
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        marker = (MARKERS.get(f"{item.path.name}::{getattr(item, 'originalname', item.name)}")
                  or MARKERS.get(item.path.name))
        if marker:
            item.add_marker(marker)
