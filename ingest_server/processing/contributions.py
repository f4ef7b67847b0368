"""Applying an upload's partial aggregates to the dataset tables, exactly once, and taking them
back out (retraction) or rebuilding a programme's tables.

An upload is applied one table per transaction, two tables at a time on two connections (the
upserts are CPU-bound in PostgreSQL): per table, the groups are COPYed into a temporary table,
groups whose keys are not in their dimension tables are dropped (as cQube does), and one statement
upserts them on the table's unique index (time…, keys…), with ``avg = sum / count``, and records
the upload's contribution to each row it touched in ``processing_contributions`` (table, row id,
upload → count, sum). ``processing_applied_tables`` marks (upload, table) as done in the same
transaction, so a second run (retry, resume after a crash, another replica) applies only the
tables not done yet; ``processing_applied`` marks the upload done once every table is. A reader
may see the upload in one table before it is in another (for well under a second).

Locks (advisory, transaction-scoped): applying a table holds its programme shared and the table
exclusive; registration, retraction and rebuild hold the programme exclusive, so they never see
half a table and a retraction waits for the tables being applied.

Invariant: every row of a dataset table is the sum of the contributions recorded for its group.
A retraction removes the upload's contributions and recomputes the groups it touched from the
others (a group with none left is deleted) — no floating-point drift from subtracting.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
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
APPLY_CONNECTIONS = 2   # tables applied at a time (PostgreSQL's upserts are CPU-bound)


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
    """Exclusive: registration, retraction and rebuild (no table of the programme is being
    applied meanwhile)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", LOCK_PREFIX + program)


async def lock_table(conn: asyncpg.Connection, program: str, table: str) -> None:
    """Applying one table: the programme shared (beside other tables being applied), the table
    exclusive (one upload's upsert at a time: no deadlock between two uploads' rows)."""
    await conn.execute("SELECT pg_advisory_xact_lock_shared(hashtext($1)), "
                       "pg_advisory_xact_lock(hashtext($2))",
                       LOCK_PREFIX + program, LOCK_PREFIX + program + ":" + table)


async def apply_upload(db: asyncpg.Connection | asyncpg.Pool, *, upload_id: str, program: str,
                       tables: Sequence[DatasetTable], groups: Groups,
                       repeat: str = "merge") -> Applied:
    """Add ``groups`` (this upload's partial aggregates) to ``tables``, once per table.

    Each table is its own transaction, recorded in ``processing_applied_tables``; with a pool,
    ``APPLY_CONNECTIONS`` tables are applied at a time. A second run (retry, resume after a crash,
    another replica) applies only the tables not recorded yet; ``processing_applied`` marks the
    upload done once all are. Readers may see one table with the upload before another has it.
    """
    if repeat not in REPEAT_MODES:
        raise ValueError(f"unknown repeat mode {repeat!r}")
    async with _connection(db) as conn:
        if await conn.fetchval("SELECT 1 FROM processing_applied WHERE upload_id = $1",
                               upload_id):
            return Applied(0, 0, already=True)
        done = {r["tbl"] for r in await conn.fetch(
            "SELECT tbl FROM processing_applied_tables WHERE upload_id = $1", upload_id)}
    todo = iter([t for t in tables if groups.get(t.physical) and t.physical not in done])
    stopped = False  # retracted (or applied by another instance) meanwhile

    async def work() -> None:
        nonlocal stopped
        async with _connection(db) as conn:
            for t in todo:  # shared: each table taken by one of the connections
                if stopped or not await _apply_once(conn, upload_id, program, t,
                                                    groups[t.physical], repeat):
                    stopped = True
                    return
    try:
        async with asyncio.TaskGroup() as group:  # a failure cancels the other connection's work
            for _ in range(APPLY_CONNECTIONS if isinstance(db, asyncpg.Pool) else 1):
                group.create_task(work())
    except ExceptionGroup as e:  # the job's error is the first table's error
        raise e.exceptions[0] from None
    async with _connection(db) as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock_shared(hashtext($1))",
                           LOCK_PREFIX + program)
        if await conn.fetchval("SELECT 1 FROM processing_applied WHERE upload_id = $1",
                               upload_id):
            return Applied(0, 0, already=True)
        row = await conn.fetchrow(
            "INSERT INTO processing_applied (upload_id, program, tables, groups) "
            "SELECT $1, $2, count(*) FILTER (WHERE groups > 0), coalesce(sum(groups), 0) "
            "FROM processing_applied_tables WHERE upload_id = $1 "
            "AND tbl = ANY($3::text[]) ON CONFLICT (upload_id) DO NOTHING "
            "RETURNING tables, groups", upload_id, program, [t.physical for t in tables])
    if row is None:  # another instance finished it meanwhile
        return Applied(0, 0, already=True)
    return Applied(row["tables"], row["groups"])


