"""Forged tokens and the 401/403 error check shared by the token and authentication-attack tests."""

from __future__ import annotations

import time

import jwt

from conftest import JWT_SECRET, TEST_CLIENT
from ingest_server.auth import hash_secret, secret_version


async def assert_error(resp, status, code):
    assert resp.status == status, await resp.text()
    body = await resp.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert "details" in body["error"]
    assert resp.headers.get("X-Request-ID")
    return body


def forge(claims=None, key=JWT_SECRET, alg="HS256", headers=None, **overrides):
    now = int(time.time())
    base = {"sub": TEST_CLIENT[0], "iat": now, "exp": now + 600, "aud": "ingest-server",
            "iss": "ingest-server", "scope": "ingest spec read",
            "sv": secret_version(JWT_SECRET, hash_secret(TEST_CLIENT[1]))}
    base.update(claims or {})
    for k, v in overrides.items():
        if v is None:
            base.pop(k, None)
        else:
            base[k] = v
    return jwt.encode(base, key, algorithm=alg, headers=headers)
