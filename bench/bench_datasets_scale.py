#!/usr/bin/env python3
"""Datasets at scale (issue 24 item 5): one upload's contribution into a table that is large.

usage: INGEST_TEST_DSN=postgresql://postgres@127.0.0.1:5432/postgres \
       bench/bench_datasets_scale.py [--existing 10000000] [--groups 1000000]

One daily single-dimension dataset table in cQube's shape (``date``, ``school_id`` with its FK to
``dimensions.school``, ``sum``/``count``/``avg``, our unique index on (date, school_id)) is filled
with ``--existing`` rows (20,000 schools × as many days as needed), each with its contribution
record, as earlier uploads would have left them. Then one upload of ``--groups`` new groups (the
following days for every school) is applied through ``contributions.apply_upload`` — one
statement: the dimension filter, each group looked up, updated or inserted, the record — and
timed; then the same upload merged into
those groups again as a second upload (all conflicts: updates), then the first retracted. Prints
the times, the table's size and the machine's load. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import asyncpg  # noqa: E402

from ingest_server.processing import contributions as contrib  # noqa: E402
from ingest_server.processing.datasets import DatasetKey, DatasetTable  # noqa: E402
from testkit.accounts import fresh_database  # noqa: E402

SCHOOLS = 20_000
TABLE = DatasetTable("sc_visits_Daily_school", "sc_visits_Daily_school", "sc", "scale", "visits",
                     "Daily", (DatasetKey("school_id", "school_id", "school", "school_id"),),
                     "visits", False, None)
START = datetime.date(2000, 1, 1)


async def main(dsn: str, existing: int, groups: int) -> None:
    conn = await asyncpg.connect(dsn)
    await conn.execute(contrib.bookkeeping_sql())
    await conn.execute("CREATE SCHEMA dimensions; CREATE SCHEMA datasets; "
                       "CREATE TABLE dimensions.school (id SERIAL PRIMARY KEY, "
                       "school_id VARCHAR UNIQUE)")
    await conn.execute(f"INSERT INTO dimensions.school (school_id) "
                       f"SELECT 'S' || i FROM generate_series(0, {SCHOOLS - 1}) i")
    await contrib.ensure_tables(conn, [TABLE])
    t = time.perf_counter()
    days = -(-existing // SCHOOLS)
    await conn.execute(
        f"INSERT INTO datasets.sc_visits_daily_school (date, school_id, count, sum, avg) "
        f"SELECT date '{START}' + d, 'S' || s, 1, 5, 5 FROM generate_series(0, {days - 1}) d, "
        f"generate_series(0, {SCHOOLS - 1}) s LIMIT {existing}")
    await conn.execute(  # as uploads of 1,000,000 groups each would have recorded them
        "INSERT INTO processing_applied_tables (upload_id, tbl, groups, row_ids, counts, sums) "
        "SELECT 'old-' || (id / 1000000), 'sc_visits_daily_school', count(*), array_agg(id), "
        "array_agg(count), array_agg(sum) FROM datasets.sc_visits_daily_school "
        "GROUP BY id / 1000000")
    await conn.execute("VACUUM ANALYZE datasets.sc_visits_daily_school")
    await conn.execute("VACUUM ANALYZE processing_applied_tables")
    size = await conn.fetchval("SELECT pg_size_pretty(pg_total_relation_size("
                               "'datasets.sc_visits_daily_school'))")
    print(f"filled {existing:,} rows ({size} with indexes) and their contributions in "
          f"{time.perf_counter() - t:.0f} s", flush=True)
    first = START + datetime.timedelta(days=days)
    new = {(first + datetime.timedelta(days=i // SCHOOLS), f"S{i % SCHOOLS}"): [1, 7.0]
           for i in range(groups)}
    for label, upload in (("new groups (inserts)", "u1"), ("same groups again (updates)", "u2")):
        t = time.perf_counter()
        done = await contrib.apply_upload(conn, upload_id=upload, program="scale",
                                          tables=[TABLE], groups={TABLE.physical: new})
        print(f"apply {groups:,} {label} into {existing:,} rows: "
              f"{time.perf_counter() - t:.1f} s ({done.groups:,} groups)", flush=True)
    t = time.perf_counter()
    n = await contrib.retract_upload(conn, upload_id="u1", program="scale", tables=[TABLE])
    print(f"retract the first ({n:,} groups): {time.perf_counter() - t:.1f} s")
    print("load:", os.getloadavg())
    await conn.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--existing", type=int, default=10_000_000)
    ap.add_argument("--groups", type=int, default=1_000_000)
    a = ap.parse_args()
    with fresh_database(os.environ["INGEST_TEST_DSN"], "bench_datasets_scale") as url:
        asyncio.run(main(url, a.existing, a.groups))
