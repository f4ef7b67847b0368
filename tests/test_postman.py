"""The Postman collection, run by newman against a live server started as users start it.

The server is a real subprocess (``python -m ingest_server --config``) on a free port, with its own
database and local storage in tmp, and a configured client (not the open token endpoint): the
collection gets its token the way cQube users do, with Basic credentials. newman comes from
``postman/package-lock.json`` (``make test`` installs it; this module does too when npm is there).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from testkit.accounts import fresh_database
from ingest_server.auth import hash_secret
from testkit.server_process import free_port
from postman_helpers import CLIENT_ID, CLIENT_SECRET, POSTMAN, ROOT, _config, _requests, _script, newman, postman_dsn, run_server

COLLECTION = POSTMAN / "ingest-server.postman_collection.json"
SAMPLES = ROOT / "samples" / "specs"  # cQube's own spec files, copied into the repository
FOLDERS = ["Auth", "Specs", "Ingestion", "Status", "Processing", "Health"]


def _collection() -> dict:
    return json.loads(COLLECTION.read_text(encoding="utf-8"))


# -- the collection's shape (no node needed) ---------------------------------------------------

def test_collection_layout_variables_and_auth():
    coll = _collection()
    assert [f["name"] for f in coll["item"]] == FOLDERS
    names = {v["key"] for v in coll["variable"]}
    assert {"baseUrl", "clientId", "clientSecret", "token", "uploadId"} <= names
    assert coll["auth"] == {"type": "bearer",
                            "bearer": [{"key": "token", "value": "{{token}}", "type": "string"}]}
    token_requests = [it for _, it in _requests(coll["item"])
                      if it["request"]["url"]["raw"].endswith("/api/ingestion/generatejwt")
                      and it["request"].get("auth", {}).get("type") == "basic"
                      and {(a["key"], a["value"]) for a in it["request"]["auth"]["basic"]}
                      == {("username", "{{clientId}}"), ("password", "{{clientSecret}}")}]
    assert len(token_requests) == 1
    assert 'pm.collectionVariables.set("token"' in _script(token_requests[0], "test")


def test_every_request_has_tests():
    for folder, item in _requests(_collection()["item"]):
        script = _script(item, "test")
        assert "pm.response.to.have.status" in script, f"{folder}/{item['name']}: no status check"
        assert script.count("pm.test(") >= 1, f"{folder}/{item['name']}"


def _server_routes(tmp_path: Path) -> set[tuple[str, str]]:
    """(method, path pattern) of every route of the production app (nothing is started)."""
    from conftest import make_settings
    from ingest_server.web.app import create_app

    app = create_app(make_settings(tmp_path, "postgresql://unused@127.0.0.1:1/unused"))
    return {(r.method, r.resource.canonical) for r in app.router.routes()
            if r.method not in ("HEAD", "OPTIONS") and r.resource is not None}


def test_every_route_of_the_server_has_a_request(tmp_path):
    """New routes fail this until the collection has a request for them."""
    requests = {(it["request"]["method"], "/" + "/".join(it["request"]["url"]["path"]))
                for _, it in _requests(_collection()["item"])}
    missing = []
    for method, pattern in sorted(_server_routes(tmp_path)):
        regex = re.compile("^" + re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(pattern)) + "$")
        if not any(m == method and regex.match(path) for m, path in requests):
            missing.append(f"{method} {pattern}")
    assert missing == [], f"no request in the collection for: {missing}"


def test_example_bodies_are_the_cqube_samples_and_upload_files_exist():
    assert SAMPLES.is_dir(), f"cQube sample specs not found at {SAMPLES}"
    bodies = {}
    files = []
    for _, item in _requests(_collection()["item"]):
        body = item["request"].get("body") or {}
        if body.get("mode") == "raw" and body["options"]["raw"]["language"] == "json":
            bodies[item["name"]] = json.loads(body["raw"])  # (tus PATCH bodies are CSV text)
        for field in body.get("formdata", []):
            if field.get("type") == "file":
                files.append(field["src"])
    sample = json.loads((SAMPLES / "programs/school-attendance/teacherspresent.json").read_text())
    assert sample in bodies.values()
    district = json.loads((SAMPLES / "dimensions/district-dimension.json").read_text())
    assert district in bodies.values()
    assert files and all((POSTMAN / src).is_file() for src in files), files
    assert all(not Path(src).is_absolute() for src in files)


# -- the live run ------------------------------------------------------------------------------


@pytest.fixture
def live_server(tmp_path, postman_dsn):
    """``python -m ingest_server`` on a free port; its base URL. Stopped with SIGTERM, then KILL."""
    yield from _live_server(tmp_path, postman_dsn, open_endpoint=False)


@pytest.fixture
def make_serve_server(tmp_path, postman_dsn):
    """The same with the open token endpoint, as ``make serve`` runs it."""
    yield from _live_server(tmp_path, postman_dsn, open_endpoint=True)


def _live_server(tmp_path: Path, dsn: str, *, open_endpoint: bool):
    port = free_port()
    yield from run_server(tmp_path, _config(tmp_path, dsn, port, open_endpoint, processing=True),
                          port)


def _run_newman(newman: Path, url: str, report: Path, log: Path,
                credentials: bool = True) -> dict:
    """One newman run of the whole collection; its JSON report's ``run`` after checking that
    newman exited 0 and counted no failure of any kind. Without ``credentials`` the
    environment's empty clientId/clientSecret are used as they are."""
    client = ["--env-var", f"clientId={CLIENT_ID}", "--env-var",
              f"clientSecret={CLIENT_SECRET}"] if credentials else []
    cmd = [str(newman), "run", str(COLLECTION), "--working-dir", str(POSTMAN),
           "--environment", str(POSTMAN / "environment.json"), "--env-var", f"baseUrl={url}",
           *client, "--reporters", "cli,json", "--reporter-json-export", str(report),
           "--timeout-request", "60000", "--color", "off", "--disable-unicode"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert report.is_file(), done.stdout + done.stderr
    run = json.loads(report.read_text(encoding="utf-8"))["run"]
    failures = [f"{f['source'].get('name')}: {f['error'].get('test', '')} "
                f"{f['error'].get('message')}" for f in run["failures"]]
    context = "\n".join(failures) + "\n" + done.stdout[-6000:] + log.read_text()[-3000:]
    assert done.returncode == 0, context
    assert run["failures"] == [], context
    stats = run["stats"]
    for kind in ("requests", "testScripts", "prerequestScripts", "assertions"):
        assert stats[kind]["failed"] == 0, context
    requests = sum(1 for _ in _requests(_collection()["item"]))
    assert stats["requests"]["total"] == requests
    assert stats["assertions"]["total"] >= 3 * requests
    return run


def test_collection_runs_green_with_newman(newman, live_server, tmp_path):
    url, log, storage = live_server
    _run_newman(newman, url, tmp_path / "newman-1.json", log)
    # The uploads really landed: the sample CSV's rows and the national ZIP's member, each with
    # its rejected rows beside it (the second CSV upload is recognised as the same file), and
    # the tus upload's.
    landed = sorted(str(p.relative_to(storage)) for p in storage.rglob("*.csv"))
    folders = sorted({path.split("/")[0] for path in landed})
    assert folders == ["emission", "emission-error", "ingestion_error", "process_input"], landed
    # the CSV, the JSON rows (event, dimension, dataset) and the tus upload
    assert len([k for k in landed if k.startswith("process_input/")]) == 5, landed
    # Users re-run collections: against the same server, re-posted specs are no-ops and the
    # same files are recognised, so the second run is green too and lands nothing new.
    _run_newman(newman, url, tmp_path / "newman-2.json", log)
    again = sorted(str(p.relative_to(storage)) for p in storage.rglob("*.csv"))
    assert again == landed


def test_collection_runs_green_against_make_serve(newman, make_serve_server, tmp_path):
    """``make serve`` and the collection with its environment as shipped (empty credentials):
    Postman still sends ``Authorization: Basic Og==``, which the open endpoint ignores."""
    url, log, storage = make_serve_server
    env = json.loads((POSTMAN / "environment.json").read_text(encoding="utf-8"))
    assert {v["key"]: v["value"] for v in env["values"]}["clientId"] == ""
    _run_newman(newman, url, tmp_path / "newman-open.json", log, credentials=False)
    landed = sorted({p.relative_to(storage).parts[0] for p in storage.rglob("*.csv")})
    assert landed == ["emission", "emission-error", "ingestion_error", "process_input"], landed
