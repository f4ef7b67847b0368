"""Applying an upload's partial aggregates to the dataset tables, exactly once, and taking them
back out (retraction) or rebuilding a programme's tables.

An upload is applied one table per transaction, two tables at a time on two connections (the
upserts are CPU-bound in PostgreSQL). Per table, the groups are COPYed into a temporary table
and one statement drops those whose keys are not in their dimension tables (as cQube does),
updates the groups already in the table (looked up on their time… and keys…) and inserts the
others, with ``avg = sum / count``, and writes the
(upload, table) marker in ``processing_applied_tables`` with the upload's contribution: the
dataset row ids it touched and its count and sum for each, as three arrays (one row a table, not
one a group). A second run (retry, resume after a crash, another replica) applies only the
tables without a marker; ``processing_applied`` marks the upload done once every table is. A
reader may see the upload in one table before it is in another (for well under a second).

Groups that are all new to a table (none of their time values in it, all keys known: a new
day's daily table, a new table) skip the temporary table and the upsert: they are COPYed into
the table itself with ids taken from its sequence beforehand, and recorded from that id range
(``_apply_new``).

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
import json
from importlib import resources
from typing import TYPE_CHECKING, AsyncIterable, AsyncIterator, Sequence

import asyncpg

from ..faults import fault_point
from .aggregate import Groups, group_types
from .cqube_schema import dimension_table
from .dataset_schema import SCHEMA, create_table_sql, ident, qualified
from .datasets import DatasetTable

if TYPE_CHECKING:
    from .table_groups import TableGroups

LOCK_PREFIX = "ingest_processing:"
REPEAT_MODES = ("merge", "replace")
APPLY_CONNECTIONS = 2   # tables applied at a time (PostgreSQL's upserts are CPU-bound)
BOOKKEEPING = ("110_processing_contributions.sql", "130_processing_contribution_arrays.sql",
               "131_processing_contribution_ranges.sql")


@dataclasses.dataclass
class Applied:
    tables: int
    groups: int
    already: bool = False   # the upload had been applied (or retracted) before: nothing changed


def bookkeeping_sql() -> str:
    """The markers' and contributions' tables (migrations 110 and 130; idempotent), for a
    processing database that is not the service's own."""
    files = resources.files("ingest_server.migrations")
    return "\n".join(files.joinpath(name).read_text() for name in BOOKKEEPING)


async def ensure_bookkeeping(conn: asyncpg.Connection) -> None:
    """Create the bookkeeping tables if missing, and fold in any per-row contribution records
    (migration 110's layout, written by earlier builds). Does nothing, and locks nothing, when
    both are done already."""
    if await conn.fetchval(
            "SELECT to_regclass('processing_contributions') IS NOT NULL AND EXISTS (SELECT 1 "
            "FROM information_schema.columns WHERE table_schema = current_schema() AND "
            "table_name = 'processing_applied_tables' AND column_name = 'first_row')") and \
            not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM processing_contributions)"):
        return
    await conn.execute(bookkeeping_sql())


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
                       tables: Sequence[DatasetTable], groups: Groups | AsyncIterable[Groups],
                       repeat: str = "merge") -> Applied:
    """Add ``groups`` (this upload's partial aggregates) to ``tables``, once per table.

    Each table is its own transaction, recorded in ``processing_applied_tables``; with a pool,
    ``APPLY_CONNECTIONS`` tables are applied at a time. A second run (retry, resume after a crash,
    another replica) applies only the tables not recorded yet; ``processing_applied`` marks the
    upload done once all are. Readers may see one table with the upload before another has it.

    ``groups`` may come in parts (an async iterable, as the roll-up gives them, key set after key
    set): the tables of the first parts are applied while the next are computed. Within a part,
    the tables with the most groups go first, so that the connections finish together.
    """
    if repeat not in REPEAT_MODES:
        raise ValueError(f"unknown repeat mode {repeat!r}")
    async with _connection(db) as conn:
        if await conn.fetchval("SELECT 1 FROM processing_applied WHERE upload_id = $1",
                               upload_id):
            return Applied(0, 0, already=True)
        done = {r["tbl"] for r in await conn.fetch(
            "SELECT tbl FROM processing_applied_tables WHERE upload_id = $1", upload_id)}
        by_set = await keys_by_set(conn)
    mine = {t.physical: t for t in tables}
    workers = APPLY_CONNECTIONS if isinstance(db, asyncpg.Pool) else 1
    todo: asyncio.Queue = asyncio.Queue()
    stopped = False  # retracted (or applied by another instance) meanwhile

    async def produce() -> None:
        parts = groups if isinstance(groups, AsyncIterable) else _one(groups)
        async for part in parts:
            for name, g in sorted(part.items(), key=lambda item: -len(item[1])):
                if name in mine and g and name not in done:
                    todo.put_nowait((mine[name], g))
            if stopped:
                break
        for _ in range(workers):
            todo.put_nowait(None)

    async def work() -> None:
        nonlocal stopped
        async with _connection(db) as conn:
            while (item := await todo.get()) is not None:  # each table taken by one connection
                if stopped or not await _apply_once(conn, upload_id, program, *item, repeat,
                                                    by_set):
                    stopped = True
    try:
        async with asyncio.TaskGroup() as group:  # a failure cancels the other connection's work
            group.create_task(produce())
            for _ in range(workers):
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


