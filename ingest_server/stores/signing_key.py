"""The HMAC signing key shared by every instance when ``auth.jwt_secret`` is not configured.

The first instance to start generates it into PostgreSQL under an advisory lock; instances that
race it wait on the lock and read the same key, so a token issued by one replica is accepted by
all. A configured ``auth.jwt_secret`` (or RS* key files) still wins: this is never consulted then.

Upgrading from a version that kept the generated key in ``<state_dir>/jwt_secret``: when the
database holds no key yet and that file exists, its key is imported (origin ``state_dir``), so
tokens issued before the upgrade stay valid. Once the database has a key the file is ignored
(a warning says so if it differs) and may be deleted.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

import asyncpg

from .db import stored
log = logging.getLogger("ingest_server.auth")

KEY_LOCK = 7_246_113_050  # advisory lock id; any constant shared by every instance
KEY_NAME = "jwt_signing_key"


def _read_legacy(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return ""


@stored
async def shared_signing_key(pool: asyncpg.Pool, legacy_file: Path) -> str:
    """The key in the database, created (or imported from ``legacy_file``) if there is none."""
    legacy = _read_legacy(legacy_file)
    async with pool.acquire() as conn:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", KEY_LOCK)
            value = await conn.fetchval("SELECT value FROM shared_secrets WHERE name = $1",
                                        KEY_NAME)
            if value is not None:
                if legacy and legacy != value:
                    log.warning("%s is ignored: the signing key in the database is used (delete "
                                "the file to silence this)", legacy_file)
                return value
            value, origin = (legacy, "state_dir") if legacy else (secrets.token_urlsafe(48),
                                                                   "generated")
            await conn.execute("INSERT INTO shared_secrets (name, value, origin) VALUES ($1, $2, $3)",
                               KEY_NAME, value, origin)
    if origin == "state_dir":
        log.warning("auth.jwt_secret is not set: imported the signing key of %s into the "
                    "database (shared by every instance)", legacy_file)
    else:
        log.warning("auth.jwt_secret is not set: generated a signing key into the database "
                    "(shared by every instance)")
    return value
