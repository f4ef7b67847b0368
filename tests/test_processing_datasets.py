"""Datasets (issue 24): which tables an event grammar yields, the §7 worked example's rows exactly,
and cQube's two query-builder queries of §5 run unchanged against tables we wrote (real
PostgreSQL)."""

from __future__ import annotations

import datetime
import math

import asyncpg
import pickle

import pytest

from ingest_server.processing import contributions as contrib
from ingest_server.processing.aggregate import Aggregator
from ingest_server.processing.dates import parse_cqube_date
from ingest_server.processing.datasets import plan_tables
from testkit.accounts import fresh_database

from processing_example import (DIKSHA, EXAMPLE_CSV, LINKEDQR, SCH_ATT, TEACHERSMARKED,
                                 TEACHERSPRESENT, create_dimensions, read_rows)

D = datetime.date
DIM_KEYS = [("district", "district_id"), ("block", "block_id"), ("cluster", "cluster_id"),
            ("school", "school_id"), ("schoolcategory", "schoolcategory_name"),
            ("schoolmanagement", "schoolmanagement_name"),
            ("statecategory", "school_statecategory_name"), ("grade", "grade")]


def test_event_grammar_yields_32_single_tables():
    tables = plan_tables(TEACHERSPRESENT, SCH_ATT)
    assert [t.table for t in tables] == [
        f"sch_att_teachers_marked_present_{g}_{dim}"
        for dim, _ in DIM_KEYS for g in ("Daily", "Weekly", "Monthly", "Yearly")]
    assert {t.physical for t in tables} == {
        f"sch_att_teachers_marked_present_{g}_{dim}"
        for dim, _ in DIM_KEYS for g in ("daily", "weekly", "monthly", "yearly")}
    by = {t.physical: t for t in tables}
    t = by["sch_att_teachers_marked_present_weekly_statecategory"]
    assert [(k.column, k.dimension, k.dimension_key) for k in t.keys] == \
        [("school_statecategory_name", "statecategory", "school_statecategory_name")]
    assert t.group_columns == ("week", "year", "school_statecategory_name")
    assert t.event_grammar == "sch_att_teacherspresent_statecategory_school_statecategory_name"
    assert not any(t.compound for t in tables)


def test_compound_tables_from_whitelist():
    tables = plan_tables(LINKEDQR, DIKSHA)
    assert [t.table for t in tables] == [
        "diksha_linked_qr_count_textbookdiksha", "diksha_linked_qr_count_grade",
        "diksha_linked_qr_count_subject", "diksha_linked_qr_count_medium",
        "diksha_linkedqrcount_BAgOAU1jKR8ZCwE6eG90"]
    compound = tables[-1]
    assert compound.compound and compound.grain is None
    assert compound.name == "diksha_linkedqrcount_textbookdiksha0grade0subject0medium"
    assert compound.group_columns == ("textbook_id", "grade", "subject", "medium")
    # a whitelist entry naming a dimension the grammar lacks yields nothing
    other = type(DIKSHA)("diksha", "diksha", (("textbookdiksha", "state"),))
    assert not any(t.compound for t in plan_tables(LINKEDQR, other))


def _aggregate(grammar, program, text, **kw):
    tables = plan_tables(grammar, program)
    header, rows = read_rows(text)
    agg = Aggregator(tables, header, parse_date=parse_cqube_date, **kw)
    agg.add_rows(rows)
    return tables, agg


