#!/usr/bin/env python3
"""The referential check's cost: one event file uploaded with and without its grammar's checks,
same server, same run.

usage: bench_processing.py [--rows N] [--schools N] [--workers N] [--dsn DSN]

A real server (processing.enabled) on a fresh database. Dimensions: school with ``--schools``
keys (default 1,500,000, written with SQL: the bench measures the check, not the load) and seven
small ones (district, block, cluster, schoolcategory, schoolmanagement, statecategory, grade).
The event grammar ``attendance`` names all eight; the spec ``attendance_plain`` has the same
columns and no grammar. The same ``--rows`` file (default 1,000,000 rows, every key known but 3)
is uploaded to both after a warm-up upload (which builds the key files). Printed for both: rows/s,
the server tree's peak RSS and PSS (testkit.rss_sampler), CPU seconds (a row, by process), then
the check's cost as the drop in rows/s (``throughput_cost``) and in CPU a row (``cpu_cost``);
and checked: the grammar's upload finds exactly the 3 unknown keys at their lines.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import secrets
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import asyncpg

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from bench_ingest import get_token  # noqa: E402
from testkit.rss_sampler import TreeSampler  # noqa: E402
from testkit.server_process import ServerConfig, free_port  # noqa: E402
from testkit.accounts import fresh_database  # noqa: E402

SMALL = {"district": 40, "block": 400, "cluster": 4000, "schoolcategory": 8,
         "schoolmanagement": 12, "statecategory": 6, "grade": 12}
COLUMNS = ["district", "block", "cluster", "school", "schoolcategory", "schoolmanagement",
           "statecategory", "grade"]
BAD = {1234: ("district", "D999"), 500_000: ("school", "S99999999"), -1: ("grade", "G99")}


@dataclass
class ProcessingConfig(ServerConfig):
    def toml(self) -> str:
        return super().toml() + "[processing]\nenabled = true\n"


def event_grammar() -> str:
    keys = [f"{c}_id" for c in COLUMNS]
    return "\n".join([",".join(["", *COLUMNS, ""]), ",".join(["", *keys, ""]),
                      ",".join(["date", *["string"] * 8, "integer"]),
                      ",".join(["date", *keys, "students"]),
                      ",".join(["timeDimension", *["dimension"] * 8, "metric"])]) + "\n"


def write_event_file(path: Path, rows: int, schools: int) -> None:
    bad = {(rows // 2 if i == 500_000 else i if i >= 0 else rows + i): v
           for i, v in BAD.items()}
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["date", *[f"{c}_id" for c in COLUMNS], "students"])
        for i in range(rows):
            row = [f"{1 + i % 28:02d}/05/23", f"D{i % SMALL['district']}",
                   f"B{i % SMALL['block']}", f"C{i % SMALL['cluster']}",
                   f"S{(i * 7919) % schools:08d}", f"SC{i % SMALL['schoolcategory']}",
                   f"SM{i % SMALL['schoolmanagement']}", f"ST{i % SMALL['statecategory']}",
                   f"G{i % SMALL['grade']}", str(i % 60)]
            if i in bad:
                col, value = bad[i]
                row[1 + COLUMNS.index(col)] = value
            w.writerow(row)


async def setup(session, url, token, dsn, schools) -> None:
    h = {"Authorization": f"Bearer {token}"}
    for dim in COLUMNS:
        async with session.put(f"{url}/api/processing/grammars/dimensions/{dim}",
                               data=f"PK,\nstring,string\n{dim}_id,{dim}_name\n",
                               headers={**h, "Content-Type": "text/csv"}) as r:
            assert r.status in (200, 201), await r.text()
    conn = await asyncpg.connect(dsn)
    try:
        prefix = {"district": "D", "block": "B", "cluster": "C", "schoolcategory": "SC",
                  "schoolmanagement": "SM", "statecategory": "ST", "grade": "G"}
        for dim, n in SMALL.items():
            await conn.execute(f"INSERT INTO dimensions.{dim} ({dim}_id, {dim}_name) SELECT "
                               f"$1 || g, 'name ' || g FROM generate_series(0, $2 - 1) g",
                               prefix[dim], n)
        await conn.execute("INSERT INTO dimensions.school (school_id, school_name) SELECT "
                           "'S' || lpad(g::text, 8, '0'), 'School ' || g "
                           "FROM generate_series(0, $1 - 1) g", schools)
    finally:
        await conn.close()
    async with session.put(f"{url}/api/processing/grammars/events/bench/attendance",
                           data=event_grammar(), headers={**h, "Content-Type": "text/csv"}) as r:
        assert r.status in (200, 201), await r.text()
    plain = {c: {"type": "string", "required": True, "empty": False}
             for c in ["date", *[f"{c}_id" for c in COLUMNS]]}
    plain["students"] = {"type": "integer", "coerce": "integer", "required": True}
    async with session.put(f"{url}/api/specs/event/attendance_plain",
                           json={"cerberus": plain}, headers=h) as r:
        assert r.status in (200, 201), await r.text()


async def upload(session, url, token, path: Path, name: str) -> dict:
    form = aiohttp.FormData()
    form.add_field("ingestion_type", "event")
    form.add_field("ingestion_name", name)
    form.add_field("program_name", "bench")
    form.add_field("file", open(path, "rb"), filename=path.name, content_type="text/csv")
    async with session.post(f"{url}/api/ingestion/new_programs", data=form,
                            headers={"Authorization": f"Bearer {token}"}) as r:
        body = await r.json()
        assert r.status == 200, body
        return body


async def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--schools", type=int, default=1_500_000)
    ap.add_argument("--workers", type=int, default=0)
    ap.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = ap.parse_args()
    run_dir = Path(tempfile.mkdtemp(prefix="bench-processing-"))
    secret = secrets.token_urlsafe(24)
    data = run_dir / "attendance.csv"
    write_event_file(data, args.rows, args.schools)
    warm = run_dir / "warm.csv"
    with open(data) as src, open(warm, "w") as out:
        out.writelines(line for _, line in zip(range(3), src))
    results = {}
    try:
        async with fresh_database(args.dsn) as dsn:
            server = ProcessingConfig(run_dir, free_port(), dsn, args.workers,
                                      secret).process()
            await server.start_async()
            try:
                timeout = aiohttp.ClientTimeout(total=None, sock_read=3600)
                async with aiohttp.ClientSession(timeout=timeout) as session:
                    token = await get_token(session, server.url, secret)
                    await setup(session, server.url, token, dsn, args.schools)
                    t0 = time.perf_counter()
                    await upload(session, server.url, token, warm, "attendance")
                    results["key_files_build_s"] = round(time.perf_counter() - t0, 1)
                    for case, name in (("without processing", "attendance_plain"),
                                       ("with processing", "attendance")):
                        with TreeSampler(server.pid) as sampler:
                            t0 = time.perf_counter()
                            body = await upload(session, server.url, token, data, name)
                            took = time.perf_counter() - t0
                        peak = sampler.peak
                        results[case] = {
                            "rows_per_s": round(args.rows / took), "seconds": round(took, 1),
                            "tree_peak_rss_mb": round(peak.tree_bytes / 2**20),
                            "tree_peak_pss_mb": round(peak.pss_tree_bytes / 2**20),
                            "cpu_s": round(peak.cpu_seconds(), 1),
                            "cpu_us_per_row": round(peak.cpu_seconds() / args.rows * 1e6, 2),
                            "cpu_s_by_process": {k: round(v, 1)
                                                 for k, v in peak.cpu_by_name().items()},
                            "invalid_rows": body["invalid_rows"],
                            "errors": [(e["line"], e["column"], e["value"], e["code"])
                                       for e in body["errors_sample"]]}
                        print(case, json.dumps(results[case]), flush=True)
            finally:
                server.stop()
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    with_p, without = results["with processing"], results["without processing"]
    results["throughput_cost"] = round(1 - with_p["rows_per_s"] / without["rows_per_s"], 3)
    # The same from the tree's CPU a row: what the check costs a machine the server saturates
    # (wall time also moves with whatever else the machine runs).
    results["cpu_cost"] = round(1 - without["cpu_us_per_row"] / with_p["cpu_us_per_row"], 3)
    print(json.dumps(results, indent=1))
    expected = [(1236, "district_id", "D999"), (args.rows // 2 + 2, "school_id", "S99999999"),
                (args.rows + 1, "grade_id", "G99")]
    got = [tuple(e[:3]) for e in with_p["errors"]]
    ok = with_p["invalid_rows"] == 3 and got == expected and without["invalid_rows"] == 0
    print("checks:", "ok" if ok else f"FAILED {got}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
