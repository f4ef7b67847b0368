"""The event loop stays free: a catastrophic regular expression is checked off the loop (stopped by
``pattern_timeout``) and a 16 MiB JSON body is read without holding it, while ``/healthz`` keeps
answering."""

from __future__ import annotations

import asyncio
import io
import json
import os
import time

import aiohttp
import pytest

from ingest_helpers import landed, register, statuses, upload


async def test_healthz_answers_while_a_catastrophic_regex_is_checked(client, auth_headers,
                                                                     clean_db):
    """``(a+)+$`` against a run of a's ending in '!' backtracks exponentially. The upload is
    checked in a worker process, so the server keeps answering (was: 13 s frozen, /healthz too,
    the small file being checked on the event loop). Since issue 21 each chunk also has a
    deadline (``limits.pattern_chunk_timeout_s``): a value that takes minutes is refused with
    ``pattern_timeout`` (test_a_catastrophic_pattern_is_stopped_and_healthz_answers); here a
    shorter run, checked to the end, keeps Cerberus's verdicts."""
    resp = await client.put("/api/specs/event/slow", headers=auth_headers, json={"cerberus": {
        "name": {"type": "string", "regex": "(a+)+$", "required": True}}})
    assert resp.status == 201, await resp.text()
    content = b"name\n" + b"a" * 14 + b"!\nok\n"
    fields = {"ingestion_type": "event", "ingestion_name": "slow", "program_name": "p"}
    task = asyncio.create_task(upload(client, auth_headers, content, fields=fields))
    deadline = time.monotonic() + 30
    while not task.done():
        t0 = time.monotonic()
        resp = await asyncio.wait_for(client.get("/healthz"), timeout=5)
        assert resp.status == 200 and time.monotonic() - t0 < 1.0, time.monotonic() - t0
        await asyncio.sleep(0.05)
        assert time.monotonic() < deadline
    status, body = await task
    assert status == 200 and (body["valid_rows"], body["invalid_rows"]) == (0, 2), body


JSON = {"Content-Type": "application/json"}


DEADLINE_S = 3.0


SLOW_CELL = b"a" * 30 + b"!"  # ^(a+)+$ backtracks 2**30 ways: over a minute on a fast core


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
