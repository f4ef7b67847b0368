"""``--workers 2``: one coherent ``/metrics`` whichever worker answers the scrape.

A real ``ingest-server --workers 2`` process: requests spread over both workers (their pids are
in the access log), and every scrape, from either worker, counts all of them.
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from conftest import JWT_SECRET
from testkit.server_process import ServerProcess, free_port, write_config

REQUESTS = 40


def _healthz_count(text: str) -> float:
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if (s.name == "ingest_http_requests_total" and s.labels.get("route") == "/healthz"
                    and s.labels.get("status") == "200"):
                return s.value
    return 0.0


def _started_pids(server) -> set[int]:
    return {json.loads(line)["pid"] for line in server.log_path.read_text().splitlines()
            if line.startswith("{") and '"event":"started"' in line.replace(" ", "")}


async def _both_workers_started(server, timeout_s: float = 30.0) -> None:
    """The first worker answers the start-up probe while the second may still be starting."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while len(_started_pids(server)) < 2:
        assert asyncio.get_running_loop().time() < deadline, server.log_path.read_text()[-2000:]
        await asyncio.sleep(0.05)


async def test_workers_answer_one_coherent_metrics(tmp_path, clean_db):
    (tmp_path / "plugins").mkdir()
    config = write_config(tmp_path / "config.toml", {
        "server": {"workers": 2, "plugins_dir": str(tmp_path / "plugins"),
                   "state_dir": str(tmp_path / "state")},
        "database": {"dsn": clean_db, "pool_max": 2},
        "storage": {"backend": "local", "root": str(tmp_path / "storage")},
        "auth": {"jwt_secret": JWT_SECRET},
        "ingest": {"workers": 1},
    })
    server = ServerProcess(config, free_port(), tmp_path / "server.log")
    server.start()  # its own start-up probe is one /healthz too
    try:
        await _both_workers_started(server)
        async def one(session):
            async with session.get(server.url + "/healthz") as r:
                assert r.status == 200

        # a new connection each: the kernel hands them to whichever worker accepts first
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            await asyncio.gather(*(one(session) for _ in range(REQUESTS)))
            scrapes = []
            for _ in range(8):
                async with session.get(server.url + "/metrics") as r:
                    scrapes.append(_healthz_count(await r.text()))
        pids = {json.loads(line)["pid"] for line in server.log_path.read_text().splitlines()
                if line.startswith("{") and '"path":"/healthz"' in line}
        assert len(pids) == 2, "both workers must have served (the test means nothing otherwise)"
        probes = scrapes[0] - REQUESTS
        assert probes >= 1 and scrapes == [REQUESTS + probes] * 8, scrapes
    finally:
        server.kill()