async def _one(groups: Groups) -> AsyncIterator[Groups]:
    yield groups


def _connection(db: asyncpg.Connection | asyncpg.Pool):
    if isinstance(db, asyncpg.Pool):
        return db.acquire()
    return contextlib.nullcontext(db)


async def _apply_once(conn: asyncpg.Connection, upload_id: str, program: str, t: DatasetTable,
                      groups: TableGroups | dict[tuple, list], repeat: str,
                      by_set: bool = False) -> bool:
    """Apply one table in its own transaction unless done; False if the upload is marked
    (retracted, or finished by another instance) meanwhile."""
    async with conn.transaction():
        await lock_table(conn, program, t.physical)
        marks = await conn.fetchrow(
            "SELECT EXISTS (SELECT 1 FROM processing_applied WHERE upload_id = $1) AS upload, "
            "EXISTS (SELECT 1 FROM processing_applied_tables WHERE upload_id = $1 AND tbl = $2) "
            "AS tbl", upload_id, t.physical)
        if marks["upload"]:
            return False
        if marks["tbl"]:
            return True
        # Not flushed to disk at this commit: the upload's last commit (``processing_applied``)
        # is, and WAL is flushed in order. A crash before it loses this table and its marker
        # together, and the job (not done yet) applies it again.
        await conn.execute("SET LOCAL synchronous_commit = off")
        await _apply_table(conn, upload_id, t, groups, repeat, by_set)
        await fault_point("datasets.mid_apply")
    await fault_point("datasets.between_tables")
    return True


