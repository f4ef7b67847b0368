"""Applying an upload's partial aggregates to the dataset tables, exactly once, and taking them
back out (retraction) or rebuilding a programme's tables.

Every change runs in one transaction on the processing database, under a per-programme advisory
lock: per table, the groups are COPYed into a temporary table, groups whose keys are not in their
dimension tables are dropped (as cQube does), and one statement upserts them on the table's unique
index (time…, keys…), with ``avg = sum / count``, and records the upload's contribution to each
row it touched in ``processing_contributions`` (table, row id, upload → count, sum).
``processing_applied`` marks the upload as done in the same transaction, so a second run (retry,
recovery, another replica) changes nothing.

Invariant: every row of a dataset table is the sum of the contributions recorded for its group.
A retraction removes the upload's contributions and recomputes the groups it touched from the
others (a group with none left is deleted) — no floating-point drift from subtracting.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import AsyncIterator, Sequence

import asyncpg

from ..faults import fault_point
from .aggregate import Groups
from .cqube_schema import dimension_table
from .dataset_schema import create_table_sql, ident, qualified
from .datasets import DatasetTable

LOCK_PREFIX = "ingest_processing:"
REPEAT_MODES = ("merge", "replace")


@dataclasses.dataclass
class Applied:
    tables: int
    groups: int
    already: bool = False   # the upload had been applied (or retracted) before: nothing changed


async def ensure_tables(conn: asyncpg.Connection, tables: Sequence[DatasetTable]) -> None:
    """Create the dataset tables (cQube's shape + the unique index) that do not exist yet."""
    for t in tables:
        for sql in create_table_sql(t):
            await conn.execute(sql)


async def lock_program(conn: asyncpg.Connection, program: str) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", LOCK_PREFIX + program)


async def apply_upload(conn: asyncpg.Connection, *, upload_id: str, program: str,
                       tables: Sequence[DatasetTable], groups: Groups,
                       repeat: str = "merge") -> Applied:
    """Add ``groups`` (this upload's partial aggregates) to ``tables``, once."""
    async with conn.transaction():
        await lock_program(conn, program)
        if await conn.fetchval("SELECT 1 FROM processing_applied WHERE upload_id = $1",
                               upload_id):
            return Applied(0, 0, already=True)
        return await _apply(conn, upload_id, program, tables, groups, repeat)


async def _apply(conn: asyncpg.Connection, upload_id: str, program: str,
                 tables: Sequence[DatasetTable], groups: Groups, repeat: str) -> Applied:
    if repeat not in REPEAT_MODES:
        raise ValueError(f"unknown repeat mode {repeat!r}")
    # the joins of a few hundred thousand groups in memory, not sorted on disk (4 MB default)
    await conn.execute("SET LOCAL work_mem = '64MB'")
    touched = total = 0
    for t in tables:
        g = groups.get(t.physical)
        if not g:
            continue
        n = await _apply_table(conn, upload_id, t, g, repeat)
        if n:
            touched += 1
            total += n
        await fault_point("datasets.mid_apply")
    await conn.execute(
        "INSERT INTO processing_applied (upload_id, program, tables, groups) "
        "VALUES ($1, $2, $3, $4)", upload_id, program, touched, total)
    return Applied(touched, total)


def _tmp_columns(t: DatasetTable) -> list[str]:
    return ([f"{ident(c)} {typ}" for c, typ in t.time_columns]
            + [f"{ident(k.column)} text" for k in t.keys] + ["count float8", "sum float8"])


def _same_group(t: DatasetTable, a: str, b: str) -> str:
    """SQL: rows ``a`` and ``b`` are the same group."""
    return " AND ".join(f"{a}.{ident(c)} = {b}.{ident(c)}" for c in t.group_columns)


async def _apply_table(conn: asyncpg.Connection, upload_id: str, t: DatasetTable,
                       groups: dict[tuple, list], repeat: str) -> int:
    # One name per dataset table: asyncpg caches the statement COPY introspects the columns with.
    tmp = "ingest_groups_" + hashlib.sha1(t.physical.encode()).hexdigest()[:16]
    columns = ", ".join(_tmp_columns(t))
    await conn.execute(f"CREATE TEMP TABLE {ident(tmp)} ({columns}) ON COMMIT DROP")
    n = await _apply_groups(conn, upload_id, t, groups, repeat, tmp)
    await conn.execute(f"DROP TABLE {ident(tmp)}")  # on an error the transaction's end drops it
    return n


async def _apply_groups(conn: asyncpg.Connection, upload_id: str, t: DatasetTable,
                        groups: dict[tuple, list], repeat: str, name: str) -> int:
    await conn.copy_records_to_table(
        name, records=(key + (float(c), float(s)) for key, (c, s) in groups.items()))
    tmp = ident(name)
    for k in t.keys:  # cQube drops groups whose key is not in the dimension table
        await conn.execute(
            f"DELETE FROM {tmp} x WHERE NOT EXISTS (SELECT 1 FROM "
            f"{dimension_table(k.dimension)} d "
            f"WHERE d.{ident(k.dimension_key)} = x.{ident(k.column)})")
    cols = ", ".join(ident(c) for c in t.group_columns)
    xcols = ", ".join(f"x.{ident(c)}" for c in t.group_columns)
    if repeat == "replace":  # the earlier contributions to these groups go
        await conn.execute(
            f"DELETE FROM processing_contributions c USING {qualified(t)} d, {tmp} x "
            f"WHERE {_same_group(t, 'd', 'x')} AND c.tbl = $1 AND c.row_id = d.id", t.physical)
        update = "count = EXCLUDED.count, sum = EXCLUDED.sum, avg = EXCLUDED.avg"
    else:
        update = ("count = d.count + EXCLUDED.count, sum = d.sum + EXCLUDED.sum, "
                  "avg = (d.sum + EXCLUDED.sum) / (d.count + EXCLUDED.count)")
    dcols = ", ".join(f"d.{ident(c)}" for c in t.group_columns)
    return await conn.fetchval(
        f"WITH up AS (INSERT INTO {qualified(t)} AS d ({cols}, count, sum, avg) "
        f"SELECT {xcols}, x.count, x.sum, x.sum / x.count FROM {tmp} x "
        f"ON CONFLICT ({cols}) DO UPDATE SET {update} RETURNING d.id, {dcols}), "
        f"rec AS (INSERT INTO processing_contributions (tbl, row_id, upload_id, count, sum) "
        f"SELECT $1, up.id, $2, x.count, x.sum FROM up JOIN {tmp} x ON {_same_group(t, 'up', 'x')} "
        f"RETURNING 1) SELECT count(*) FROM rec", t.physical, upload_id)


async def retract_upload(conn: asyncpg.Connection, *, upload_id: str, program: str,
                         tables: Sequence[DatasetTable]) -> int:
    """Take ``upload_id``'s contribution out of every table; the number of groups touched.
    Marks it so that processing it later changes nothing."""
    by_name = {t.physical: t for t in tables}
    async with conn.transaction():
        await lock_program(conn, program)
        names = [r["tbl"] for r in await conn.fetch(
            "SELECT DISTINCT tbl FROM processing_contributions WHERE upload_id = $1", upload_id)]
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise LookupError(f"upload {upload_id} contributed to tables no longer registered: "
                              f"{', '.join(sorted(unknown))}")
        touched = 0
        for name in names:
            touched += await _retract_table(conn, upload_id, by_name[name])
        await conn.execute(
            "INSERT INTO processing_applied (upload_id, program, tables, groups, retracted_at) "
            "VALUES ($1, $2, 0, 0, now()) ON CONFLICT (upload_id) DO UPDATE SET "
            "retracted_at = COALESCE(processing_applied.retracted_at, now())", upload_id, program)
        return touched


async def _retract_table(conn: asyncpg.Connection, upload_id: str, t: DatasetTable) -> int:
    await conn.execute("CREATE TEMP TABLE ingest_processing_retract (row_id integer) "
                       "ON COMMIT DROP")
    n = await conn.fetchval(
        "WITH gone AS (DELETE FROM processing_contributions WHERE upload_id = $1 AND tbl = $2 "
        "RETURNING row_id), kept AS (INSERT INTO ingest_processing_retract "
        "SELECT DISTINCT row_id FROM gone RETURNING 1) SELECT count(*) FROM kept",
        upload_id, t.physical)
    # each row touched is recomputed from the contributions left; a row with none left goes
    await conn.execute(
        f"UPDATE {qualified(t)} d SET count = a.count, sum = a.sum, avg = a.sum / a.count "
        f"FROM (SELECT c.row_id, sum(c.count) AS count, sum(c.sum) AS sum "
        f"FROM processing_contributions c JOIN ingest_processing_retract r USING (row_id) "
        f"WHERE c.tbl = $1 GROUP BY c.row_id) a WHERE d.id = a.row_id", t.physical)
    await conn.execute(
        f"DELETE FROM {qualified(t)} d USING ingest_processing_retract r WHERE d.id = r.row_id "
        f"AND NOT EXISTS (SELECT 1 FROM processing_contributions c "
        f"WHERE c.tbl = $1 AND c.row_id = r.row_id)", t.physical)
    await conn.execute("DROP TABLE ingest_processing_retract")
    return n


async def rebuild_program(conn: asyncpg.Connection, *, program: str,
                          tables: Sequence[DatasetTable],
                          uploads: AsyncIterator[tuple[str, Groups]],
                          repeat: str = "merge") -> Applied:
    """Empty ``program``'s tables and apply ``uploads`` (id, groups) again, in order, in one
    transaction: readers see the old tables until it commits."""
    async with conn.transaction():
        await lock_program(conn, program)
        await ensure_tables(conn, tables)
        names = [t.physical for t in tables]
        for t in tables:
            await conn.execute(f"DELETE FROM {qualified(t)}")
        await conn.execute("DELETE FROM processing_contributions WHERE tbl = ANY($1::text[])",
                           names)
        await conn.execute("DELETE FROM processing_applied WHERE program = $1 "
                           "AND retracted_at IS NULL", program)
        done = Applied(0, 0)
        async for upload_id, groups in uploads:
            await conn.execute("DELETE FROM processing_applied WHERE upload_id = $1", upload_id)
            a = await _apply(conn, upload_id, program, tables, groups, repeat)
            done.tables = max(done.tables, a.tables)
            done.groups += a.groups
        return done
