"""Issue 21, items 6, 7, 11, 12 and 13: user-supplied patterns and JSON bodies never stall the
event loop, and hostile JSON is a clear 400 on every route that takes it. Production app, real
PostgreSQL, local storage, real worker processes."""

from __future__ import annotations

import asyncio
import io
import json
import os
import time

import aiohttp
import pytest

from ingest_helpers import SPEC, landed, register
from ingest_server.web.appkeys import SETTINGS
from test_hostile_inputs import statuses

ROWS = [{"date": "2024-01-01", "school_id": "S1", "teachers_present": 4}]
JSON = {"Content-Type": "application/json"}


def rows_body(**fields) -> dict:
    return {"event_name": "teacherspresent", "event": ROWS, **fields}


# -- item 11: reserved programme names on the JSON-row routes ------------------------------------

@pytest.mark.parametrize("program", ["dimensions", "datasets", "Dimensions", "DATASETS"])
async def test_json_rows_refuse_reserved_program_names(client, auth_headers, clean_db, program):
    await register(client, auth_headers)
    resp = await client.post("/api/ingestion/event", headers=auth_headers,
                             json=rows_body(program_name=program))
    assert resp.status == 400, await resp.text()  # was: 200, event rows in the shared folder
    error = (await resp.json())["error"]
    assert (error["code"], error["details"]["field"]) == ("reserved_name", "program_name")
    assert await landed(client) == [] and await statuses(clean_db) == []


# -- item 12: a lone surrogate escape ------------------------------------------------------------

LONE = [r'"\ud800"', r'"x\udfffy"', r'"\ud800\u0041"']


@pytest.mark.parametrize("lone", LONE)
async def test_a_lone_surrogate_in_json_rows_is_400(client, auth_headers, clean_db, lone):
    await register(client, auth_headers)
    body = ('{"event_name": "teacherspresent", "event": [{"date": "2024-01-01", '
            f'"school_id": {lone}, "teachers_present": 4}}]}}')
    resp = await client.post("/api/ingestion/event", data=body.encode(),
                             headers=dict(auth_headers, **JSON))
    assert resp.status == 400, await resp.text()  # was: 500
    error = (await resp.json())["error"]
    assert error["code"] == "invalid_json" and "surrogate" in error["message"]
    assert await landed(client) == [] and await statuses(clean_db) == []


@pytest.mark.parametrize("lone", LONE)
async def test_a_lone_surrogate_in_a_spec_is_400(client, auth_headers, clean_db, lone):
    cqube = ('{"program": "x", "input": {"type": "object", "properties": {"a": '
             f'{{"type": "string", "description": {lone}}}}}}}}}')
    resp = await client.post("/api/spec/event", data=cqube.encode(),
                             headers=dict(auth_headers, **JSON))
    assert resp.status == 400, await resp.text()  # was: 500
    assert (await resp.json())["error"]["code"] == "invalid_json"
    cerberus = f'{{"cerberus": {{"a": {{"type": "string", "allowed": [{lone}]}}}}}}'
    resp = await client.put("/api/specs/event/x", data=cerberus.encode(),
                            headers=dict(auth_headers, **JSON))
    assert resp.status == 400, await resp.text()  # was: 500
    assert (await resp.json())["error"]["code"] == "invalid_json"
    resp = await client.get("/api/specs", headers=auth_headers)
    assert (await resp.json())["specs"] == []


async def test_escaped_backslashes_and_surrogate_pairs_are_fine(client, auth_headers):
    """Only a lone surrogate is refused: ``\\\\ud800`` is a backslash and text, and a pair is
    one character."""
    await register(client, auth_headers)
    body = ('{"event_name": "teacherspresent", "event": [{"date": "2024-01-01", '
            r'"school_id": "\\ud800 \ud83d\ude00", "teachers_present": 4}]}')
    resp = await client.post("/api/ingestion/event", data=body.encode(),
                             headers=dict(auth_headers, **JSON))
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["valid_record_count"] == 1
    from ingest_helpers import read_object
    rows = await read_object(client, (await resp.json())["objects"]["valid"])
    assert rows[1][1] == "\\ud800 \U0001F600"


# -- item 13: /validate's grammar ----------------------------------------------------------------

def validate_form(grammar: bytes) -> aiohttp.FormData:
    f = aiohttp.FormData()
    f.add_field("type", "event-grammar")
    f.add_field("grammar", io.BytesIO(grammar), filename="spec.json",
                content_type="application/json")
    return f