# §7 "Rows written", as (time …, key) → (count, sum); S3 is absent: its key is not in
# dimensions.school (here it is dropped at the table; at upload the referential check refuses it).
def expected_example() -> dict[str, dict[tuple, tuple[float, float]]]:
    p = "sch_att_teachers_marked_present_"
    d1, d8 = D(2023, 5, 1), D(2023, 5, 8)
    out: dict[str, dict[tuple, tuple[float, float]]] = {}

    def two(dim, k1, k2):  # key k1 on 01/05 (2 rows, 7), k2 on 08/05 (1 row, 5)
        same = k1 == k2
        out[p + "daily_" + dim] = {(d1, k1): (2, 7), (d8, k2): (1, 5)}
        out[p + "weekly_" + dim] = {(18, 2023, k1): (2, 7), (19, 2023, k2): (1, 5)}
        out[p + "monthly_" + dim] = ({(5, 2023, k1): (3, 12)} if same else
                                     {(5, 2023, k1): (2, 7), (5, 2023, k2): (1, 5)})
        out[p + "yearly_" + dim] = ({(2023, k1): (3, 12)} if same else
                                    {(2023, k1): (2, 7), (2023, k2): (1, 5)})
    two("district", "101", "101")
    two("block", "10101", "10102")
    two("cluster", "1010101", "1010201")
    two("schoolcategory", "Primary", "Upper Primary")
    two("schoolmanagement", "Government", "Government")
    two("statecategory", "Cat A", "Cat A")
    two("grade", "Grade 1", "Grade 2")
    out[p + "daily_school"] = {(d1, "S1"): (1, 4), (d1, "S2"): (1, 3)}
    out[p + "weekly_school"] = {(18, 2023, "S1"): (1, 4), (18, 2023, "S2"): (1, 3)}
    out[p + "monthly_school"] = {(5, 2023, "S1"): (1, 4), (5, 2023, "S2"): (1, 3)}
    out[p + "yearly_school"] = {(2023, "S1"): (1, 4), (2023, "S2"): (1, 3)}
    return out


def test_partial_aggregates_of_the_worked_example():
    tables, agg = _aggregate(TEACHERSPRESENT, SCH_ATT, EXAMPLE_CSV)
    assert agg.rows == 3
    got = {t: {k: tuple(v) for k, v in g.items()} for t, g in agg.groups.items()}
    want = expected_example()
    # before the dimension filter S3 is still there, in its 4 school tables
    p = "sch_att_teachers_marked_present_"
    want[p + "daily_school"][(D(2023, 5, 8), "S3")] = (1, 5)
    want[p + "weekly_school"][(19, 2023, "S3")] = (1, 5)
    want[p + "monthly_school"][(5, 2023, "S3")] = (1, 5)
    want[p + "yearly_school"][(2023, "S3")] = (1, 5)
    assert got == want


def test_partial_aggregates_merge_like_one_pass():
    tables = plan_tables(TEACHERSPRESENT, SCH_ATT)
    header, rows = read_rows(EXAMPLE_CSV)
    whole = Aggregator(tables, header, parse_date=parse_cqube_date)
    whole.add_rows(rows)
    parts = Aggregator(tables, header, parse_date=parse_cqube_date)
    for row in rows:  # one "chunk" per row, merged as a worker's partials are
        parts.merge(pickle.loads(pickle.dumps(parts.row_groups([row]))))
    assert parts.groups == whole.groups and parts.rows == whole.rows == 3


def test_fractions_kept_and_parseint_option():
    text = EXAMPLE_CSV.replace(",4\n", ",4.5\n").replace(",3\n", ",2.7\n")
    _, agg = _aggregate(TEACHERSPRESENT, SCH_ATT, text)
    assert agg.groups["sch_att_teachers_marked_present_daily_district"][
        (D(2023, 5, 1), "101")] == [2, pytest.approx(7.2)]
    _, agg = _aggregate(TEACHERSPRESENT, SCH_ATT, text, metric="parseint")
    assert agg.groups["sch_att_teachers_marked_present_daily_district"][
        (D(2023, 5, 1), "101")] == [2, 6.0]


def test_iso_week_option():
    text = EXAMPLE_CSV.replace("'01/05/23'", "'01/01/23'")
    _, agg = _aggregate(TEACHERSPRESENT, SCH_ATT, text, week="iso")
    assert set(agg.groups["sch_att_teachers_marked_present_weekly_district"]) == \
        {(52, 2022, "101"), (19, 2023, "101")}


# ---------------------------------------------------------------------------- database


@pytest.fixture(scope="module")
def proc_dsn(pg_dsn):
    with fresh_database(pg_dsn, "ingest_datasets") as dsn:
        yield dsn


@pytest.fixture
async def conn(proc_dsn):
    c = await asyncpg.connect(proc_dsn)
    await c.execute("DROP SCHEMA IF EXISTS datasets CASCADE; DROP SCHEMA IF EXISTS dimensions CASCADE;"
                    "DROP TABLE IF EXISTS processing_contributions, processing_applied, "
                    "processing_applied_tables")
    await c.execute(contrib.bookkeeping_sql())
    await create_dimensions(c)
    yield c
    await c.close()


