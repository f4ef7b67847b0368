"""cQube-shaped Postman requests (``postman/cqube-profile.postman_collection.json``) run by newman
against a live server started in the cqube profile through the environment, as an operator
would: ``INGEST_COMPAT_PROFILE=cqube INGEST_AUTH_OPEN_SPEC_API=true`` (and an open token endpoint,
so that, as with cQube, no request carries credentials). No auth on specs, the bare token sent as
``Bearer <body>``, every answer checked against cQube's body."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from testkit.server_process import free_port
from postman_helpers import POSTMAN, _config, _requests, _script, run_server
from postman_helpers import newman, postman_dsn  # noqa: F401 — fixtures

COLLECTION = POSTMAN / "cqube-profile.postman_collection.json"


def _collection() -> dict:
    return json.loads(COLLECTION.read_text(encoding="utf-8"))


def test_collection_is_cqube_shaped():
    items = [it for _, it in _requests(_collection()["item"])]
    assert "auth" not in _collection()  # no collection-wide auth: each request says its own
    token = items[0]
    assert token["request"]["url"]["path"][-1] == "generatejwt"
    assert 'pm.collectionVariables.set("token", pm.response.text())' in _script(token, "test")
    assert not any(h["key"].lower() == "accept" for h in token["request"]["header"])
    for item in items:
        assert "pm.response.to.have.status" in _script(item, "test"), item["name"]
        path = item["request"]["url"]["path"]
        if path[:2] == ["api", "spec"]:
            assert item["request"]["auth"] == {"type": "noauth"}, item["name"]


@pytest.fixture
def cqube_server(tmp_path, postman_dsn):  # noqa: F811
    port = free_port()
    config = _config(tmp_path, postman_dsn, port)
    yield from run_server(tmp_path, config, port, {
        "INGEST_COMPAT_PROFILE": "cqube", "INGEST_AUTH_OPEN_SPEC_API": "true",
        "INGEST_AUTH_OPEN_TOKEN_ENDPOINT": "true"})


def _run(newman, url: str, report: Path) -> tuple[subprocess.CompletedProcess, dict]:  # noqa: F811
    cmd = [str(newman), "run", str(COLLECTION), "--working-dir", str(POSTMAN),
           "--env-var", f"baseUrl={url}", "--reporters", "cli,json",
           "--reporter-json-export", str(report), "--timeout-request", "60000",
           "--color", "off", "--disable-unicode"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert report.is_file(), done.stdout + done.stderr
    return done, json.loads(report.read_text(encoding="utf-8"))["run"]


def test_cqube_collection_runs_green_with_newman(newman, cqube_server, tmp_path):  # noqa: F811
    """Run twice against the same server and database: the collection is re-runnable (its specs
    registered again, its files uploaded again), as an operator runs it more than once."""
    url, log, storage = cqube_server
    for attempt in ("first", "again"):
        done, run = _run(newman, url, tmp_path / f"newman-cqube-{attempt}.json")
        failures = [f"{f['source'].get('name')}: {f['error'].get('test', '')} "
                    f"{f['error'].get('message')}" for f in run["failures"]]
        context = f"{attempt}:\n" + "\n".join(failures) + "\n" + done.stdout[-6000:] + \
            log.read_text()[-3000:]
        assert done.returncode == 0 and run["failures"] == [], context
        requests = sum(1 for _ in _requests(_collection()["item"]))
        assert run["stats"]["requests"]["total"] == requests
        assert run["stats"]["assertions"]["failed"] == 0
    assert "auth.open_spec_api is true" in log.read_text()  # the start-up warning
    landed = sorted({p.relative_to(storage).parts[0] for p in storage.rglob("*.csv")})
    assert landed == ["emission", "emission-error", "ingestion_error", "process_input"], landed
