"""getRawData (``rawdata.py``, ``stores/rawdata.py``): "today" is the day of ``storage.timezone``
(the zone of the cqube layout's date folders), not the server's local day; only a client with the
``rawdata`` scope gets links (and the cqube profile guards the route as cQube does); links never
carry a hostile Host and use ``server.public_url``."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from yarl import URL

from clients_helpers import DATA, OTHER, READER, app, bearer, settings_for, zipped
from conftest import RAWDATA_CLIENT as PULLER, TEST_CLIENT
from ingest_helpers import register, upload
from ingest_server.stores.rawdata import today_start


def test_today_starts_at_midnight_in_the_storage_time_zone():
    evening_utc = datetime(2026, 12, 7, 20, 0, tzinfo=timezone.utc)  # 01:30 on the 8th in India
    assert today_start("Asia/Kolkata", now=evening_utc) == datetime(
        2026, 12, 8, tzinfo=ZoneInfo("Asia/Kolkata"))
    assert today_start("UTC", now=evening_utc) == datetime(2026, 12, 7, tzinfo=timezone.utc)
    assert today_start("America/Los_Angeles", now=evening_utc).isoformat() == \
        "2026-12-07T00:00:00-08:00"


async def national(c, h):
    await register(c, h)
    _, body = await upload(c, h, zipped("teacherspresent.csv", DATA), fields={},
                           path="/api/ingestion/national_programs", filename="tp.zip",
                           content_type="application/zip")
    assert body["status"] == "uploaded", body
    return body


RAW = "/api/ingestion/getRawData"


PROGRAMS = {"program_names": ["teacherspresent"]}


async def test_get_raw_data_needs_the_rawdata_scope(aiohttp_client, tmp_path, clean_db):
    c = await app(aiohttp_client, settings_for(tmp_path, clean_db))
    await national(c, await bearer(c, TEST_CLIENT))
    for who in (TEST_CLIENT, OTHER, READER):
        resp = await c.post(RAW, json=PROGRAMS, headers=await bearer(c, who))
        body = await resp.json()
        assert resp.status == 403 and body["error"]["code"] == "insufficient_scope", body
        assert body["error"]["details"]["required_scope"] == "rawdata"
    resp = await c.post(RAW, json=PROGRAMS, headers=await bearer(c, PULLER))
    assert resp.status == 200
    [entry] = (await resp.json())["data"]
    [link] = entry["urls"]
    got = await c.get(URL(link).path_qs)
    assert got.status == 200 and b"2024-01-03,S3,7,ok" in await got.read()


async def test_cqube_profile_get_raw_data_is_guarded_as_cqube_does(aiohttp_client, tmp_path,
                                                                    clean_db):
    """cQube's controller guards getRawData with the JwtGuard of its other ingestion routes:
    a token that may read file-status may pull raw data (no extra grant)."""
    c = await app(aiohttp_client, settings_for(tmp_path, clean_db, compat={"profile": "cqube"}))
    await national(c, await bearer(c, TEST_CLIENT))
    for who in (TEST_CLIENT, READER, PULLER):
        resp = await c.post(RAW, json=PROGRAMS, headers=await bearer(c, who))
        assert resp.status == 200, await resp.text()
        assert len((await resp.json())["data"][0]["urls"]) == 1
    resp = await c.post(RAW, json=PROGRAMS)
    assert resp.status == 403


async def raw_request(c, host: bytes | None, token: str) -> tuple[int, bytes]:
    """POST getRawData with exactly this Host header line (None: none at all), over a socket."""
    body = b'{"program_names": ["teacherspresent"]}'
    reader, writer = await asyncio.open_connection("127.0.0.1", c.server.port)
    head = [b"POST " + RAW.encode() + b" HTTP/1.1"]
    if host is not None:
        head.append(b"Host: " + host)
    head += [b"Authorization: Bearer " + token.encode(), b"Content-Type: application/json",
             b"Content-Length: " + str(len(body)).encode(), b"Connection: close"]
    writer.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    status = int(answer.split(b" ", 2)[1])
    return status, answer.split(b"\r\n\r\n", 1)[1]


HOSTILE = [b"evil.example/x?y=", b"", b"\xc3\xa9vil.example", b"a b", b"evil.example@x",
           b"x:99999999", b"[::1", b"evil.example#frag", None]


@pytest.mark.parametrize("host", HOSTILE)
async def test_links_never_carry_a_hostile_host(aiohttp_client, tmp_path, clean_db, host):
    c = await app(aiohttp_client, settings_for(tmp_path, clean_db))
    await national(c, await bearer(c, TEST_CLIENT))
    token = (await bearer(c, PULLER))["Authorization"].split()[1]
    status, body = await raw_request(c, host, token)
    assert status == 400, body  # never a 500, never a link built on it
    if host is None:  # HTTP/1.1 without Host: aiohttp's own parser refuses it
        assert body.startswith(b"Missing 'Host' header"), body
    else:
        assert b'"invalid_host"' in body and b"server.public_url" in body
    ok_status, ok = await raw_request(c, b"ingest.example.org:8443", token)
    assert ok_status == 200 and b"http://ingest.example.org:8443/api/ingestion/raw?" in ok


@pytest.mark.parametrize("host", HOSTILE)
async def test_links_use_the_configured_public_url(aiohttp_client, tmp_path, clean_db, host):
    c = await app(aiohttp_client, settings_for(
        tmp_path, clean_db, server={"public_url": "https://ingest.example.org/base/"}))
    await national(c, await bearer(c, TEST_CLIENT))
    token = (await bearer(c, PULLER))["Authorization"].split()[1]
    status, body = await raw_request(c, host, token)
    if host is None:  # HTTP/1.1 without Host: aiohttp's own parser refuses it, before us
        assert (status, body) == (400, b"Missing 'Host' header in request.")
        return
    assert status == 200, body
    assert body.count(b"https://ingest.example.org/base/api/ingestion/raw?key=") == 1
    assert b"evil" not in body