def _connection(db: asyncpg.Connection | asyncpg.Pool):
    if isinstance(db, asyncpg.Pool):
        return db.acquire()
    return contextlib.nullcontext(db)


async def _apply_once(conn: asyncpg.Connection, upload_id: str, program: str, t: DatasetTable,
                      groups: dict[tuple, list], repeat: str) -> bool:
    """Apply one table in its own transaction unless done; False if the upload is marked
    (retracted, or finished by another instance) meanwhile."""
    async with conn.transaction():
        await lock_table(conn, program, t.physical)
        if await conn.fetchval("SELECT 1 FROM processing_applied WHERE upload_id = $1",
                               upload_id):
            return False
        if await conn.fetchval("SELECT 1 FROM processing_applied_tables "
                               "WHERE upload_id = $1 AND tbl = $2", upload_id, t.physical):
            return True
        # the joins of a few hundred thousand groups in memory, not sorted on disk (4 MB default)
        await conn.execute("SET LOCAL work_mem = '64MB'")
        n = await _apply_table(conn, upload_id, t, groups, repeat)
        await fault_point("datasets.mid_apply")
        await conn.execute("INSERT INTO processing_applied_tables (upload_id, tbl, groups) "
                           "VALUES ($1, $2, $3)", upload_id, t.physical, n)
    await fault_point("datasets.between_tables")
    return True


async def _apply(conn: asyncpg.Connection, upload_id: str, program: str,
                 tables: Sequence[DatasetTable], groups: Groups, repeat: str) -> Applied:
    """All of an upload's tables in the caller's transaction (a rebuild)."""
    if repeat not in REPEAT_MODES:
        raise ValueError(f"unknown repeat mode {repeat!r}")
    await conn.execute("SET LOCAL work_mem = '64MB'")
    touched = total = 0
    for t in tables:
        g = groups.get(t.physical)
        if not g:
            continue
        n = await _apply_table(conn, upload_id, t, g, repeat)
        await conn.execute("INSERT INTO processing_applied_tables (upload_id, tbl, groups) "
                           "VALUES ($1, $2, $3)", upload_id, t.physical, n)
        if n:
            touched += 1
            total += n
    await conn.execute(
        "INSERT INTO processing_applied (upload_id, program, tables, groups) "
        "VALUES ($1, $2, $3, $4)", upload_id, program, touched, total)
    return Applied(touched, total)


def _same_group(t: DatasetTable, a: str, b: str) -> str:
    """SQL: rows ``a`` and ``b`` are the same group."""
    return " AND ".join(f"{a}.{ident(c)} = {b}.{ident(c)}" for c in t.group_columns)


@dataclasses.dataclass(frozen=True)
class _TableSql:
    """The statements that apply an upload's groups to one dataset table.

    PostgreSQL binds values, never names: the only text put into these statements is the table's
    and its columns' names, each quoted by ``ident()`` (and the fixed types of the time columns);
    every value (table name as recorded, upload id) is a ``$n`` parameter. They depend on the
    table's schema alone, so they are built once per table, not for every upload."""
    tmp: str                      # the temporary table's name, unquoted (COPY takes it so)
    create_tmp: str
    drop_tmp: str
    unknown_keys: tuple[str, ...]  # one DELETE a key: cQube drops groups whose key is unknown
    replace_earlier: str          # $1 = table: the earlier contributions to these groups go
    merge: str                    # $1 = table, $2 = upload id: upsert + record, groups counted
    replace: str                  # the same, taking the groups over