@pytest.mark.parametrize("grammar", [
    b'{"program": "x", "input": ' + b'{"a": ' * 100_000 + b'1' + b'}' * 100_001,
    b'[' * 100_000 + b']' * 100_000,
    b'{"program": "x", "input": {"type": "object", "properties": {"a": {"type": "string", '
    b'"description": "\\ud800"}}}}',
    b'{"program": "x", "input": {"type": "object", "properties": {"a": {"type": "number", '
    b'"maximum": NaN}}}}',
], ids=["nested-object", "nested-array", "lone-surrogate", "nan"])
async def test_validate_refuses_hostile_grammar_json_with_400(client, auth_headers, grammar):
    resp = await client.post("/api/ingestion/validate", headers=auth_headers,
                             data=validate_form(grammar))
    assert resp.status == 400, await resp.text()  # was: 500 (RecursionError, UnicodeEncodeError)
    error = (await resp.json())["error"]
    assert error["code"] == "invalid_spec" and "not valid JSON" in error["message"]


async def test_validate_still_checks_a_good_grammar(client, auth_headers):
    resp = await client.post("/api/ingestion/validate", headers=auth_headers,
                             data=validate_form(json.dumps(SPEC).encode()))
    assert resp.status == 201, await resp.text()
    assert await resp.json() == {"errors": []}


# -- item 6: every client pattern checked off the event loop, each chunk time-bounded ------------

DEADLINE_S = 3.0
SLOW_CELL = b"a" * 30 + b"!"  # ^(a+)+$ backtracks 2**30 ways: over a minute on a fast core
# (26 a's, the case of the issue, took 5 s on a quiet core here: too close to DEADLINE_S)
PATTERN_SPEC = {"program": "slow", "input": {"type": "object", "properties": {
    "name": {"type": "string", "pattern": "^(a+)+$"}}, "required": ["name"]}}


@pytest.fixture
async def guarded(aiohttp_client, tmp_path, clean_db):
    """A client of a server whose pattern checks have DEADLINE_S per chunk, and its headers."""
    from conftest import TEST_CLIENT, basic, make_settings
    from ingest_server.web.app import create_app

    settings = make_settings(tmp_path, clean_db, limits={"pattern_chunk_timeout_s": DEADLINE_S})
    client = await aiohttp_client(create_app(settings))
    resp = await client.get("/api/ingestion/generatejwt", headers=basic(*TEST_CLIENT, json=True))
    return client, {"Authorization": f"Bearer {(await resp.json())['token']}"}


async def _healthz_while(client, work, limit_s: float = DEADLINE_S + 30
                         ) -> tuple[object, list[float]]:
    """Run ``work`` and ask ``/healthz`` every 50 ms until it is done: its answer and every
    /healthz latency."""
    task = asyncio.create_task(work)
    latencies: list[float] = []
    deadline = time.monotonic() + limit_s
    while not task.done():
        t0 = time.monotonic()
        resp = await asyncio.wait_for(client.get("/healthz"), timeout=10)
        assert resp.status == 200
        latencies.append(time.monotonic() - t0)
        await asyncio.sleep(0.05)
        assert time.monotonic() < deadline, "the pattern check was not stopped"
    return await task, latencies


def _assert_responsive(latencies: list[float], limit_s: float = 1.0) -> None:
    print(f"/healthz: {len(latencies)} answers, slowest {max(latencies) * 1000:.0f} ms")
    assert len(latencies) >= 3, latencies  # the work took a while, the server answered all along
    assert max(latencies) < limit_s, latencies  # was: blocked for the whole work (seconds)


async def _pool(client):
    from ingest_server.web.appkeys import INGEST

    return client.app[INGEST].runners.isolated


FORMAT_SPEC = {"program": "slow", "input": {"type": "object", "properties": {
    "name": {"type": "string", "format": "regex"}}, "required": ["name"]}}
SLOW_TO_COMPILE = b"(a)" * 600_000  # format "regex" compiles each cell: 13 s on a quiet core
# (100,000 took 2.1 s on a quiet core: under DEADLINE_S, so the upload landed)


@pytest.mark.parametrize("route", ["new_programs", "json_rows", "cerberus_regex",
                                   "format_regex"])
