"""A stateful property test of the datasets (issue 24): random sequences of uploads, repeated
processing of the same upload (retries, recovery, another replica), retractions and rebuilds;
after every step each dataset table equals an independent aggregation of the landed, unretracted
rows (real PostgreSQL)."""

from __future__ import annotations

import asyncio
import datetime
import os

import asyncpg
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (Bundle, RuleBasedStateMachine, consumes, invariant, rule,
                                 run_state_machine_as_test)

from ingest_server.processing import contributions as contrib
from ingest_server.processing.aggregate import Aggregator
from ingest_server.processing.dates import parse_cqube_date
from ingest_server.processing.datasets import plan_tables
from ingest_server.processing.grammars import Program, parse_event_grammar
from testkit.accounts import fresh_database

GRAMMAR = parse_event_grammar(
    "prog", "visits",
    ",district,grade,\n,district_id,grade,\ndate,string,string,number\n"
    "date,district_id,grade,visits\ntimeDimension,dimension,dimension,metric\n")
PROGRAM = Program("prog", "pg", (("grade", "district"),))
TABLES = plan_tables(GRAMMAR, PROGRAM)
HEADER = ["date", "district_id", "grade", "visits"]
DISTRICTS = ["d1", "d2"]          # in dimensions.district; "dx" is not
GRADES = ["g1", "g2", "g3"]
EXAMPLES = int(os.environ.get("INGEST_PROCESSING_EXAMPLES", "25"))

rows_st = st.lists(st.tuples(
    st.dates(datetime.date(2022, 12, 25), datetime.date(2023, 1, 20)),
    st.sampled_from(DISTRICTS + ["dx"]), st.sampled_from(GRADES),
    st.integers(-5, 50).map(float) | st.sampled_from([0.5, 2.25, 12.7])), min_size=1, max_size=8)