async def table_rows(conn, t) -> dict[tuple, tuple[float, float, float]]:
    cols = ", ".join(f'"{c}"' for c in t.group_columns)
    rows = await conn.fetch(f'SELECT {cols}, count, sum, avg FROM datasets."{t.physical}"')
    n = len(t.group_columns)
    out = {tuple(r[:n]): (r["count"], r["sum"], r["avg"]) for r in rows}
    assert len(out) == len(rows), "one row per (time, keys)"
    return out


async def load(conn, grammar, program, text, upload_id, **kw):
    tables, agg = _aggregate(grammar, program, text)
    await contrib.ensure_tables(conn, tables)
    return tables, await contrib.apply_upload(conn, upload_id=upload_id, program=program.name,
                                              tables=tables, groups=agg.groups, **kw)


async def test_worked_example_rows_exactly(conn):
    tables, applied = await load(conn, TEACHERSPRESENT, SCH_ATT, EXAMPLE_CSV, "u1")
    want = expected_example()
    assert applied.tables == 32 and applied.groups == sum(len(g) for g in want.values())
    for t in tables:
        got = await table_rows(conn, t)
        assert got == {k: (c, s, s / c) for k, (c, s) in want[t.physical].items()}, t.physical
    # cQube's column types
    types = dict(await conn.fetch(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = "
        "'datasets' AND table_name = 'sch_att_teachers_marked_present_weekly_district'"))
    assert types == {"id": "integer", "district_id": "character varying", "sum": "double precision",
                     "count": "double precision", "avg": "double precision", "week": "integer",
                     "year": "integer"}
    # the FK to the dimension table, as cQube declares it
    fk = await conn.fetchval(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'fk_school_id' "
        "AND conrelid = 'datasets.sch_att_teachers_marked_present_daily_school'::regclass")
    assert fk == "FOREIGN KEY (school_id) REFERENCES dimensions.school(school_id)"


async def test_same_upload_twice_changes_nothing_and_a_second_merges(conn):
    tables, _ = await load(conn, TEACHERSPRESENT, SCH_ATT, EXAMPLE_CSV, "u1")
    t = next(t for t in tables if t.physical.endswith("monthly_district"))
    again = await contrib.apply_upload(conn, upload_id="u1", program="school-attendance",
                                       tables=tables, groups=_aggregate(
                                           TEACHERSPRESENT, SCH_ATT, EXAMPLE_CSV)[1].groups)
    assert again.already
    assert await table_rows(conn, t) == {(5, 2023, "101"): (3, 12, 4)}
    await load(conn, TEACHERSPRESENT, SCH_ATT, EXAMPLE_CSV.replace(",4\n", ",10\n"), "u2")
    # merge: counts and sums add, avg = sum / count of everything landed (cQube: a second row)
    assert await table_rows(conn, t) == {(5, 2023, "101"): (6, 30, 5)}
    await contrib.retract_upload(conn, upload_id="u1", program="school-attendance", tables=tables)
    assert await table_rows(conn, t) == {(5, 2023, "101"): (3, 18, 6)}
    await contrib.retract_upload(conn, upload_id="u2", program="school-attendance", tables=tables)
    assert await table_rows(conn, t) == {}  # count 0: the group is deleted
    # a retracted upload processed late changes nothing
    late = await load(conn, TEACHERSPRESENT, SCH_ATT, EXAMPLE_CSV, "u2")
    assert late[1].already and await table_rows(conn, t) == {}


