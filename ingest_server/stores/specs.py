"""The spec store: versioned Cerberus schemas in PostgreSQL.

A spec's identity is ``(kind, name)``; each distinct content is a new version, found by the SHA-256
of its canonical JSON, so re-posting the same spec changes nothing. The hot path asks for the latest
version once per upload (one indexed query), never per row.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from .db import stored
from ..errors import RateLimited, SpecNotFound

KINDS = ("event", "dimension", "dataset")


@dataclass(frozen=True)
class Spec:
    kind: str
    name: str
    version: int
    cerberus: dict[str, Any]
    source: dict[str, Any] | None
    source_format: str
    sha256: str
    created_at: datetime | None = None
    created_by: str | None = None
    columns: tuple[str, ...] | None = None  # in the order posted (None: registered before 120)

    @property
    def cache_key(self) -> str:
        """Identifies this exact schema content, e.g. for compiled-validator caches."""
        return f"{self.kind}/{self.name}/v{self.version}/{self.sha256[:16]}"

    def to_json(self, *, with_schema: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": self.kind, "name": self.name, "version": self.version,
            "sha256": self.sha256, "source_format": self.source_format,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "created_by": self.created_by,
        }
        # A page of version summaries is read without the schema: an old version's order is
        # then unknown (null) rather than guessed.
        known = self.columns is not None or self.cerberus is not None
        out["columns"] = ordered_columns(self) if known else None
        if with_schema:
            out["cerberus"] = self.cerberus
            out["source"] = self.source
        return out


def posted_columns(cerberus: dict[str, Any], source: Any) -> list[str]:
    """The columns in the order the spec was posted (a parsed JSON object keeps its order)."""
    if isinstance(source, dict):
        props = (source.get("input") or {}).get("properties") if isinstance(
            source.get("input"), dict) else None
        if isinstance(props, dict):
            return [str(c) for c in props]
    return [str(c) for c in cerberus]


def ordered_columns(spec: Spec) -> list[str]:
    """The spec's columns in its own order: as posted; for a spec stored before that order was
    kept, its ``required`` list's order first (a JSON array keeps it), then the rest by name."""
    if spec.columns is not None:
        return list(spec.columns)
    required: list[str] = []
    if isinstance(spec.source, dict) and isinstance(spec.source.get("input"), dict):
        required = [c for c in spec.source["input"].get("required") or []
                    if c in spec.cerberus]
    if not required:
        required = [c for c, r in spec.cerberus.items()
                    if isinstance(r, dict) and r.get("required")]
    return required + sorted(c for c in spec.cerberus if c not in required)