def expected(landed: dict[str, list[tuple]]) -> dict[str, dict[tuple, tuple[float, float]]]:
    """Written independently of the code under test: cQube's rules spelled out per table."""
    out: dict[str, dict[tuple, list[float]]] = {}
    for t in TABLES:
        groups: dict[tuple, list[float]] = {}
        for rows in landed.values():
            for day, district, grade, value in rows:
                values = {"district_id": district, "grade": grade}
                if any(values[k.column] == "dx" for k in t.keys):
                    continue  # a key not in its dimension table: the row is not in this table
                time = {"Daily": (day,),
                        "Weekly": ((day - datetime.date(day.year, 1, 1)).days // 7 + 1, day.year),
                        "Monthly": (day.month, day.year), "Yearly": (day.year,)}[t.grain]
                g = groups.setdefault(time + tuple(values[k.column] for k in t.keys), [0, 0.0])
                g[0] += 1
                g[1] += value
        out[t.physical] = {k: (c, s) for k, (c, s) in groups.items()}
    return out


def aggregate(rows: list[tuple]):
    agg = Aggregator(TABLES, HEADER, parse_date=parse_cqube_date)
    agg.add_rows([[d.strftime("%d/%m/%Y"), k1, k2, repr(v)] for d, k1, k2, v in rows])
    return agg.groups


class DatasetMachine(RuleBasedStateMachine):
    loop: asyncio.AbstractEventLoop
    conn: asyncpg.Connection

    uploads = Bundle("uploads")
    retracted = Bundle("retracted")

    def __init__(self) -> None:
        super().__init__()
        self.landed: dict[str, list[tuple]] = {}
        self.n = 0
        self.run(self._reset())

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    async def _reset(self):
        for t in TABLES:
            await self.conn.execute(f'DELETE FROM datasets."{t.physical}"')
        await self.conn.execute("DELETE FROM processing_applied; "
                                "DELETE FROM processing_applied_tables")

    def _crash_after(self, rows, k: int) -> tuple[str, dict]:
        """A new upload of which an instance committed ``k`` tables before it died."""
        self.n += 1
        uid, groups = f"u{self.n}", aggregate(rows)
        for t in TABLES[:k]:
            if groups.get(t.physical):
                assert self.run(contrib._apply_once(self.conn, uid, "prog", t,
                                                    groups[t.physical], "merge"))
        return uid, groups

    def _land(self, rows, k: int) -> str:
        uid, groups = self._crash_after(rows, k)
        a = self.run(contrib.apply_upload(self.conn, upload_id=uid, program="prog", tables=TABLES,
                                          groups=groups))
        assert not a.already
        self.landed[uid] = rows
        return uid

    @rule(target=uploads, rows=rows_st)
    def upload(self, rows):
        return self._land(rows, 0)

    @rule(target=uploads, rows=rows_st, k=st.integers(1, len(TABLES)))
    def upload_resumed_after_a_crash(self, rows, k):
        """An instance died after committing ``k`` tables; the job resumed applies the rest."""
        return self._land(rows, k)

    @rule(target=retracted, rows=rows_st, k=st.integers(1, len(TABLES)))
    def retracted_after_a_crash(self, rows, k):
        """An instance died after committing ``k`` tables, then the upload was retracted."""
        uid, _ = self._crash_after(rows, k)
        self.run(contrib.retract_upload(self.conn, upload_id=uid, program="prog", tables=TABLES))
        return (uid, rows)

    @rule(uid=uploads)
    def process_again(self, uid):
        if uid not in self.landed:
            return
        a = self.run(contrib.apply_upload(self.conn, upload_id=uid, program="prog", tables=TABLES,
                                          groups=aggregate(self.landed[uid])))
        assert a.already

    @rule(target=retracted, uid=consumes(uploads))
    def retract(self, uid):
        self.run(contrib.retract_upload(self.conn, upload_id=uid, program="prog", tables=TABLES))
        rows = self.landed.pop(uid)
        return (uid, rows)

    @rule(item=retracted)
    def process_retracted_late(self, item):
        uid, rows = item
        a = self.run(contrib.apply_upload(self.conn, upload_id=uid, program="prog", tables=TABLES,
                                          groups=aggregate(rows)))
        assert a.already

    @rule()
    def rebuild(self):
        async def source():
            for uid, rows in list(self.landed.items()):
                yield uid, aggregate(rows)
        self.run(contrib.rebuild_program(self.conn, program="prog", tables=TABLES,
                                         uploads=source()))

    @invariant()
    def tables_equal_independent_aggregation(self):
        want = expected(self.landed)
        for t in TABLES:
            cols = ", ".join(f'"{c}"' for c in t.group_columns)
            rows = self.run(self.conn.fetch(
                f'SELECT {cols}, count, sum, avg FROM datasets."{t.physical}"'))
            n = len(t.group_columns)
            got = {tuple(r[:n]): (r["count"], r["sum"], r["avg"]) for r in rows}
            assert len(got) == len(rows)
            assert set(got) == set(want[t.physical]), t.physical
            for key, (count, total) in want[t.physical].items():
                c, s, avg = got[key]
                assert c == count and s == pytest.approx(total, abs=1e-9)
                assert avg == pytest.approx(total / count, abs=1e-9)


@pytest.fixture(scope="module")
def machine_db(pg_dsn):
    with fresh_database(pg_dsn, "ingest_datasets_sm") as dsn:
        yield dsn


def test_datasets_stateful(machine_db):
    loop = asyncio.new_event_loop()

    async def setup():
        conn = await asyncpg.connect(machine_db)
        await conn.execute(contrib.bookkeeping_sql())
        await conn.execute("CREATE SCHEMA dimensions; CREATE SCHEMA datasets;"
                           "CREATE TABLE dimensions.district (id SERIAL PRIMARY KEY, "
                           "district_id VARCHAR UNIQUE);"
                           "CREATE TABLE dimensions.grade (id SERIAL PRIMARY KEY, grade VARCHAR UNIQUE)")
        await conn.executemany("INSERT INTO dimensions.district (district_id) VALUES ($1)",
                               [(d,) for d in DISTRICTS])
        await conn.executemany("INSERT INTO dimensions.grade (grade) VALUES ($1)",
                               [(g,) for g in GRADES])
        await contrib.ensure_tables(conn, TABLES)
        return conn

    conn = loop.run_until_complete(setup())
    DatasetMachine.loop, DatasetMachine.conn = loop, conn
    try:
        run_state_machine_as_test(DatasetMachine, settings=settings(
            max_examples=EXAMPLES, stateful_step_count=12, deadline=None, database=None,
            derandomize=not os.environ.get("DIFF_RANDOM"),
            suppress_health_check=[HealthCheck.too_slow]))
    finally:
        loop.run_until_complete(conn.close())
        loop.close()
