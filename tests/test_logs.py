"""Structured logs: JSON lines, one per request and one per upload outcome, with request ids."""

from __future__ import annotations

import io
import json
import logging
import re
import sys

import pytest

from conftest import TEST_CLIENT, basic
from ingest_helpers import form, register, upload
from ingest_server.logs import JsonFormatter, configure_logging, log_event

SECRET_CELL = "confidential-cell-7731"
DATA = ("date,school_id,teachers_present,remarks,score\n"
        f"2024-01-01,S1,10,{SECRET_CELL},1.5\n2024-01-01,S2,not-a-number,x,\n").encode()


@pytest.fixture
def log_lines():
    """Everything the process logs during the test, through the production configuration."""
    root = logging.getLogger()
    level = root.level
    buf = io.StringIO()
    handler = configure_logging("INFO", stream=buf)
    yield lambda: [json.loads(line) for line in buf.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(level)


def test_formatter_writes_one_json_object_with_fields_and_exception():
    logger = logging.getLogger("ingest_server.test")
    try:
        raise ValueError("boom")
    except ValueError:
        record = logger.makeRecord(logger.name, logging.ERROR, __file__, 1, "failed %s", ("x",),
                                   sys.exc_info(), extra={"fields": {"upload_id": "u1", "n": 2}})
    line = JsonFormatter().format(record)
    assert "\n" not in line
    out = json.loads(line)
    assert out["msg"] == "failed x" and out["level"] == "ERROR" and out["logger"] == logger.name
    assert (out["upload_id"], out["n"], out["exc_type"]) == ("u1", 2, "ValueError")
    assert "boom" in out["exc"] and out["ts"].endswith("+00:00")


def test_configure_logging_sets_the_level_and_never_doubles_lines():
    root = logging.getLogger()
    level = root.level
    buf = io.StringIO()
    try:
        configure_logging("INFO", stream=io.StringIO())
        handler = configure_logging("warning", stream=buf)  # replaces the first one
        assert root.level == logging.WARNING
        log = logging.getLogger("ingest_server.test")
        log_event(log, logging.INFO, "hidden")
        log_event(log, logging.WARNING, "shown", event="x")
        lines = [json.loads(line) for line in buf.getvalue().splitlines()]
        assert [line["msg"] for line in lines] == ["shown"]
        assert sum(h.get_name() == handler.get_name() for h in root.handlers) == 1
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def test_access_lines_carry_the_echoed_request_id(client, log_lines):
    resp = await client.get("/healthz", headers={"X-Request-ID": "req-abc-123"})
    assert resp.headers["X-Request-ID"] == "req-abc-123"
    new = await client.get("/api/specs")  # no token: 401, a fresh id
    rid = new.headers["X-Request-ID"]
    assert re.fullmatch("[0-9a-f]{32}", rid)
    bad = await client.get("/healthz", headers={"X-Request-ID": "x" * 65})  # too long: replaced
    assert bad.headers["X-Request-ID"] != "x" * 65
    access = [line for line in log_lines() if line.get("event") == "http_request"]
    by_id = {line["request_id"]: line for line in access}
    assert by_id["req-abc-123"]["status"] == 200
    assert by_id["req-abc-123"]["route"] == "/healthz"
    assert by_id[rid]["status"] == 401 and by_id[rid]["path"] == "/api/specs"
    assert by_id[rid]["logger"] == "ingest_server.access"
    assert all(isinstance(line["duration_ms"], float) for line in access)


async def test_an_upload_logs_its_outcome_without_secrets_or_row_contents(client, log_lines):
    token = (await (await client.get("/api/ingestion/generatejwt",
                                     headers=basic(*TEST_CLIENT, json=True))).json())["token"]
    headers = {"Authorization": f"Bearer {token}"}
    await register(client, headers)
    resp = await client.post("/api/ingestion/new_programs", data=form(DATA),
                             headers=dict(headers, **{"X-Request-ID": "upload-req-1"}))
    body = await resp.json()
    assert resp.status == 200 and body["invalid_rows"] == 1
    status, _ = await upload(client, headers, b"date\n2024-01-01\n")
    assert status == 400
    lines = log_lines()
    outcomes = [line for line in lines if line.get("event") == "upload_finished"]
    assert len(outcomes) == 2
    ok = next(line for line in outcomes if line["status"] == "uploaded")
    assert ok["request_id"] == "upload-req-1"
    assert ok["upload_id"] == body["upload_id"]
    assert (ok["total_rows"], ok["valid_rows"], ok["invalid_rows"]) == (2, 1, 1)
    assert ok["bytes"] == len(DATA) and ok["client"] == TEST_CLIENT[0]
    no = next(line for line in outcomes if line["status"] == "rejected")
    assert no["error_code"] == "missing_column"
    access = [line for line in lines if line.get("event") == "http_request"
              and line["request_id"] == "upload-req-1"]
    assert len(access) == 1 and access[0]["client"] == TEST_CLIENT[0]
    text = "\n".join(json.dumps(line) for line in lines)
    for secret in (SECRET_CELL, "not-a-number", token, TEST_CLIENT[1]):
        assert secret not in text
