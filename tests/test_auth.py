"""Tokens: issued only for good client credentials; every bad token refused with 401 + JSON."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest

from conftest import (DISABLED_CLIENT, JWT_SECRET, READ_ONLY_CLIENT, TEST_CLIENT, basic,
                      make_settings)
from ingest_server.web.app import create_app
from auth_helpers import assert_error, forge

SPEC_PATH = "/api/spec/event"


async def test_token_for_good_credentials(client):
    resp = await client.get("/api/ingestion/generatejwt", headers=basic(*TEST_CLIENT, json=True))
    assert resp.status == 200
    body = await resp.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    claims = jwt.decode(body["token"], JWT_SECRET, algorithms=["HS256"], audience="ingest-server")
    assert claims["sub"] == TEST_CLIENT[0]
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["iss"] == "ingest-server"
    assert set(claims["scope"].split()) == {"ingest", "spec", "read"}


@pytest.mark.parametrize("auth, code", [
    (None, "missing_credentials"),
    (basic(TEST_CLIENT[0], "wrong"), "invalid_client"),
    (basic("nobody", "x"), "invalid_client"),
    (basic(*DISABLED_CLIENT), "invalid_client"),
])
async def test_token_refused(client, auth, code):
    resp = await client.get("/api/ingestion/generatejwt", headers=auth or {})
    await assert_error(resp, 401, code)
    assert resp.headers["WWW-Authenticate"].startswith("Basic")


async def test_malformed_basic_header(client):
    resp = await client.get("/api/ingestion/generatejwt",
                            headers={"Authorization": "Basic !!!notbase64"})
    await assert_error(resp, 401, "invalid_client")


async def test_open_token_endpoint(aiohttp_client, tmp_path, clean_db):
    from ingest_server.web.app import create_app

    app = create_app(make_settings(tmp_path, clean_db, auth={"open_token_endpoint": True}))
    c = await aiohttp_client(app)
    resp = await c.get("/api/ingestion/generatejwt", headers={"Accept": "application/json"})
    assert resp.status == 200
    token = (await resp.json())["token"]
    resp = await c.get("/api/specs", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 200


def alg_none_token():
    b64 = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()
    now = int(time.time())
    return b64({"alg": "none", "typ": "JWT"}) + "." + b64(
        {"sub": "x", "iat": now, "exp": now + 600, "aud": "ingest-server", "iss": "ingest-server",
         "scope": "spec"}) + "."


def tampered_token():
    good = forge()
    head, payload, sig = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["sub"] = "admin"
    new = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{head}.{new}.{sig}"


@pytest.mark.parametrize("header, code", [
    (None, "missing_token"),
    ("Bearer", "missing_token"),
    ("Basic abc", "missing_token"),
    ("Bearer not-a-jwt", "invalid_token"),
    ("Bearer " + "a" * 5000, "invalid_token"),
    ("Bearer " + forge(key="another-secret-" + "x" * 64), "invalid_token"),
    ("Bearer " + alg_none_token(), "invalid_token"),
    ("Bearer " + tampered_token(), "invalid_token"),
    ("Bearer " + forge(exp=int(time.time()) - 100), "token_expired"),
    ("Bearer " + forge(exp=None), "invalid_token"),
    ("Bearer " + forge(iat=None), "invalid_token"),
    ("Bearer " + forge(sub=None), "invalid_token"),
    ("Bearer " + forge(aud="someone-else"), "invalid_token"),
    ("Bearer " + forge(iss="evil"), "invalid_token"),
    ("Bearer " + forge(nbf=int(time.time()) + 3600), "invalid_token"),
    ("Bearer " + forge(alg="HS512"), "invalid_token"),
])
async def test_bad_tokens_refused(client, header, code):
    headers = {"Authorization": header} if header else {}
    resp = await client.get("/api/specs", headers=headers)
    await assert_error(resp, 401, code)
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


async def test_missing_scope_is_403(client):
    resp = await client.get("/api/ingestion/generatejwt", headers=basic(*READ_ONLY_CLIENT, json=True))
    token = (await resp.json())["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/specs", headers=headers)).status == 200
    resp = await client.post(SPEC_PATH, headers=headers, json={"program": "x", "input": {}})
    body = await assert_error(resp, 403, "insufficient_scope")
    assert body["error"]["details"]["required_scope"] == "spec"
    resp = await client.post("/api/ingestion/new_programs", headers=headers, data=b"x")
    await assert_error(resp, 403, "insufficient_scope")


async def test_every_api_route_needs_a_token(client):
    public = {"/api/ingestion/generatejwt", "/api/openapi.json", "/api/docs", "/api/docs/{asset}",
              "/api/ingestion/raw"}  # raw: a signed link is its own authorisation (see below)
    for resource in client.app.router.resources():
        path = resource.canonical
        if not path.startswith("/api/") or path in public:
            continue
        for route in resource:
            if route.method == "OPTIONS":
                continue  # tus discovery is public by design (test_resumable.py)
            url = path.replace("{kind}", "event").replace("{name}", "x").replace("{id}", "x")
            resp = await client.request(route.method, url)
            if route.method == "HEAD":
                assert resp.status == 401
            else:
                await assert_error(resp, 401, "missing_token")


async def test_signed_download_route_without_a_valid_signature_is_refused(client):
    resp = await client.get("/api/ingestion/raw", params={"key": "emission/x.csv"})
    await assert_error(resp, 403, "invalid_signature")


async def test_health_is_public(client):
    resp = await client.get("/healthz")
    assert resp.status == 200 and (await resp.json())["status"] == "ok"
    resp = await client.get("/readyz")
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["checks"] == {"database": "ok", "storage": "ok"}


async def test_unknown_route_json_404(client, auth_headers):
    resp = await client.get("/api/nothing-here", headers=auth_headers)
    await assert_error(resp, 404, "not_found")


async def test_rs256_and_key_confusion(aiohttp_client, tmp_path, clean_db):
    """RS256 with a key file works; an HS256 token signed with the public key is refused."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from ingest_server.web.app import create_app

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    (tmp_path / "jwt.pem").write_bytes(pem)
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    settings = make_settings(tmp_path, clean_db, auth={
        "algorithm": "RS256", "private_key_file": str(tmp_path / "jwt.pem"), "jwt_secret": ""})
    c = await aiohttp_client(create_app(settings))
    resp = await c.get("/api/ingestion/generatejwt", headers=basic(*TEST_CLIENT, json=True))
    token = (await resp.json())["token"]
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    ok = await c.get("/api/specs", headers={"Authorization": f"Bearer {token}"})
    assert ok.status == 200
    # HS/RS confusion: an attacker signs HS256 with the (public) verification key.
    import hmac
    import hashlib

    b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    now = int(time.time())
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps({"sub": "x", "iat": now, "exp": now + 600, "aud": "ingest-server",
                           "iss": "ingest-server", "scope": "spec"}).encode())
    sig = b64(hmac.new(public, f"{head}.{body}".encode(), hashlib.sha256).digest())
    bad = await c.get("/api/specs", headers={"Authorization": f"Bearer {head}.{body}.{sig}"})
    await assert_error(bad, 401, "invalid_token")


EMPTY_BASIC = {"Authorization": "Basic Og=="}  # what Postman sends for an empty user and password


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
