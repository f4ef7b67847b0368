"""Schemathesis against the app's own /api/openapi.json: generated requests for every documented
operation, sent to a live server (the production app factory on a loopback port, in a thread),
must never get a 5xx and every answer must conform to the document (status, content type,
headers, body schema).

Bounded: a few examples per operation, so the module stays well under a minute.
"""

from __future__ import annotations

import asyncio
import threading

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance,
                                                response_headers_conformance,
                                                response_schema_conformance,
                                                status_code_conformance)

from conftest import TEST_CLIENT, make_settings
from ingest_helpers import SPEC



def _raw_bytes(ctx, value) -> bytes:
    """tus PATCH bodies (application/offset+octet-stream) are sent as they are."""
    return value if isinstance(value, bytes) else str(value).encode()


schemathesis.serializer("application/offset+octet-stream")(_raw_bytes)
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_headers_conformance, response_schema_conformance]


class LiveServer:
    """The production app on 127.0.0.1:<free port>, served by its own event loop in a thread."""

    def __init__(self, settings) -> None:
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.url = ""
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> "LiveServer":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(timeout=60)
        return self

    async def _start(self) -> None:
        from aiohttp import web

        from ingest_server.web.app import create_app

        self.runner = web.AppRunner(create_app(self.settings), access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(timeout=60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


@pytest.fixture(scope="module")
def live(tmp_path_factory, pg_dsn):
    server = LiveServer(make_settings(tmp_path_factory.mktemp("schemathesis"), pg_dsn)).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def bearer(live):
    resp = requests.get(f"{live.url}/api/ingestion/generatejwt", auth=TEST_CLIENT, timeout=10,
                        headers={"Accept": "application/json"})
    assert resp.status_code == 200, resp.text
    token = resp.json()["token"]
    # A spec, so upload operations get past "spec not found" for at least some examples.
    resp = requests.post(f"{live.url}/api/spec/event", json=SPEC, timeout=10,
                         headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code in (200, 201), resp.text
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def api_schema(live):
    return schemathesis.openapi.from_url(f"{live.url}/api/openapi.json")


def test_the_document_covers_the_api(api_schema):
    ops = {(op.method.upper(), op.path) for op in (r.ok() for r in api_schema.get_all_operations())}
    assert ("POST", "/api/ingestion/new_programs") in ops
    assert ("GET", "/api/ingestion/generatejwt") in ops
    assert len(ops) >= 12


def test_no_5xx_and_answers_conform(api_schema, live, bearer):
    """Each operation in turn (schemathesis's pytest plugin cannot parametrize from a fixture
    under pytest 9, so the strategies are driven with hypothesis directly)."""
    ran = []
    for result in api_schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=8, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case):
            headers = dict(bearer)
            if case.path == "/api/ingestion/generatejwt":
                headers = {}  # it sends (or not) Basic credentials of its own
            case.call_and_validate(base_url=live.url, headers=headers, checks=CHECKS, timeout=30)
            ran.append(case.path)

        check()
    assert len(set(ran)) >= 12