_MERGE = ("count = d.count + EXCLUDED.count, sum = d.sum + EXCLUDED.sum, "
          "avg = (d.sum + EXCLUDED.sum) / (d.count + EXCLUDED.count)")
_REPLACE = "count = EXCLUDED.count, sum = EXCLUDED.sum, avg = EXCLUDED.avg"


@functools.lru_cache(maxsize=512)
def _table_sql(t: DatasetTable) -> _TableSql:
    # One name per dataset table: asyncpg caches the statement COPY introspects the columns with.
    name = "ingest_groups_" + hashlib.sha1(t.physical.encode()).hexdigest()[:16]
    tmp, table = ident(name), qualified(t)
    columns = ", ".join([f"{ident(c)} {typ}" for c, typ in t.time_columns]
                        + [f"{ident(k.column)} text" for k in t.keys]
                        + ["count float8", "sum float8"])
    cols = ", ".join(ident(c) for c in t.group_columns)
    xcols = ", ".join(f"x.{ident(c)}" for c in t.group_columns)
    dcols = ", ".join(f"d.{ident(c)}" for c in t.group_columns)

    def upsert(update: str) -> str:
        return (f"WITH up AS (INSERT INTO {table} AS d ({cols}, count, sum, avg) "
                f"SELECT {xcols}, x.count, x.sum, x.sum / x.count FROM {tmp} x "
                f"ON CONFLICT ({cols}) DO UPDATE SET {update} RETURNING d.id, {dcols}), "
                f"rec AS (INSERT INTO processing_contributions (tbl, row_id, upload_id, count, sum) "
                f"SELECT $1, up.id, $2, x.count, x.sum FROM up JOIN {tmp} x "
                f"ON {_same_group(t, 'up', 'x')} RETURNING 1) SELECT count(*) FROM rec")

    return _TableSql(
        tmp=name,
        create_tmp=f"CREATE TEMP TABLE {tmp} ({columns}) ON COMMIT DROP",
        drop_tmp=f"DROP TABLE {tmp}",
        unknown_keys=tuple(
            f"DELETE FROM {tmp} x WHERE NOT EXISTS (SELECT 1 FROM {dimension_table(k.dimension)} d "
            f"WHERE d.{ident(k.dimension_key)} = x.{ident(k.column)})" for k in t.keys),
        replace_earlier=(f"DELETE FROM processing_contributions c USING {table} d, {tmp} x "
                         f"WHERE {_same_group(t, 'd', 'x')} AND c.tbl = $1 AND c.row_id = d.id"),
        merge=upsert(_MERGE),
        replace=upsert(_REPLACE))


async def _apply_table(conn: asyncpg.Connection, upload_id: str, t: DatasetTable,
                       groups: dict[tuple, list], repeat: str) -> int:
    sql = _table_sql(t)
    await conn.execute(sql.create_tmp)
    await conn.copy_records_to_table(
        sql.tmp, records=(key + (float(c), float(s)) for key, (c, s) in groups.items()))
    for statement in sql.unknown_keys:
        await conn.execute(statement)
    if repeat == "replace":
        await conn.execute(sql.replace_earlier, t.physical)
    n = await conn.fetchval(sql.replace if repeat == "replace" else sql.merge,
                            t.physical, upload_id)
    await conn.execute(sql.drop_tmp)  # on an error the transaction's end drops it
    return n


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
        for marks in ("processing_contributions", "processing_applied_tables"):
            await conn.execute(f"DELETE FROM {marks} WHERE tbl = ANY($1::text[])", names)
        await conn.execute("DELETE FROM processing_applied WHERE program = $1 "
                           "AND retracted_at IS NULL", program)
        done = Applied(0, 0)
        async for upload_id, groups in uploads:
            await conn.execute("DELETE FROM processing_applied WHERE upload_id = $1", upload_id)
            await conn.execute("DELETE FROM processing_applied_tables WHERE upload_id = $1",
                               upload_id)
            a = await _apply(conn, upload_id, program, tables, groups, repeat)
            done.tables = max(done.tables, a.tables)
            done.groups += a.groups
        return done