async def _apply(conn: asyncpg.Connection, upload_id: str, program: str,
                 tables: Sequence[DatasetTable], groups: Groups, repeat: str,
                 by_set: bool) -> Applied:
    """All of an upload's tables in the caller's transaction (a rebuild)."""
    if repeat not in REPEAT_MODES:
        raise ValueError(f"unknown repeat mode {repeat!r}")
    touched = total = 0
    for t in tables:
        g = groups.get(t.physical)
        if not g:
            continue
        n = await _apply_table(conn, upload_id, t, g, repeat, by_set)
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
    every value (table name as recorded, upload id, the groups) is a ``$n`` parameter. They
    depend on the table's schema alone, so they are built once per table, not for every upload.

    The groups arrive by binary COPY (about a quarter of the client's CPU that array parameters
    take) into a temporary table of the connection, one per shape of group (its time columns'
    types, its number of keys), created once per session and emptied at each commit (``ON
    COMMIT DELETE ROWS``): no catalog rows written per table and upload."""
    dimensions: tuple[str, ...]   # the dimension tables the keys reference, sorted
    tmp: str                      # the temporary table, unquoted (COPY takes it so)
    create_tmp: str
    replace_earlier: str          # $1 = table, $2 = upload id: earlier contributions to the
                                  # groups go
    merge: str                    # $1 = table, $2 = upload id: upsert + record
    replace: str                  # the same, taking the groups over
    retract: str                  # $1 = table, $2 = upload id: its contribution taken out
    # groups that are all new (see ``_apply_new``)
    maybe_there: str              # $1… = each group column's values (keys: a JSON array):
                                  # some group may be in the table already, or a key is not
                                  # in its dimension table
    copy_columns: tuple[str, ...]  # a dataset row as COPYed: id, group columns, count, sum, avg
    record_new: str               # $1 = table, $2 = upload id, $3, $4 = the ids' range
    empty: str                    # every row out (a rebuild)


_MERGE = ("count = d.count + m.count, sum = d.sum + m.sum, "
          "avg = (d.sum + m.sum) / (d.count + m.count)")
_REPLACE = "count = m.count, sum = m.sum, avg = m.sum / m.count"
# The upsert's groups not found in the table, inserted (after their group columns).
_NEW_ROWS = ("m.count, m.sum, m.sum / m.count FROM m WHERE m.id IS NULL "
             "RETURNING id, count, sum), ")
# An upload's contributions to a table, one element per dataset row: (row id, count, sum).
_UNNEST = "unnest(m.row_ids, m.counts, m.sums) AS u(row_id, count, sum)"
# The end of an upsert: the rows it touched (``touched``: id, count, sum) recorded as this
# upload's contribution to the table ($1 = table, $2 = upload id), the groups counted.
_RECORD = ("touched AS (SELECT * FROM updated UNION ALL SELECT * FROM inserted) "
           "INSERT INTO processing_applied_tables (upload_id, tbl, groups, row_ids, counts, "
           "sums, first_row, last_row) SELECT $2, $1, count(*), "
           "coalesce(array_agg(id), '{}'), coalesce(array_agg(count), '{}'), "
           "coalesce(array_agg(sum), '{}'), min(id), max(id) FROM touched RETURNING groups")


def _meets(rows: str, column: str) -> str:
    """SQL: contribution ``m``'s range of row ids meets those of ``rows`` (unknown: it may)."""
    return (f"coalesce(m.last_row >= (SELECT min({column}) FROM {rows}) "
            f"AND m.first_row <= (SELECT max({column}) FROM {rows}), true)")


# The end of a replace: the other uploads' records keep only the rows not taken over (``gone``:
# the ids of the rows the upload's groups are; $1 = table, $2 = upload id).
_KEEP = ("kept AS (SELECT m.upload_id, "
         "coalesce(array_agg(u.row_id) FILTER (WHERE u.row_id IS NOT NULL), '{}') AS ids, "
         "coalesce(array_agg(u.count) FILTER (WHERE u.row_id IS NOT NULL), '{}') AS counts, "
         "coalesce(array_agg(u.sum) FILTER (WHERE u.row_id IS NOT NULL), '{}') AS sums "
         f"FROM processing_applied_tables m LEFT JOIN LATERAL (SELECT * FROM {_UNNEST} "
         "WHERE NOT EXISTS (SELECT 1 FROM gone WHERE gone.id = u.row_id)) u ON true "
         "WHERE m.tbl = $1 AND m.upload_id <> $2 AND m.row_ids IS NOT NULL "
         f"AND {_meets('gone', 'id')} GROUP BY m.upload_id) "
         "UPDATE processing_applied_tables m SET row_ids = k.ids, counts = k.counts, "
         "sums = k.sums FROM kept k WHERE m.tbl = $1 AND m.upload_id = k.upload_id "
         "AND cardinality(k.ids) < cardinality(m.row_ids)")