def content_hash(body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _row_to_spec(r: asyncpg.Record) -> Spec:
    return Spec(kind=r["kind"], name=r["name"], version=r["version"], cerberus=r["cerberus"],
                source=r["source"], source_format=r["source_format"], sha256=r["sha256"],
                created_at=r["created_at"], created_by=r["created_by"],
                columns=tuple(r["columns"]) if r.get("columns") is not None else None)


COLUMNS = ("kind, name, version, cerberus, source, source_format, sha256, created_at, created_by, "
           "columns")
SQL_LATEST = ("SELECT " + COLUMNS + " FROM specs WHERE kind = $1 AND name = $2 "
              "ORDER BY version DESC LIMIT 1")
SQL_VERSIONS = ("SELECT " + COLUMNS + " FROM specs WHERE kind = $1 AND name = $2 "
                "AND version < $3 ORDER BY version DESC LIMIT $4")
# Summaries leave the schema and body out (the bulk of a wide spec), except for versions stored
# before their column order was (migration 120): ordered_columns works it out from them.
SQL_SUMMARIES = ("SELECT kind, name, version, "
                 "CASE WHEN columns IS NULL THEN cerberus END AS cerberus, "
                 "CASE WHEN columns IS NULL THEN source END AS source, "
                 "source_format, sha256, created_at, created_by, columns FROM specs "
                 "WHERE kind = $1 AND name = $2 AND version < $3 ORDER BY version DESC LIMIT $4")
# The versions one client made of one spec in the last day, and when the oldest leaves that day.
SQL_RECENT = ("SELECT count(*) AS n, extract(epoch FROM min(created_at) + interval '1 day' - now()) "
              "AS wait_s FROM specs WHERE kind = $1 AND name = $2 "
              "AND created_by IS NOT DISTINCT FROM $3 AND created_at > now() - interval '1 day'")
SQL_INSERT = ("INSERT INTO specs (kind, name, version, cerberus, source, source_format, sha256, "
              "created_by, columns) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING "
              + COLUMNS)
SQL_NAMES = "SELECT DISTINCT name FROM specs WHERE kind = $1 ORDER BY name LIMIT 10000"
SQL_LIST = ("SELECT DISTINCT ON (kind, name) " + COLUMNS + " FROM specs "
            "WHERE ($1::text IS NULL OR kind = $1) ORDER BY kind, name, version DESC")


class SpecStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        # The newest version this process has seen of each spec: an upload starts from it and
        # learns from its own row's INSERT whether the database holds a newer one
        # (``UploadStore.create``), so no lookup of its own. Specs are never deleted.
        self._seen: dict[tuple[str, str], Spec] = {}

    def last_seen(self, kind: str, name: str) -> Spec | None:
        """The newest version of the spec this process has read or written, if any: maybe not
        the latest any more (another process may have registered one)."""
        return self._seen.get((kind, name))

    def _saw(self, spec: Spec) -> Spec:
        seen = self._seen.get((spec.kind, spec.name))
        if seen is None or seen.version < spec.version:
            self._seen[(spec.kind, spec.name)] = spec
        return spec

    @stored
    async def register(self, *, kind: str, name: str, cerberus: dict, source: dict | None,
                       source_format: str, created_by: str | None,
                       per_day: int = 0, columns: list[str] | None = None) -> tuple[Spec, bool]:
        """Store a spec; returns ``(spec, created)`` — ``created`` is False for an identical re-post.
        ``per_day`` (``quotas.spec_versions_per_day``, 0 = none): new versions of this spec by
        ``created_by`` in the last 24 h, then 429 ``spec_version_quota``. ``columns``: the header
        in the order the spec was posted (templates)."""
        sha = content_hash({"cerberus": cerberus, "source": source})
        async with self.pool.acquire() as conn, conn.transaction():
            # Serialise writers of one spec so two new versions never race for one number.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"spec:{kind}:{name}")
            latest = await conn.fetchrow(SQL_LATEST, kind, name)
            if latest is not None and latest["sha256"] == sha:
                return _row_to_spec(latest), False
            if per_day:
                recent = await conn.fetchrow(SQL_RECENT, kind, name, created_by)
                if recent["n"] >= per_day:
                    wait = max(1, math.ceil(float(recent["wait_s"])))
                    raise RateLimited(
                        f"{per_day} new versions of the {kind} spec '{name}' in 24 h is this "
                        f"client's limit: try again in {wait} s", code="spec_version_quota",
                        limit=per_day, retry_after_s=wait)
            version = 1 if latest is None else latest["version"] + 1
            row = await conn.fetchrow(SQL_INSERT, kind, name, version, cerberus, source,
                                      source_format, sha, created_by,
                                      list(columns) if columns is not None else None)
            return _row_to_spec(row), True  # remembered by the next upload's lookup

    @stored
    async def latest(self, kind: str, name: str) -> Spec:
        row = await self.pool.fetchrow(SQL_LATEST, kind, name)
        if row is None:
            raise await self._not_found(kind, name)
        return self._saw(_row_to_spec(row))

    async def _not_found(self, kind: str, name: str) -> SpecNotFound:
        """The 404, naming the closest registered names of that kind (a typo, a case slip)."""
        names = [r["name"] for r in await self.pool.fetch(SQL_NAMES, kind)]
        folded = {n.casefold(): n for n in names}
        closest = difflib.get_close_matches(name.casefold(), list(folded), n=3, cutoff=0.6)
        closest = [folded[c] for c in closest]
        hint = f"; closest registered: {', '.join(closest)}" if closest else \
            ("; none is registered yet" if not names else "")
        return SpecNotFound(f"no {kind} spec named '{name}' is registered{hint}", kind=kind,
                            name=name, closest=closest)

    @stored
    async def versions(self, kind: str, name: str, *, limit: int, before: int | None = None,
                       with_schema: bool = True) -> list[Spec]:
        """At most ``limit`` versions older than ``before`` (all when None), newest first;
        without their schema and body unless ``with_schema`` (a page's size stays bounded)."""
        sql = SQL_VERSIONS if with_schema else SQL_SUMMARIES
        rows = await self.pool.fetch(sql, kind, name, before or 2**31 - 1, limit)
        return [_row_to_spec(r) for r in rows]

    @stored
    async def list_latest(self, kind: str | None = None) -> list[Spec]:
        rows = await self.pool.fetch(SQL_LIST, kind)
        return [_row_to_spec(r) for r in rows]
