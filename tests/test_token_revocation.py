"""Tokens are revocable: every request checks the token's client against the configuration running
now (disabled, removed, secret rotated, scope withdrawn), and open-endpoint tokens die with it.

Each case gets a token from one app, then presents it to an app started on the changed
configuration (the same signing key, so the signature alone would still pass).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import TEST_CLIENT, basic, make_settings
from ingest_server.auth import hash_secret
from ingest_server.web.app import create_app


def clients_with(change: str) -> list[dict]:
    base = {"id": TEST_CLIENT[0], "secret_sha256": hash_secret(TEST_CLIENT[1]),
            "scopes": ["ingest", "spec", "read"]}
    if change == "disabled":
        return [dict(base, disabled=True)]
    if change == "removed":
        return [{"id": "someone-else", "secret_sha256": hash_secret("x" * 32)}]
    if change == "secret-rotated":
        return [dict(base, secret_sha256=hash_secret("a brand new secret 0123456789"))]
    if change == "unchanged":
        return [base]
    raise AssertionError(change)


async def token_from(aiohttp_client, settings) -> str:
    client = await aiohttp_client(create_app(settings))
    resp = await client.get("/api/ingestion/generatejwt", headers=basic(*TEST_CLIENT, json=True))
    assert resp.status == 200, await resp.text()
    return (await resp.json())["token"]


@pytest.mark.parametrize("change", ["disabled", "removed", "secret-rotated", "unchanged"])
async def test_a_changed_client_loses_its_tokens(aiohttp_client, tmp_path: Path, clean_db,
                                                 change):
    token = await token_from(aiohttp_client, make_settings(tmp_path, clean_db))
    later = make_settings(tmp_path, clean_db, auth={"clients": clients_with(change)})
    client = await aiohttp_client(create_app(later))
    resp = await client.get("/api/specs", headers={"Authorization": f"Bearer {token}"})
    if change == "unchanged":
        assert resp.status == 200, await resp.text()
        return
    assert resp.status == 401, await resp.text()  # was: 200 until the token expired
    assert (await resp.json())["error"]["code"] == "token_revoked"
    assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]


async def test_a_withdrawn_scope_is_withdrawn_from_tokens(aiohttp_client, tmp_path, clean_db):
    token = await token_from(aiohttp_client, make_settings(tmp_path, clean_db))
    read_only = [dict(clients_with("unchanged")[0], scopes=["read"])]
    client = await aiohttp_client(create_app(make_settings(tmp_path, clean_db,
                                                           auth={"clients": read_only})))
    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/specs", headers=headers)).status == 200
    resp = await client.post("/api/spec/event", headers=headers, json={})
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "insufficient_scope"


async def test_open_endpoint_tokens_die_when_it_closes(aiohttp_client, tmp_path, clean_db):
    """With a generated (persisted) signing key, the key outlives the open endpoint: its tokens
    must not (they carried every scope for up to token_ttl_s after it was closed)."""
    generated = {"jwt_secret": "", "open_token_endpoint": True}
    opened = make_settings(tmp_path, clean_db, auth=generated)
    client = await aiohttp_client(create_app(opened))
    resp = await client.get("/api/ingestion/generatejwt", headers={"Accept": "application/json"})
    assert resp.status == 200, await resp.text()
    headers = {"Authorization": f"Bearer {(await resp.json())['token']}"}
    assert (await client.get("/api/specs", headers=headers)).status == 200
    closed = make_settings(tmp_path, clean_db, auth=dict(generated, open_token_endpoint=False))
    client = await aiohttp_client(create_app(closed))
    resp = await client.get("/api/specs", headers=headers)
    assert resp.status == 401 and (await resp.json())["error"]["code"] == "token_revoked"
    # Configured clients are unaffected by the endpoint closing.
    token = await token_from(aiohttp_client, closed)
    resp = await client.get("/api/specs", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 200