@functools.lru_cache(maxsize=512)
def _table_sql(t: DatasetTable) -> _TableSql:
    table = qualified(t)
    types = group_types(t)
    tmp = f"ingest_groups_{'_'.join(types)}"  # e.g. ingest_groups_date_text
    shape = dict(zip(t.group_columns, (f"g{i}" for i in range(len(types)))))  # column → its own
    # cQube drops a group whose key is not in its dimension table (checked at upload already)
    known = " AND ".join(
        f"EXISTS (SELECT 1 FROM {dimension_table(k.dimension)} k "
        f"WHERE k.{ident(k.dimension_key)} = x.{shape[k.column]})" for k in t.keys) or "true"
    renamed = ", ".join(f"x.{g} AS {ident(c)}" for c, g in shape.items())
    groups = f"x AS (SELECT {renamed}, x.count, x.sum FROM pg_temp.{tmp} x WHERE {known})"
    cols = ", ".join(ident(c) for c in t.group_columns)
    mcols = ", ".join(f"m.{ident(c)}" for c in t.group_columns)

    def upsert(update: str) -> str:
        # Each group is looked up once (m.id: its row, or NULL; PostgreSQL's choice: a hash join
        # while the upload is a sizeable part of the table, probes of the unique index when the
        # table is much larger); the rows found are updated by id, the others inserted (the
        # table's lock keeps other uploads out meanwhile). Each side returns the row id with
        # this upload's count and sum for it: the record needs no join back on the group
        # columns.
        return (f"WITH {groups}, m AS MATERIALIZED (SELECT x.*, d.id FROM x LEFT JOIN {table} d "
                f"ON {_same_group(t, 'd', 'x')}), "
                f"updated AS (UPDATE {table} d SET {update} FROM m WHERE d.id = m.id "
                "RETURNING d.id, m.count, m.sum), "
                f"inserted AS (INSERT INTO {table} ({cols}, count, sum, avg) SELECT {mcols}, "
                + _NEW_ROWS + _RECORD)

    # the same time values in the table (the unique index's first columns), or any row for a
    # table without time columns; then a key missing from its dimension table
    params = iter(range(1, len(t.group_columns) + 1))
    same_time = " AND ".join(f"d.{ident(c)} = ANY(${next(params)}::{typ}[])"
                             for c, typ in t.time_columns) or "true"
    maybe_there = [f"EXISTS (SELECT 1 FROM {table} d WHERE {same_time})"] + [
        f"EXISTS (SELECT 1 FROM json_array_elements_text(${next(params)}::json) u(v) "
        f"WHERE NOT EXISTS (SELECT 1 FROM {dimension_table(k.dimension)} k "
        f"WHERE k.{ident(k.dimension_key)} = u.v))"
        for k in t.keys]
    return _TableSql(
        maybe_there="SELECT " + " OR ".join(maybe_there),
        copy_columns=("id", *t.group_columns, "count", "sum", "avg"),
        record_new=(
            "INSERT INTO processing_applied_tables (upload_id, tbl, groups, row_ids, counts, "
            "sums, first_row, last_row) SELECT $2, $1, count(*), coalesce(array_agg(id), '{}'), "
            "coalesce(array_agg(count), '{}'), coalesce(array_agg(sum), '{}'), min(id), max(id) "
            f"FROM {table} WHERE id BETWEEN $3 AND $4 RETURNING groups"),
        empty=f"DELETE FROM {table}",
        dimensions=tuple(sorted({dimension_table(k.dimension) for k in t.keys})),
        tmp=tmp,
        create_tmp=(f"CREATE TEMP TABLE IF NOT EXISTS {tmp} "
                    f"({', '.join(f'{g} {typ}' for g, typ in zip(shape.values(), types))}, "
                    "count float8, sum float8) ON COMMIT DELETE ROWS"),
        # every other upload's record of this table loses the rows these groups are
        replace_earlier=(
            f"WITH {groups}, gone AS MATERIALIZED (SELECT d.id FROM {table} d JOIN x "
            f"ON {_same_group(t, 'd', 'x')}), " + _KEEP),
        merge=upsert(_MERGE),
        replace=upsert(_REPLACE),
        # each row the upload touched is recomputed from the other uploads' contributions (no
        # subtraction: no floating-point drift); a row with none left goes; its record emptied
        retract=(
            "WITH touched AS MATERIALIZED (SELECT DISTINCT u.row_id FROM "
            f"processing_applied_tables m, {_UNNEST} WHERE m.upload_id = $2 AND m.tbl = $1 "
            "ORDER BY u.row_id), "
            "rest AS MATERIALIZED (SELECT u.row_id, sum(u.count) AS count, sum(u.sum) AS sum "
            f"FROM processing_applied_tables m, {_UNNEST} WHERE m.tbl = $1 "
            f"AND m.upload_id <> $2 AND {_meets('touched', 'row_id')} "
            "AND u.row_id IN (SELECT row_id FROM touched) "
            "GROUP BY u.row_id ORDER BY u.row_id), "  # the table then changed in its ids' order
            f"changed AS (UPDATE {table} d SET count = r.count, sum = r.sum, "
            "avg = r.sum / r.count FROM rest r WHERE d.id = r.row_id), "
            f"gone AS (DELETE FROM {table} d USING touched t WHERE d.id = t.row_id "
            "AND NOT EXISTS (SELECT 1 FROM rest r WHERE r.row_id = t.row_id)), "
            "emptied AS (UPDATE processing_applied_tables SET row_ids = NULL, counts = NULL, "
            "sums = NULL WHERE upload_id = $2 AND tbl = $1) "
            "SELECT count(*) FROM touched"))  # the three changes run whether read or not