async def test_a_resumed_upload_applies_only_the_tables_not_applied(conn, proc_dsn):
    """A crash after some tables committed (each table is its own transaction): the resumed job,
    on two connections, applies each of the others once; the tables equal one application."""
    tables, agg = _aggregate(TEACHERSPRESENT, SCH_ATT, EXAMPLE_CSV)
    await contrib.ensure_tables(conn, tables)
    for t in tables[:5]:  # what the dead instance committed
        assert await contrib._apply_once(conn, "u1", SCH_ATT.name, t, agg.groups[t.physical],
                                         "merge")
    assert await conn.fetchval("SELECT count(*) FROM processing_applied") == 0
    pool = await asyncpg.create_pool(proc_dsn, min_size=1, max_size=2)
    try:
        applied = await contrib.apply_upload(pool, upload_id="u1", program=SCH_ATT.name,
                                             tables=tables, groups=agg.groups)
        again = await contrib.apply_upload(pool, upload_id="u1", program=SCH_ATT.name,
                                           tables=tables, groups=agg.groups)
    finally:
        await pool.close()
    want = expected_example()
    assert applied.tables == 32 and applied.groups == sum(len(g) for g in want.values())
    assert again.already
    for t in tables:
        got = await table_rows(conn, t)
        assert got == {k: (c, s, s / c) for k, (c, s) in want[t.physical].items()}, t.physical
        n = await conn.fetchval("SELECT cardinality(row_ids) FROM processing_applied_tables "
                                "WHERE tbl = $1 AND upload_id = 'u1'", t.physical)
        assert n == len(want[t.physical]), t.physical  # recorded once
    # a retraction takes it all out, and the upload processed late changes nothing
    await contrib.retract_upload(conn, upload_id="u1", program=SCH_ATT.name, tables=tables)
    assert not await conn.fetchval("SELECT count(*) FROM processing_applied_tables "
                                   "WHERE row_ids IS NOT NULL")
    assert (await load(conn, TEACHERSPRESENT, SCH_ATT, EXAMPLE_CSV, "u1"))[1].already


async def test_a_retraction_between_tables_stops_the_rest(conn):
    """Retracted after one table was applied (a job resumed later): nothing more is added and
    the table applied is taken back out."""
    tables, agg = _aggregate(TEACHERSPRESENT, SCH_ATT, EXAMPLE_CSV)
    await contrib.ensure_tables(conn, tables)
    assert await contrib._apply_once(conn, "u1", SCH_ATT.name, tables[0],
                                     agg.groups[tables[0].physical], "merge")
    assert await contrib.retract_upload(conn, upload_id="u1", program=SCH_ATT.name,
                                        tables=tables) > 0
    late = await contrib.apply_upload(conn, upload_id="u1", program=SCH_ATT.name, tables=tables,
                                      groups=agg.groups)
    assert late.already
    for t in tables:
        assert await table_rows(conn, t) == {}, t.physical


async def test_replace_takes_over_the_groups_it_covers(conn):
    tables, _ = await load(conn, TEACHERSPRESENT, SCH_ATT, EXAMPLE_CSV, "u1")
    fix = EXAMPLE_CSV.splitlines()[0] + "\n'01/05/23','101','10101','1010101','S1','Primary'," \
        "'Government','Cat A','Grade 1',9\n"
    await load(conn, TEACHERSPRESENT, SCH_ATT, fix, "u2", repeat="replace")
    t = next(t for t in tables if t.physical.endswith("daily_district"))
    assert await table_rows(conn, t) == {(D(2023, 5, 1), "101"): (1, 9, 9),
                                         (D(2023, 5, 8), "101"): (1, 5, 5)}
    # u1's record lost the group u2 took over: retracting u2 leaves no trace of either there
    await contrib.retract_upload(conn, upload_id="u2", program=SCH_ATT.name, tables=tables)
    assert await table_rows(conn, t) == {(D(2023, 5, 8), "101"): (1, 5, 5)}
    await contrib.retract_upload(conn, upload_id="u1", program=SCH_ATT.name, tables=tables)
    for t in tables:
        assert await table_rows(conn, t) == {}, t.physical


async def test_keys_checked_by_set_hold_the_dimensions_and_only_for_the_table(conn, proc_dsn):
    """With the foreign-key triggers off (a superuser's apply), an unknown key is still dropped,
    a dimension table cannot change under the transaction, and the triggers are back after it."""
    tables, agg = _aggregate(TEACHERSPRESENT, SCH_ATT, EXAMPLE_CSV)
    await contrib.ensure_tables(conn, tables)
    assert await contrib.keys_by_set(conn)  # the tests' role is a superuser
    t = next(t for t in tables if t.physical.endswith("daily_school"))
    groups = dict(agg.groups[t.physical])
    assert (D(2023, 5, 8), "S3") in groups  # not in dimensions.school
    other = await asyncpg.connect(proc_dsn)
    try:
        async with conn.transaction():
            await contrib._apply_table(conn, "u1", t, groups, "merge", by_set=True)
            assert await conn.fetchval("SHOW session_replication_role") == "replica"
            with pytest.raises(asyncpg.LockNotAvailableError):
                await other.execute("SET lock_timeout = '200ms'; "
                                    "INSERT INTO dimensions.school (school_id) VALUES ('S9')")
        assert await conn.fetchval("SHOW session_replication_role") == "origin"
    finally:
        await other.close()
    want = expected_example()[t.physical]
    assert await table_rows(conn, t) == {k: (c, s, s / c) for k, (c, s) in want.items()}
    with pytest.raises(asyncpg.ForeignKeyViolationError):  # the triggers check again
        await conn.execute(f'INSERT INTO datasets."{t.physical}" (date, school_id, count, sum, '
                           "avg) VALUES ('2023-01-01', 'S3', 1, 1, 1)")