async def test_a_catastrophic_pattern_is_stopped_and_healthz_answers(guarded, clean_db, route):
    """``^(a+)+$`` against 30 a's and '!': the check runs in a killable worker, /healthz answers
    all along (was: on the event loop for a cQube ``pattern``, frozen for the whole check), and
    the chunk's deadline stops it with 400 ``pattern_timeout`` (was: a worker busy for minutes)."""
    from ingest_helpers import upload

    client, auth_headers = guarded
    if route == "cerberus_regex":
        resp = await client.put("/api/specs/event/slow", headers=auth_headers, json={
            "cerberus": {"name": {"type": "string", "regex": "(a+)+$", "required": True}}})
        assert resp.status == 201, await resp.text()
    else:
        await register(client, auth_headers,
                       FORMAT_SPEC if route == "format_regex" else PATTERN_SPEC)
    cell = SLOW_TO_COMPILE if route == "format_regex" else SLOW_CELL
    fields = {"ingestion_type": "event", "ingestion_name": "slow", "program_name": "p"}
    started = time.monotonic()
    if route == "json_rows":
        async def post():
            resp = await client.post("/api/ingestion/event", headers=auth_headers, json={
                "event_name": "slow", "program_name": "p",
                "event": [{"name": cell.decode()}]})
            return resp.status, await resp.json()
        work = post()
    else:
        work = upload(client, auth_headers, b"name\n" + cell + b"\n", fields=fields)
    (status, body), latencies = await _healthz_while(client, work)
    elapsed = time.monotonic() - started
    _assert_responsive(latencies)
    assert status == 400, body
    error = body["error"]
    assert error["code"] == "pattern_timeout" and error["details"]["first_line"] == 2, error
    assert elapsed < DEADLINE_S + 15, elapsed
    assert await landed(client) == [] and await statuses(clean_db) == ["rejected"]
    # the stuck worker was killed and replaced: the next upload is checked at once
    pool = await _pool(client)
    assert pool.killed == 1
    status, body = await upload(client, auth_headers, b"name\naaaa\n", fields=fields)
    assert (status, body["valid_rows"]) == (200, 1), body


async def test_validate_checks_a_catastrophic_pattern_off_the_loop(guarded):
    client, auth_headers = guarded
    f = aiohttp.FormData()
    f.add_field("type", "event-data")
    f.add_field("grammar", io.BytesIO(json.dumps(PATTERN_SPEC).encode()), filename="g.json",
                content_type="application/json")
    f.add_field("data", io.BytesIO(b"name\n" + SLOW_CELL + b"\n"), filename="d.csv",
                content_type="text/csv")

    async def work():
        resp = await client.post("/api/ingestion/validate", headers=auth_headers, data=f)
        return resp.status, await resp.json()

    (status, body), latencies = await _healthz_while(client, work())
    _assert_responsive(latencies)  # was: /validate always checked in-process, on the loop
    assert status == 201, body
    assert [e["code"] for e in body["errors"]] == ["pattern_timeout"], body
    assert (await _pool(client)).killed == 1


# -- item 7: JSON-row bodies never parsed whole, never on the event loop -------------------------

def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


TINY = {"program": "tiny", "input": {"type": "object", "properties": {
    "a": {"type": "string"}, "b": {"type": "integer"}}, "required": ["a", "b"]}}


async def test_a_16_mib_json_body_keeps_healthz_answering_and_memory_flat(client, auth_headers):
    """A JSON-row body just under ``limits.max_json_bytes`` (16 MiB) of small rows, the shape
    that costs most as Python objects, is spooled and read a row at a time in a thread:
    /healthz answers all along and the process grows by a fraction of the body (was: parsed
    whole on the event loop, the server frozen for seconds and ~25x the body in memory)."""
    await register(client, auth_headers, TINY)
    row = '{"a": "x%d", "b": %d}'
    count = (16 * 2**20 - 100) // len(row % (999, 9) + ", ")
    text = ", ".join(row % (n % 1000, n % 10) for n in range(count))
    body = ('{"event_name": "tiny", "program_name": "big", "event": [' + text + "]}").encode()
    del text
    assert 15 * 2**20 < len(body) <= 16 * 2**20
    base = _rss_mb()
    peak = [base]

    async def post():
        resp = await client.post("/api/ingestion/event", data=io.BytesIO(body),
                                 headers=dict(auth_headers, **JSON))
        return resp.status, await resp.json()

    async def sample():
        while True:
            peak[0] = max(peak[0], _rss_mb())
            await asyncio.sleep(0.02)

    sampler = asyncio.create_task(sample())
    try:
        (status, answer), latencies = await _healthz_while(client, post(), limit_s=600)
    finally:
        sampler.cancel()
    print(f"16 MiB JSON body ({count} rows): RSS {base:.0f} MB -> peak {peak[0]:.0f} MB")
    # was: 13 s frozen while the body was parsed (the issue measured 5 s). Not tighter: with
    # load 17 on 2 cores (8 test runs at once) a lone 1 s stall of the whole process was seen.
    _assert_responsive(latencies, limit_s=2.0)
    assert status == 200, answer
    assert (answer["valid_record_count"], answer["invalid_record_count"]) == (count, 0)
    assert peak[0] - base < 160, (base, peak[0])  # was: +400 MB and more (~25x the body)
    from ingest_helpers import read_object
    written = await read_object(client, answer["objects"]["valid"])
    assert written[0] == ["a", "b"]
    assert written[1:] == [[f"x{n % 1000}", str(n % 10)] for n in range(count)]


