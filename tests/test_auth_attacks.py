"""Attacks on authentication that tests/test_auth.py does not already cover: tokens that are not
valid yet, tokens of the wrong scope on every write endpoint, oversized tokens and headers, and
Basic-credential brute force against the token endpoint (429 + Retry-After)."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time

import aiohttp
import asyncpg
import jwt
import pytest

from conftest import JWT_SECRET, READ_ONLY_CLIENT, TEST_CLIENT, basic, make_settings
from ingest_helpers import SPEC, form, landed
from ingest_server import auth
from ingest_server.auth import MAX_TOKEN_LENGTH, TokenService, hash_secret
from ingest_server.config import load_settings
from ingest_server.errors import ConfigError, Unauthorized
from ingest_server.web import appkeys
from ingest_server.web.openapi.document import OPERATIONS
from auth_helpers import assert_error, forge

TOKEN_PATH = "/api/ingestion/generatejwt"
SCOPES = ("ingest", "spec", "read", "rawdata")
ONE_SCOPE_CLIENTS = {s: (f"only-{s}", f"only-{s}-secret-0123456789") for s in SCOPES}
NO_SCOPE_CLIENT = ("no-scope", "no-scope-secret-0123456789")


# --- tokens that are not valid yet, malformed scope claims, oversized tokens -----------------

async def test_a_remembered_token_is_not_decoded_again_and_still_expires(client, monkeypatch):
    """A token whose signature and claims passed is remembered (a client sends the same token
    with every request), until its expiry: then it is refused as any expired token is."""
    tokens = TokenService(dataclasses.replace(client.app[appkeys.TOKENS].cfg, leeway_s=0))
    decoded = []
    real = auth.jwt.decode
    monkeypatch.setattr(auth.jwt, "decode", lambda *a, **k: decoded.append(1) or real(*a, **k))
    exp = int(time.time()) + 2
    token = forge(exp=exp)
    assert [tokens.verify(token).client for _ in range(3)] == [TEST_CLIENT[0]] * 3
    assert len(decoded) == 1
    with pytest.raises(Unauthorized) as err:
        tokens.verify(forge(exp=exp, sv="another-secret-version"))  # checked, then revoked
    assert err.value.code == "token_revoked"
    while time.time() < exp + 0.1:  # the token's own expiry
        await asyncio.sleep(0.05)
    with pytest.raises(Unauthorized) as err:
        tokens.verify(token)
    assert err.value.code == "token_expired"


@pytest.mark.parametrize("claims", [
    lambda now: {"iat": now + 3600},                               # issued in the future
    lambda now: {"nbf": now + 60, "iat": now},                     # just past the leeway
    lambda now: {"iat": "yesterday"},
    lambda now: {"nbf": "soon"},
], ids=["iat-future", "nbf-past-leeway", "iat-not-int", "nbf-not-int"])
async def test_tokens_not_valid_yet_are_refused(client, claims):
    # Times taken when the test runs, not when it is collected (a long session made the
    # "60 s ahead" token valid by the time it was sent).
    token = forge(claims(int(time.time())))
    resp = await client.get("/api/specs", headers={"Authorization": f"Bearer {token}"})
    await assert_error(resp, 401, "invalid_token")


async def test_not_before_within_the_leeway_is_accepted(client):
    """auth.leeway_s (5 s) absorbs clock skew between the issuer and this server."""
    token = forge({"nbf": int(time.time()) + 2})
    resp = await client.get("/api/specs", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 200, await resp.text()


@pytest.mark.parametrize("scope, status, code", [
    (["ingest", "spec", "read"], 401, "invalid_token"),   # a list, not the space-separated string
    ({"spec": True}, 401, "invalid_token"),
    ("SPEC READ", 403, "insufficient_scope"),            # scopes are case-sensitive
    ("spec,read", 403, "insufficient_scope"),            # not a separator
    ("", 403, "insufficient_scope"),
])
async def test_malformed_scope_claims_grant_nothing(client, scope, status, code):
    token = forge({"scope": scope})
    resp = await client.get("/api/specs", headers={"Authorization": f"Bearer {token}"})
    await assert_error(resp, status, code)


async def test_a_correctly_signed_but_oversized_token_is_refused(client):
    token = forge({"pad": "x" * MAX_TOKEN_LENGTH})
    assert MAX_TOKEN_LENGTH < len(token) < 8000  # fits in one HTTP header line
    jwt.decode(token, JWT_SECRET, algorithms=["HS256"], audience="ingest-server")  # really valid
    resp = await client.get("/api/specs", headers={"Authorization": f"Bearer {token}"})
    body = await assert_error(resp, 401, "invalid_token")
    assert "too long" in body["error"]["message"]


async def _raw_request(client, head: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        writer.write(head)
        await writer.drain()
        async with asyncio.timeout(10):
            return await reader.read(65536)
    finally:
        writer.close()


@pytest.mark.parametrize("size", [9 * 1024, 64 * 1024, 1024 * 1024])
async def test_headers_over_8_kib_are_refused_before_the_app(client, size):
    """aiohttp's parser refuses a header line over 8190 bytes with 400 and closes; the server
    keeps serving, and no part of the token is ever verified."""
    token = forge({"pad": "y" * size})
    head = (f"GET /api/specs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
            f"Connection: close\r\n\r\n").encode()
    answer = await _raw_request(client, head)
    status = int(answer.split(b" ", 2)[1])
    assert status in (400, 431), answer[:200]
    assert token.encode()[-100:] not in answer  # not echoed back
    ok = await client.get("/healthz")
    assert ok.status == 200


async def test_many_headers_are_refused(client):
    lines = "".join(f"X-Pad-{i}: {'z' * 100}\r\n" for i in range(2000))
    head = f"GET /api/specs HTTP/1.1\r\nHost: x\r\n{lines}Connection: close\r\n\r\n".encode()
    answer = await _raw_request(client, head)
    assert int(answer.split(b" ", 2)[1]) in (400, 431), answer[:200]
    assert (await client.get("/healthz")).status == 200


# --- scopes: no write endpoint without its scope ---------------------------------------------

@pytest.fixture
async def scoped_client(aiohttp_client, tmp_path, clean_db):
    from ingest_server.web.app import create_app

    clients = [{"id": cid, "secret_sha256": hash_secret(secret), "scopes": [scope]}
               for scope, (cid, secret) in ONE_SCOPE_CLIENTS.items()]
    clients.append({"id": NO_SCOPE_CLIENT[0], "secret_sha256": hash_secret(NO_SCOPE_CLIENT[1]),
                    "scopes": []})
    clients.append({"id": TEST_CLIENT[0], "secret_sha256": hash_secret(TEST_CLIENT[1])})
    settings = make_settings(tmp_path, clean_db, auth={"clients": clients})
    return await aiohttp_client(create_app(settings))


async def _bearer(c, login, secret) -> dict[str, str]:
    resp = await c.get(TOKEN_PATH, headers=basic(login, secret, json=True))
    assert resp.status == 200, await resp.text()
    return {"Authorization": f"Bearer {(await resp.json())['token']}"}


def _request_for(op) -> dict:
    """A request an authorised caller would make, so only the scope can be the reason to refuse."""
    if "new_programs" in op.path:
        return {"data": form(b"date,school_id,teachers_present\n2024-01-01,S1,3\n")}
    if "national_programs" in op.path:
        return {"data": form(b"PK\x05\x06" + b"\0" * 18, fields={}, filename="x.zip")}
    if op.path.startswith("/api/specs/") and op.method == "put":
        return {"json": {"cerberus": {"a": {"type": "string"}}}}
    if op.path.startswith("/api/spec/"):
        return {"json": SPEC}
    return {}


async def test_every_scoped_operation_refuses_tokens_without_its_scope(scoped_client, clean_db):
    c = scoped_client
    tokens = {name: await _bearer(c, *cred) for name, cred in ONE_SCOPE_CLIENTS.items()}
    tokens["none"] = await _bearer(c, *NO_SCOPE_CLIENT)
    scoped = [op for op in OPERATIONS if op.scope]
    assert {op.scope for op in scoped} == set(SCOPES)
    assert sum(op.method in ("post", "put") for op in scoped) >= 4  # specs and uploads are here
    checked = 0
    for op in scoped:
        url = op.path.replace("{kind}", "event").replace("{name}", "teacherspresent")
        url = re.sub(r"\{[^}]+\}", "x", url)  # any other path parameter: a well-formed value
        for name, headers in tokens.items():
            if name == op.scope:
                continue
            resp = await c.request(op.method.upper(), url, headers=headers, **_request_for(op))
            if op.method == "head":  # no body to carry the error (tus HEAD)
                assert resp.status == 403, (op.path, name)
                checked += 1
                continue
            body = await assert_error(resp, 403, "insufficient_scope")
            assert body["error"]["details"]["required_scope"] == op.scope, (op.path, name)
            checked += 1
    assert checked == len(scoped) * len(SCOPES)
    # Nothing got through: no spec, no upload record, no object.
    conn = await asyncpg.connect(clean_db)
    try:
        assert await conn.fetchval("SELECT count(*) FROM specs") == 0
        assert await conn.fetchval("SELECT count(*) FROM uploads") == 0
    finally:
        await conn.close()
    assert await landed(c) == []
    # The same writes with the right scope do work (the requests above were well formed).
    resp = await c.post("/api/spec/event", json=SPEC, headers=tokens["spec"])
    assert resp.status == 201, await resp.text()
    resp = await c.post("/api/ingestion/new_programs", headers=tokens["ingest"],
                        data=_request_for(OPERATIONS[[o.path for o in OPERATIONS].index(
                            "/api/ingestion/new_programs")])["data"])
    assert resp.status == 200, await resp.text()


async def test_a_token_for_another_audience_scope_cannot_write_specs(client):
    """A token with full scopes but minted for another service (aud) or by another issuer."""
    for claims in ({"aud": "reporting-api"}, {"iss": "other-idp"}, {"aud": ["x", "y"]}):
        resp = await client.post("/api/spec/event", json=SPEC,
                                 headers={"Authorization": f"Bearer {forge(claims)}"})
        await assert_error(resp, 401, "invalid_token")


# --- brute force on the token endpoint -------------------------------------------------------

def _limited_settings(tmp_path, dsn, **auth):
    base = make_settings(tmp_path, dsn)
    clients = [{"id": c.id, "secret_sha256": c.secret_sha256, "scopes": list(c.scopes),
                "disabled": c.disabled} for c in base.auth.clients]
    return make_settings(tmp_path, dsn, auth=dict({"clients": clients}, **auth))


@pytest.fixture
async def limited(aiohttp_client, tmp_path, clean_db):
    from ingest_server.web.app import create_app

    settings = _limited_settings(tmp_path, clean_db, max_failed_attempts=5,
                                 max_failed_attempts_per_address=5, failed_attempts_window_s=300)
    return await aiohttp_client(create_app(settings))


async def _get_token(c, headers, source_ip: str = "127.0.0.1"):
    """A token request from a given loopback source address (all of 127/8 is local on Linux)."""
    connector = aiohttp.TCPConnector(local_addr=(source_ip, 0))
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.get(c.make_url(TOKEN_PATH),
                               headers={**headers, "Accept": "application/json"}) as resp:
            return resp.status, dict(resp.headers), await resp.json()


async def test_failures_from_one_address_are_rate_limited(limited):
    for i in range(5):  # a different client id each time: the address alone is counted
        status, _, body = await _get_token(limited, basic(f"guess-{i}", "x"))
        assert (status, body["error"]["code"]) == (401, "invalid_client")
    status, headers, body = await _get_token(limited, basic(*TEST_CLIENT))  # even the right one
    assert status == 429 and body["error"]["code"] == "rate_limited", body
    assert set(body) == {"error"} and body["error"]["message"]
    assert 1 <= int(headers["Retry-After"]) <= 300
    assert body["error"]["details"]["retry_after_s"] == int(headers["Retry-After"])
    assert headers.get("X-Request-ID")
    # Another address with the right credentials is not affected.
    status, _, body = await _get_token(limited, basic(*TEST_CLIENT), "127.0.0.2")
    assert status == 200 and body["token"]


async def test_a_stranger_cannot_lock_a_client_out(limited):
    """Wrong secrets for a client id from one address block that (client, address) pair only:
    the right secret from another address still gets its token (was: 429 for 5 min, a lockout
    anyone knowing a client id could cause)."""
    for i in range(5):
        status, _, body = await _get_token(limited, basic(TEST_CLIENT[0], f"guess{i}"),
                                           "127.0.1.1")
        assert (status, body["error"]["code"]) == (401, "invalid_client")
    status, headers, body = await _get_token(limited, basic(*TEST_CLIENT), "127.0.1.1")
    assert (status, body["error"]["code"]) == (429, "rate_limited")  # that pair is blocked
    assert int(headers["Retry-After"]) >= 1
    status, _, body = await _get_token(limited, basic(*TEST_CLIENT), "127.0.2.1")
    assert status == 200 and body["token"], body


async def test_many_addresses_guessing_one_client_slow_it_down_but_never_lock_it(
        aiohttp_client, tmp_path, clean_db):
    """A guess spread over many addresses (each under its pair limit) meets the per-client
    slow-down: past ``auth.slow_down_after_failures`` failures for the id in the window, every
    Basic attempt for it waits ``auth.slow_down_s`` first, right or wrong; the right secret is
    still answered 200, from any address."""
    from ingest_server.web.app import create_app

    c = await aiohttp_client(create_app(_limited_settings(
        tmp_path, clean_db, max_failed_attempts=5, slow_down_after_failures=6,
        slow_down_s=1.5)))
    for i in range(6):
        status, _, _ = await _get_token(c, basic(TEST_CLIENT[0], f"guess{i}"), f"127.0.3.{i + 1}")
        assert status == 401
    started = time.monotonic()
    status, _, _ = await _get_token(c, basic(TEST_CLIENT[0], "wrong"), "127.0.4.1")
    assert status == 401 and time.monotonic() - started >= 1.5
    started = time.monotonic()
    status, _, body = await _get_token(c, basic(*TEST_CLIENT), "127.0.4.2")
    assert status == 200 and body["token"] and time.monotonic() - started >= 1.5
    # Another client id is not slowed down by the guesses at this one.
    status, _, _ = await _get_token(c, basic(*READ_ONLY_CLIENT), "127.0.4.3")
    assert status == 200
    counts = await _failure_counts(clean_db)
    assert counts[f"client:{TEST_CLIENT[0]}"] == 7
    assert counts[f"pair:{TEST_CLIENT[0]}@127.0.3.1"] == 1
    assert counts["ip:127.0.4.1"] == 1


async def _failure_counts(dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT key, sum(failures)::int AS n FROM auth_failures GROUP BY key")
    finally:
        await conn.close()
    return {r["key"]: r["n"] for r in rows}


async def test_successful_logins_do_not_count(limited):
    for _ in range(20):
        status, _, _ = await _get_token(limited, basic(*TEST_CLIENT))
        assert status == 200
    for _ in range(5):
        status, _, _ = await _get_token(limited, basic(TEST_CLIENT[0], "wrong"))
        assert status == 401
    status, _, _ = await _get_token(limited, basic(TEST_CLIENT[0], "wrong"))
    assert status == 429


async def test_malformed_basic_headers_count_against_the_address(limited):
    for _ in range(5):
        status, _, body = await _get_token(limited, {"Authorization": "Basic !!!"})
        assert (status, body["error"]["code"]) == (401, "invalid_client")
    status, _, body = await _get_token(limited, {"Authorization": "Basic !!!"})
    assert (status, body["error"]["code"]) == (429, "rate_limited")
    # Bearer requests elsewhere are not the token endpoint's business.
    assert (await limited.get("/healthz")).status == 200


async def test_limit_zero_turns_it_off(aiohttp_client, tmp_path, clean_db):
    from ingest_server.web.app import create_app

    c = await aiohttp_client(create_app(_limited_settings(tmp_path, clean_db,
                                                          max_failed_attempts=0)))
    for _ in range(30):
        resp = await c.get(TOKEN_PATH, headers=basic(TEST_CLIENT[0], "wrong"))
        assert resp.status == 401
    assert (await c.get(TOKEN_PATH, headers=basic(*TEST_CLIENT))).status == 200


def test_config_keys_env_and_checks(tmp_path):
    s = load_settings(None, env={"INGEST_AUTH_MAX_FAILED_ATTEMPTS": "3",
                                 "INGEST_AUTH_FAILED_ATTEMPTS_WINDOW_S": "60"})
    assert (s.auth.max_failed_attempts, s.auth.failed_attempts_window_s) == (3, 60)
    defaults = load_settings("config.toml", env={})
    assert (defaults.auth.max_failed_attempts, defaults.auth.failed_attempts_window_s) == (10, 300)
    for env, key in (({"INGEST_AUTH_MAX_FAILED_ATTEMPTS": "-1"}, "auth.max_failed_attempts"),
                     ({"INGEST_AUTH_FAILED_ATTEMPTS_WINDOW_S": "0"},
                      "auth.failed_attempts_window_s")):
        with pytest.raises(ConfigError, match=key):
            load_settings(None, env=env)