async def test_a_role_that_is_not_a_superuser_applies_with_the_triggers(conn, proc_dsn):
    """cQube's own database is often reached with a plain role: it cannot turn the foreign-key
    triggers off, so its apply keeps them (no SHARE lock on the dimensions) and gives the same
    rows; its retraction takes them out again."""
    role = "ingest_datasets_plain"
    tables, agg = _aggregate(TEACHERSPRESENT, SCH_ATT, EXAMPLE_CSV)
    await contrib.ensure_tables(conn, tables)
    if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role):
        await conn.execute(f"CREATE ROLE {role} LOGIN NOSUPERUSER")
    for schema in ("public", "datasets", "dimensions"):
        await conn.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}; "
                           f"GRANT ALL ON ALL TABLES IN SCHEMA {schema} TO {role}; "
                           f"GRANT ALL ON ALL SEQUENCES IN SCHEMA {schema} TO {role}")
    plain = await asyncpg.connect(proc_dsn, user=role)
    try:
        assert not await contrib.keys_by_set(plain)
        applied = await contrib.apply_upload(plain, upload_id="u1", program=SCH_ATT.name,
                                             tables=tables, groups=agg.groups)
        assert applied.tables == 32
        want = expected_example()  # S3 (not in dimensions.school) dropped here too
        for t in tables:
            got = await table_rows(conn, t)
            assert got == {k: (c, s, s / c) for k, (c, s) in want[t.physical].items()}, t.physical
        await contrib.retract_upload(plain, upload_id="u1", program=SCH_ATT.name, tables=tables)
        for t in tables:
            assert await table_rows(conn, t) == {}, t.physical
    finally:
        await plain.close()
        for schema in ("public", "datasets", "dimensions"):
            await conn.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema} FROM {role}; "
                               f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema} FROM {role}; "
                               f"REVOKE USAGE ON SCHEMA {schema} FROM {role}")


async def test_per_row_records_of_earlier_builds_are_folded_into_the_arrays(conn):
    """Earlier builds recorded one row a (table, dataset row, upload) in processing_contributions
    (migration 110): they are folded into the markers' arrays, and a retraction then takes
    exactly that contribution out."""
    tables, _ = await load(conn, TEACHERSPRESENT, SCH_ATT, EXAMPLE_CSV, "u1")
    await load(conn, TEACHERSPRESENT, SCH_ATT, EXAMPLE_CSV.replace(",4\n", ",10\n"), "u2")
    before = {t.physical: await table_rows(conn, t) for t in tables}
    recorded = await conn.fetch("SELECT upload_id, tbl, u.* FROM processing_applied_tables, "
                                "unnest(row_ids, counts, sums) AS u(row_id, count, sum) "
                                "WHERE upload_id = 'u1'")
    await conn.executemany("INSERT INTO processing_contributions (upload_id, tbl, row_id, count, "
                           "sum) VALUES ($1, $2, $3, $4, $5)", [tuple(r) for r in recorded])
    ranges = await conn.fetch("SELECT tbl, first_row, last_row FROM processing_applied_tables "
                              "WHERE upload_id = 'u1' ORDER BY tbl")
    await conn.execute("UPDATE processing_applied_tables SET row_ids = NULL, counts = NULL, "
                       "sums = NULL, first_row = NULL, last_row = NULL WHERE upload_id = 'u1'")
    await contrib.ensure_bookkeeping(conn)
    assert not await conn.fetchval("SELECT count(*) FROM processing_contributions")
    folded = await conn.fetch("SELECT upload_id, tbl, u.* FROM processing_applied_tables, "
                              "unnest(row_ids, counts, sums) AS u(row_id, count, sum) "
                              "WHERE upload_id = 'u1'")
    assert sorted(map(tuple, folded)) == sorted(map(tuple, recorded))
    assert await conn.fetch("SELECT tbl, first_row, last_row FROM processing_applied_tables "
                            "WHERE upload_id = 'u1' ORDER BY tbl") == ranges
    assert {t.physical: await table_rows(conn, t) for t in tables} == before
    await contrib.retract_upload(conn, upload_id="u1", program=SCH_ATT.name, tables=tables)
    t = next(t for t in tables if t.physical.endswith("monthly_district"))
    assert await table_rows(conn, t) == {(5, 2023, "101"): (3, 18, 6)}  # u2's alone


