#!/usr/bin/env python3
"""Datasets (issue 24): the apply phase alone — an upload's groups into its 32 tables.

usage: INGEST_TEST_DSN=postgresql://postgres@127.0.0.1:5432/postgres \
       bench/bench_datasets_apply.py [--rows N] [--shape worst|school-days] [--repeat N]
       [--roll-up]

The setup of ``bench_datasets.py`` (8 dimension tables through the API, the programme, its event
grammar: 32 tables), the groups of an N-row file computed in this process, then timed through
``contributions.apply_upload`` on the service's processing pool, as the datasets step calls it:
a first upload (every group new: inserts), a second one with the same groups (merged: updates),
the first retracted, the second retracted (the tables empty again); ``--repeat`` times. Prints
each step's wall time with the CPU time it took here and in PostgreSQL's backends (a local
server's, read from /proc: less moved by the machine's load than the wall time), the groups and
the machine's load. Nothing is asserted.

``--roll-up``: each apply starts from the merged partials, as the datasets step after an upload
does: the tables' groups rolled up key set by key set in a thread while the first ones are
applied (the CPU "here" then includes the roll-up).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tests"))

from bench_datasets import app_client, event_csv, register  # noqa: E402
from testkit.accounts import fresh_database  # noqa: E402

from ingest_server.processing import contributions as contrib  # noqa: E402
from ingest_server.processing.aggregate import Aggregator  # noqa: E402
from ingest_server.processing.dates import parse_cqube_date  # noqa: E402

PROGRAM = "school-attendance"


async def main(rows: int, dsn: str, shape: str, repeat: int, roll_up: bool = False) -> None:
    from ingest_server.web import appkeys
    async with app_client(dsn) as (app, client, h):
        await register(client, h)
        datasets = app[appkeys.PROCESSING].datasets
        _, _, tables = await datasets.program_tables(PROGRAM)
        reader = csv.reader(io.StringIO(event_csv(rows, 0, shape).decode()))
        agg = Aggregator(tables, next(reader), parse_date=parse_cqube_date)
        agg.add_rows(reader)
        groups = agg.all_table_groups()

        def given():  # the groups as the step gets them
            return _rolled_up(agg) if roll_up else groups

        print(f"{rows} rows ({shape}): {sum(map(len, groups.values()))} groups in "
              f"{len(groups)} tables (largest {max(map(len, groups.values()))})", flush=True)
        pool = datasets.pool
        for n in range(repeat):
            for label, step in (
                    ("apply, every group new", lambda: contrib.apply_upload(
                        pool, upload_id=f"a{n}", program=PROGRAM, tables=tables, groups=given())),
                    ("apply, the same groups again", lambda: contrib.apply_upload(
                        pool, upload_id=f"b{n}", program=PROGRAM, tables=tables, groups=given())),
                    ("retract the first", lambda: _retract(pool, f"a{n}", tables)),
                    ("retract the second", lambda: _retract(pool, f"b{n}", tables))):
                pids = [r["pid"] for r in await pool.fetch(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database()")]
                t, cpu, pg = time.perf_counter(), time.process_time(), _cpu(pids)
                await step()
                print(f"  {label}: {time.perf_counter() - t:.2f} s (CPU: here "
                      f"{time.process_time() - cpu:.2f} s, PostgreSQL {_cpu(pids) - pg:.2f} s)",
                      flush=True)
        print("load:", os.getloadavg())


async def _rolled_up(agg: Aggregator):
    """The tables' groups key set by key set, each rolled up in a thread (as the step does)."""
    parts = agg.table_groups()
    while (part := await asyncio.to_thread(next, parts, None)) is not None:
        yield part


def _cpu(pids: list[int]) -> float:
    """CPU seconds the PostgreSQL backends ``pids`` used so far (a local server: /proc), a
    figure the machine's load moves much less than wall times."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


async def _retract(pool, upload_id: str, tables) -> int:
    async with pool.acquire() as conn:
        return await contrib.retract_upload(conn, upload_id=upload_id, program=PROGRAM,
                                            tables=tables)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--shape", choices=("worst", "school-days"), default="school-days")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--roll-up", action="store_true",
                    help="roll the groups up in each apply, as the datasets step does")
    a = ap.parse_args()
    with fresh_database(os.environ["INGEST_TEST_DSN"], "bench_datasets_apply") as dsn:
        asyncio.run(main(a.rows, dsn, a.shape, a.repeat, a.roll_up))