async def keys_by_set(conn: asyncpg.Connection) -> bool:
    """Whether this role may check an applied table's keys itself (a superuser may turn the
    per-row foreign-key triggers off for a transaction: ``session_replication_role``)."""
    return await conn.fetchval("SELECT current_setting('is_superuser') = 'on'")


async def _apply_table(conn: asyncpg.Connection, upload_id: str, t: DatasetTable,
                       groups: TableGroups | dict[tuple, list], repeat: str,
                       by_set: bool) -> int:
    """Apply one table in the caller's transaction; the number of rows touched.

    ``by_set``: cQube's foreign keys are checked once for all groups, not row by row: the
    dimension tables are locked against writes (SHARE) until the transaction ends, the statement
    keeps only groups whose keys are in them, and the foreign-key triggers are off for the
    transaction (``session_replication_role = replica``). The same guarantee as the triggers
    (no row refers to a missing key, then or later), without about 5 µs of PostgreSQL time a
    new row."""
    sql = _table_sql(t)
    if by_set and sql.dimensions:
        await conn.execute("SET LOCAL session_replication_role = replica; "
                           f"LOCK TABLE {', '.join(sql.dimensions)} IN SHARE MODE")
    groups = _table_groups(t, groups)
    applied = await _apply_new(conn, upload_id, t, groups)
    if applied is not None:
        return applied
    # The temporary table only here: a transaction that touched none does not empty them all
    # at its commit (3 % of PostgreSQL's CPU in applying new groups). Emptied at each commit;
    # a rebuild applies several tables in one transaction, hence the DELETE.
    await conn.execute(f"{_WORK_MEM}; {sql.create_tmp}; DELETE FROM pg_temp.{sql.tmp}")
    # (a memoryview: asyncpg would take bytes for a file's path)
    await conn.copy_to_table(sql.tmp, source=memoryview(groups.binary_copy()), format="binary")
    if repeat == "replace":
        await conn.execute(sql.replace_earlier, t.physical, upload_id)
    return await conn.fetchval(sql.replace if repeat == "replace" else sql.merge,
                               t.physical, upload_id)


def _table_groups(t: DatasetTable, groups: TableGroups | dict[tuple, list]) -> TableGroups:
    """The groups column by column (a dict, group key tuple → [count, sum], as tests give
    them, converted)."""
    from .table_groups import TableGroups  # numpy: only where groups are applied
    if isinstance(groups, TableGroups):
        return groups
    return TableGroups.from_dict(groups, group_types(t))