async def test_query_builder_queries_of_section_5(conn):
    """cQube's query-builder SQL (whitelist.json:81 and :28) run unchanged on our tables."""
    marked = EXAMPLE_CSV.replace("teachers_marked_present", "teachers_marked") \
        .replace(",4\n", ",5\n").replace(",3\n", ",6\n").replace(",5\n", ",8\n")
    marked += "'02/05/23','101','10101','1010101','S1','Primary','Government','Cat A','Grade 1',4\n"
    present = EXAMPLE_CSV + \
        "'02/05/23','101','10101','1010101','S1','Primary','Government','Cat A','Grade 1',3\n"
    await load(conn, TEACHERSPRESENT, SCH_ATT, present, "p")
    await load(conn, TEACHERSMARKED, SCH_ATT, marked, "m")
    await conn.execute("ALTER TABLE dimensions.district ADD COLUMN district_name VARCHAR;"
                       "UPDATE dimensions.district SET district_name = 'D' || district_id")
    sql = """select district_name, ceil(round(CAST(avg(a.teachers_present/a.teachers_marked)*100 as numeric),2)) as stt_avg
from (select present_table.district_id, present_table.date as att_date, present_table.sum as teachers_present,
             marked_table.sum as teachers_marked
      from datasets.sch_att_teachers_marked_present_daily_district as present_table
      join datasets.sch_att_teachers_marked_daily_district as marked_table
        on present_table.date = marked_table.date and present_table.district_id = marked_table.district_id) as a
join dimensions.district as district_wise_table on district_wise_table.district_id = a.district_id
where a.att_date between startDate and endDate group by a.district_id, district_name order by stt_avg asc"""
    # query-builder substitutes the dashboard's date range for startDate/endDate
    sql = sql.replace("startDate", "'2023-05-01'").replace("endDate", "'2023-05-31'")
    # independently, from the rows: per day present/marked in district 101
    header, p_rows = read_rows(present)
    _, m_rows = read_rows(marked)
    ratios = []
    for day in ("01/05/23", "02/05/23", "08/05/23"):
        p_sum = sum(float(r[-1]) for r in p_rows if r[0] == day)
        m_sum = sum(float(r[-1]) for r in m_rows if r[0] == day)
        ratios.append(p_sum / m_sum)
    want = math.ceil(round(sum(ratios) / len(ratios) * 100, 2))
    got = [tuple(r) for r in await conn.fetch(sql)]
    assert got == [("D101", want)]

    diksha = ("textbook_id,grade,subject,medium,linked_qr_count\n"
              "'T1','Grade 1','Maths','Hindi',3\n'T1','Grade 1','Maths','Hindi',4\n"
              "'T2','Grade 2','English','English',10\n'T1','Grade 3','Maths','Hindi',2\n")
    await load(conn, LINKEDQR, DIKSHA, diksha, "d")
    qb = ("select round(cast(avg(sum) as numeric),2) as total_coverage\n"
          "from datasets.diksha_linkedqrcount_textbookdiksha0grade0subject0medium")
    # query-builder's static src/maps/table_names.json:6 rewrite of the expanded name
    qb = qb.replace("diksha_linkedqrcount_textbookdiksha0grade0subject0medium",
                    "diksha_linkedqrcount_BAgOAU1jKR8ZCwE6eG90")
    groups = {("T1", "Grade 1", "Maths", "Hindi"): 7, ("T2", "Grade 2", "English", "English"): 10,
              ("T1", "Grade 3", "Maths", "Hindi"): 2}
    want2 = round(sum(groups.values()) / len(groups), 2)
    assert float(await conn.fetchval(qb)) == pytest.approx(want2, abs=1e-9)