@pytest.mark.parametrize("payload, code", [
    (b'[{"event_name": "teacherspresent"}]', "invalid_body"),
    (b'{"event_name": "teacherspresent", "event": [' + b'[' * 100 + b']' * 100 + b']}',
     "invalid_json"),
    (b'{"event_name": "teacherspresent", "event": [{"a": NaN}]}', "invalid_json"),
    (b'{"event_name": "teacherspresent", "event": [{"a": 1e400}]}', "invalid_json"),
    (b'{"event_name": "teacherspresent", "event": [{"a": 1}] x', "invalid_json"),
    (b'{"event_name": "teacherspresent", "event": [{"a": 1},]}', "invalid_json"),
    (b'{"event_name": "teacherspresent", "event": [{"a": 1}]} []', "invalid_json"),
    (b'{"event_name": "teacherspresent", "event": {"a": 1}}', "invalid_field"),
    (b'{"event_name": "teacherspresent", "event": [{"a": 1}], "event": [{"a": 2}]}',
     "invalid_body"),
    (b'{"event_name": "teacherspresent", "event": [{"a": 1}, 2]}', "invalid_field"),
    (b'{"event_name": 5, "event": [{"a": 1}]}', "missing_field"),
    (b'{"event": [], "event_name": "teacherspresent"}', "invalid_field"),
    (b'{"event_name": "teacherspresent"}', "missing_field"),
    (b'\xff{}', "invalid_json"),
], ids=["array", "deep", "nan", "inf", "garbage", "trailing-comma", "two-documents",
        "rows-object", "rows-twice", "row-not-object", "name-not-string", "no-rows",
        "rows-missing", "not-utf8"])
async def test_json_row_bodies_read_a_row_at_a_time_refuse_what_json_refuses(
        client, auth_headers, clean_db, payload, code):
    await register(client, auth_headers)
    resp = await client.post("/api/ingestion/event", data=payload,
                             headers=dict(auth_headers, **JSON))
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["error"]["code"] == code
    assert await landed(client) == [] and await statuses(clean_db) == []
    assert list((client.app[SETTINGS].path(client.app[SETTINGS].server.state_dir)
                 / "spool").iterdir()) == []


async def test_json_rows_members_in_any_order_and_nested_values(client, auth_headers):
    await register(client, auth_headers)
    payload = (b'{"event": [{"date": "2024-01-01", "school_id": "S1", "teachers_present": 4, '
               b'"extra": {"k": [1, 2.5, null, true]}}, {"school_id": "S2", "date": '
               b'"2024-01-02", "teachers_present": 1.0}] , "program_name": "p", '
               b'"event_name": "teacherspresent"}')
    resp = await client.post("/api/ingestion/event", data=payload,
                             headers=dict(auth_headers, **JSON))
    assert resp.status == 200, await resp.text()
    from ingest_helpers import read_object
    assert await read_object(client, (await resp.json())["objects"]["valid"]) == [
        ["date", "school_id", "teachers_present", "extra"],
        ["2024-01-01", "S1", "4", '{"k": [1, 2.5, null, true]}'],
        ["2024-01-02", "S2", "1.0", ""]]


async def test_the_json_body_limit_is_documented_in_openapi(client):
    document = await (await client.get("/api/openapi.json")).json()
    for kind in ("event", "dimension", "dataset"):
        op = document["paths"][f"/api/ingestion/{kind}"]["post"]
        assert "16 MiB" in op["requestBody"]["description"]  # was: no description
        assert "limits.max_json_bytes" in op["requestBody"]["description"]
        assert "413" in op["responses"]