async def _apply_new(conn: asyncpg.Connection, upload_id: str, t: DatasetTable,
                     groups: TableGroups) -> int | None:
    """Groups that are all new to the table (none of their time values in it, every key in its
    dimension table: a new day's groups, a new table's) are COPYed into the table itself, with
    ids taken from its sequence beforehand, and recorded from their id range; the number of
    rows, or None when they may not all be new (then the upsert handles them).

    In merge and replace mode alike a new group's row is its count, sum and sum / count. Against
    the upsert this leaves out the temporary table, the lookup join, the statement's
    intermediate results, and uses COPY's batched inserts: about a third less PostgreSQL CPU for
    the 83,334 groups of a new daily school table."""
    sql = _table_sql(t)
    # the keys as one JSON text each (asyncpg checks each element of a text[]: about 1 µs a key)
    times = len(t.time_columns)
    if await conn.fetchval(sql.maybe_there, *(
            values if i < times else json.dumps(values)
            for i, (_, values) in enumerate(groups.columns))):
        return None
    n = len(groups)
    first, last = await conn.fetchrow(
        "SELECT min(v), max(v) FROM (SELECT nextval((SELECT pg_get_serial_sequence($1, 'id')"
        "::regclass)) AS v FROM generate_series(1, $2)) ids",  # (the sequence looked up once)
        qualified(t), n)
    if last - first + 1 != n:  # another session took ids meanwhile: these are left unused
        return None
    await conn.copy_to_table(t.physical, schema_name=SCHEMA, columns=list(sql.copy_columns),
                             source=memoryview(groups.binary_copy(first)), format="binary")
    return await conn.fetchval(sql.record_new, t.physical, upload_id, first, last)


# the joins and aggregates of a few hundred thousand groups in memory, not on disk (4 MB default)
_WORK_MEM = "SET LOCAL work_mem = '64MB'"


async def retract_upload(conn: asyncpg.Connection, *, upload_id: str, program: str,
                         tables: Sequence[DatasetTable]) -> int:
    """Take ``upload_id``'s contribution out of every table; the number of groups touched.
    Marks it so that processing it later changes nothing."""
    by_name = {t.physical: t for t in tables}
    async with conn.transaction():
        await lock_program(conn, program)
        await conn.execute(_WORK_MEM)
        names = [r["tbl"] for r in await conn.fetch(
            "SELECT tbl FROM processing_applied_tables WHERE upload_id = $1 "
            "AND cardinality(row_ids) > 0 ORDER BY tbl", upload_id)]
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise LookupError(f"upload {upload_id} contributed to tables no longer registered: "
                              f"{', '.join(sorted(unknown))}")
        touched = 0
        for name in names:
            touched += await conn.fetchval(_table_sql(by_name[name]).retract, name, upload_id)
        await conn.execute(
            "INSERT INTO processing_applied (upload_id, program, tables, groups, retracted_at) "
            "VALUES ($1, $2, 0, 0, now()) ON CONFLICT (upload_id) DO UPDATE SET "
            "retracted_at = COALESCE(processing_applied.retracted_at, now())", upload_id, program)
        return touched


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
            await conn.execute(_table_sql(t).empty)
        # (processing_contributions: earlier builds' per-row records, if any are left)
        await conn.execute("DELETE FROM processing_contributions WHERE tbl = ANY($1::text[])",
                           names)
        await conn.execute("DELETE FROM processing_applied_tables WHERE tbl = ANY($1::text[])",
                           names)
        await conn.execute("DELETE FROM processing_applied WHERE program = $1 "
                           "AND retracted_at IS NULL", program)
        done = Applied(0, 0)
        async for upload_id, groups in uploads:
            await conn.execute("DELETE FROM processing_applied WHERE upload_id = $1", upload_id)
            await conn.execute("DELETE FROM processing_applied_tables WHERE upload_id = $1",
                               upload_id)
            # cQube's foreign keys checked by their triggers: a SHARE lock on the dimension
            # tables would hold their loads back for the whole rebuild
            a = await _apply(conn, upload_id, program, tables, groups, repeat, by_set=False)
            done.tables = max(done.tables, a.tables)
            done.groups += a.groups
        return done
