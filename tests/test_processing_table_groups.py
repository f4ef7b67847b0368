"""Datasets: a table's groups column by column (``TableGroups``), their binary COPY built with
numpy (bit for bit what asyncpg's own encoder sends), and groups applied in parts while the
roll-up goes on (real PostgreSQL)."""

from __future__ import annotations

import datetime
import math

import asyncpg
import pytest

from ingest_server.processing import contributions as contrib
from ingest_server.processing.aggregate import Aggregator
from ingest_server.processing.dates import parse_cqube_date
from ingest_server.processing.datasets import plan_tables
from ingest_server.processing.table_groups import TableGroups
from testkit.accounts import fresh_database

from processing_example import (EXAMPLE_CSV, SCH_ATT, TEACHERSPRESENT, create_dimensions,
                                 read_rows)

D = datetime.date
GROUPS = {  # dates around PostgreSQL's epoch, texts with multi-byte and empty values
    (D(2023, 5, 1), 7, "S1"): [3, 12.5],
    (D(1999, 12, 31), -1, "é€𝄞"): [1, -0.0],
    (D(2000, 1, 1), 2_000_000_000, ""): [2**40, 1e308],
    (D(2023, 5, 1), 7, "S2"): [1, 5e-324],
    (D(9999, 12, 31), 0, "S1"): [7, -math.pi],
}
TYPES = ["date", "integer", "text"]


@pytest.fixture
def dsn(pg_dsn):
    with fresh_database(pg_dsn, "ingest_table_groups") as dsn:
        yield dsn


@pytest.fixture
async def conn(dsn):
    c = await asyncpg.connect(dsn)
    yield c
    await c.close()


async def example_tables(conn) -> tuple[list, Aggregator]:
    """The worked example's 32 tables, created, and its rows aggregated."""
    await conn.execute(contrib.bookkeeping_sql())
    await create_dimensions(conn)
    tables = plan_tables(TEACHERSPRESENT, SCH_ATT)
    header, rows = read_rows(EXAMPLE_CSV)
    agg = Aggregator(tables, header, parse_date=parse_cqube_date)
    agg.add_rows(rows)
    await contrib.ensure_tables(conn, tables)
    return tables, agg


def test_dict_round_trip():
    tg = TableGroups.from_dict(GROUPS, TYPES)
    assert len(tg) == 5 and tg.as_dict() == GROUPS
    assert list(tg.as_dict()) == list(GROUPS)  # the groups' order kept
    empty = TableGroups.from_dict({}, TYPES)
    assert len(empty) == 0 and empty.as_dict() == {}


async def test_binary_copy_is_what_asyncpg_sends(conn):
    await conn.execute("CREATE TABLE a (g0 date, g1 integer, g2 text, count float8, sum float8);"
                       "CREATE TABLE b (LIKE a)")
    await conn.copy_records_to_table("a", records=(k + tuple(v) for k, v in GROUPS.items()))
    data = TableGroups.from_dict(GROUPS, TYPES).binary_copy()
    await conn.copy_to_table("b", source=memoryview(data), format="binary")
    rows = "SELECT g0, g1, g2, count, sum, float8send(sum) AS bits FROM {} ORDER BY g2, g0"
    assert await conn.fetch(rows.format("a")) == await conn.fetch(rows.format("b"))
    assert await conn.fetchval("SELECT count(*) FROM b") == len(GROUPS)
    many = {(D(2023, 1, 1) + datetime.timedelta(days=i % 400), f"k{i % 7919}é" * (i % 3)):
            [i + 1, i / 7] for i in range(70_000)}   # more rows than one block of the encoder
    await conn.execute("CREATE TABLE m (g0 date, g1 text, count float8, sum float8);"
                       "CREATE TABLE n (LIKE m)")
    await conn.copy_records_to_table("m", records=(k + tuple(v) for k, v in many.items()))
    await conn.copy_to_table("n", source=memoryview(TableGroups.from_dict(
        many, ["date", "text"]).binary_copy()), format="binary")
    assert await conn.fetchval("SELECT count(*) FROM (SELECT * FROM m EXCEPT ALL "
                               "SELECT * FROM n) d") == 0
    assert await conn.fetchval("SELECT count(*) FROM n") == len(many)
    for typ, key in (("integer", (5,)), ("date", (D(2023, 1, 1),))):  # no text column at all
        await conn.execute(f"CREATE TEMP TABLE c_{typ} (g0 {typ}, count float8, sum float8)")
        await conn.copy_to_table(f"c_{typ}", source=memoryview(
            TableGroups.from_dict({key: [1, 2.0]}, [typ]).binary_copy()), format="binary")
        assert tuple(await conn.fetchrow(f"SELECT * FROM c_{typ}")) == key + (1.0, 2.0)


async def test_groups_applied_in_parts_as_rolled_up(conn, dsn):
    """The roll-up's parts (one a key set), applied as they come on two connections, give the
    rows of one application of the whole groups."""
    tables, agg = await example_tables(conn)

    async def parts():
        for part in agg.table_groups():
            yield part

    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    try:
        applied = await contrib.apply_upload(pool, upload_id="u1", program=SCH_ATT.name,
                                             tables=tables, groups=parts())
    finally:
        await pool.close()
    whole = agg.groups
    assert applied.tables == 32
    for t in tables:
        cols = ", ".join(f'"{c}"' for c in t.group_columns)
        got = {tuple(r[:-2]): [r["count"], r["sum"]] for r in await conn.fetch(
            f'SELECT {cols}, count, sum FROM datasets."{t.physical}"')}
        # S3 (not in dimensions.school) is dropped, as in one application
        assert got == {k: v for k, v in whole[t.physical].items() if "S3" not in k}, t.physical


async def test_new_groups_copied_into_the_table_only_when_all_new(conn):
    """Groups none of whose time values are in the table and all of whose keys are in their
    dimension tables are COPYed in with ids taken beforehand, and recorded from them; any other
    groups are left to the upsert (``_apply_new`` gives None)."""
    tables, agg = await example_tables(conn)
    parts = {name: g for part in agg.table_groups() for name, g in part.items()}
    by = {t.physical: t for t in tables}
    t = by["sch_att_teachers_marked_present_weekly_district"]
    groups = parts[t.physical]
    async with conn.transaction():
        assert await contrib._apply_new(conn, "u1", t, groups) == len(groups)
    got = await conn.fetch(f'SELECT id, week, year, district_id, count, sum, avg '
                           f'FROM datasets."{t.physical}" ORDER BY id')
    assert {(r["week"], r["year"], r["district_id"]): [r["count"], r["sum"]] for r in got} == \
        agg.groups[t.physical]
    assert all(r["avg"] == r["sum"] / r["count"] for r in got)
    record = await conn.fetchrow("SELECT * FROM processing_applied_tables WHERE tbl = $1",
                                 t.physical)
    assert record["groups"] == len(got) and sorted(record["row_ids"]) == [r["id"] for r in got]
    assert dict(zip(record["row_ids"], zip(record["counts"], record["sums"]))) == \
        {r["id"]: (r["count"], r["sum"]) for r in got}
    assert (record["first_row"], record["last_row"]) == (got[0]["id"], got[-1]["id"])
    async with conn.transaction():  # the same weeks again: some group may be there
        assert await contrib._apply_new(conn, "u2", t, groups) is None
    school = by["sch_att_teachers_marked_present_daily_school"]
    assert any("S3" in k for k in agg.groups[school.physical])  # not in dimensions.school
    async with conn.transaction():
        assert await contrib._apply_new(conn, "u1", school, parts[school.physical]) is None
    await contrib.retract_upload(conn, upload_id="u1", program=SCH_ATT.name, tables=tables)
    assert await conn.fetchval(f'SELECT count(*) FROM datasets."{t.physical}"') == 0


async def test_keys_checked_as_json_whatever_their_characters(conn):
    """The keys go to the dimension check as one JSON array: quotes, backslashes, non-ASCII and
    blanks come back as they were (a key found is known; one that differs is not)."""
    tables, _ = await example_tables(conn)
    t = next(t for t in tables if t.physical.endswith("weekly_district"))
    odd = 'D "1"\\é\t𝄞 '
    await conn.execute("INSERT INTO dimensions.district (district_id) VALUES ($1)", odd)
    for key, new in ((odd, True), (odd.strip(), False), (odd.replace("\\", "/"), False)):
        async with conn.transaction():
            groups = TableGroups.from_dict({(1, 2023, key): [1, 2.0]}, ["integer", "integer",
                                                                        "text"])
            assert (await contrib._apply_new(conn, "u1", t, groups) is not None) == new, key
        await conn.execute(f'DELETE FROM datasets."{t.physical}"; '
                           "DELETE FROM processing_applied_tables")
