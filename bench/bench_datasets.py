#!/usr/bin/env python3
"""Datasets (issue 24): the same event upload with and without the datasets step, same run.

usage: INGEST_TEST_DSN=postgresql://postgres@127.0.0.1:5432/postgres \
       bench/bench_datasets.py [--rows N] [--workers N] [--shape worst|school-days] [--grouping]

An 8-dimension event grammar of the §7 shape (district, block, cluster, school, schoolcategory,
schoolmanagement, statecategory, grade; cQube time dimension: 32 tables), dimension tables loaded
through the API, then one upload of N rows with processing.enabled but the datasets step off
(baseline: referential checks included), and the same bytes again as a new upload with it on.
"With datasets" is timed until the upload is in its tables (the answer's processing state, or
uploads/{id} polled while it says pending). Prints both wall times, the CPU seconds of this
process (the server) and of its workers during each upload (PostgreSQL's not included: a figure
the machine's other load distorts less than wall time), the step's log (its roll-up and its
apply), the ratio, the tables' row counts and the machine's load (uptime). Figures are printed,
not asserted.

``--grouping``: no server, one process: the CPU of the aggregation itself on the same rows, in
chunks of about a worker's size (``processing.aggregate``): the workers' grouping of each chunk
(µs a row, with pickling its partials), from its rows and from its valid output's bytes as the
workers do (``RowGroups.from_csv``; the same partials, checked), merging the chunks' partials (with unpickling them), and
rolling them up into the 32 tables.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import io
import logging
import os
import pickle
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE.parent / "tests"))

from aiohttp.test_utils import TestClient, TestServer  # noqa: E402

from conftest import TEST_CLIENT, basic, make_settings  # noqa: E402
from ingest_helpers import form  # noqa: E402
from processing_example import sch_att_grammar  # noqa: E402
from testkit.accounts import fresh_database  # noqa: E402
from testkit.rss_sampler import TreeSampler  # noqa: E402

DIMS = [("district", "district_id", 30), ("block", "block_id", 300),
        ("cluster", "cluster_id", 3000), ("school", "school_id", 20000),
        ("schoolcategory", "schoolcategory_name", 5), ("schoolmanagement", "schoolmanagement_name", 4),
        ("statecategory", "school_statecategory_name", 3), ("grade", "grade", 12)]


def event_csv(rows: int, salt: int, shape: str = "worst") -> bytes:
    """``worst``: every key cycles on its own, so nearly every (day, school) is its own group;
    ``school-days``: a state's daily file as schools send it, one row per (day, school, grade),
    sorted by day, each school in one cluster, block and district."""
    out = io.StringIO()
    out.write("date," + ",".join(k for _, k, _ in DIMS) + ",teachers_marked_present\n")
    for i in range(rows):
        if shape == "worst":
            day = 1 + i % 28
            keys = [f"{k[0].upper()}{i % n}" for _, k, n in DIMS]
        else:
            day, school, grade = 1 + i // 240_000, (i // 12) % 20_000, i % 12
            keys = [f"D{school // 700}", f"B{school // 70}", f"C{school // 7}", f"S{school}",
                    f"S{school % 5}", f"S{school % 4}", f"S{school % 3}", f"G{grade}"]
        out.write(f"{day:02d}/05/23," + ",".join(keys) + f",{(i + salt) % 40}\n")
    return out.getvalue().encode()


async def register(client: TestClient, h: dict[str, str]) -> None:
    """The 8 dimension tables (loaded through the API), the programme and its event grammar."""
    csv_h = {**h, "Content-Type": "text/csv"}
    for dim, key, n in DIMS:
        await client.put(f"/api/processing/grammars/dimensions/{dim}",
                         data=f"PK\nstring\n{key}\n".encode(), headers=csv_h)
        data = (key + "\n" + "".join(f"{key[0].upper()}{i}\n" for i in range(n))).encode()
        r = await client.post("/api/ingestion/new_programs", headers=h, data=form(
            data, fields={"ingestion_type": "dimension", "ingestion_name": dim}))
        assert r.status == 200, await r.text()
    r = await client.put("/api/processing/programs/school-attendance", headers=h,
                         json={"namespace": "sch_att", "whitelisted": []})
    assert r.status in (200, 201), await r.text()
    r = await client.put(
        "/api/processing/grammars/events/school-attendance/teacherspresent",
        data=sch_att_grammar("teachers_marked_present").encode(), headers=csv_h)
    assert r.status in (200, 201), await r.text()


@contextlib.asynccontextmanager
async def app_client(dsn: str, workers: int = 2):
    """The service with processing on, its test client and a bearer token's headers."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = make_settings(Path(tmp), dsn, processing={"enabled": True},
                                 ingest={"workers": workers, "parallel_min_bytes": 0},
                                 limits={"max_upload_bytes": 2_000_000_000})
        from ingest_server.web.app import create_app
        app = create_app(settings)
        client = TestClient(TestServer(app))
        await client.start_server()
        try:
            resp = await client.get("/api/ingestion/generatejwt",
                                    headers=basic(*TEST_CLIENT, json=True))
            yield app, client, {"Authorization": f"Bearer {(await resp.json())['token']}"}
        finally:
            await client.close()


def grouping(rows: int, shape: str, chunk: int = 16_000) -> None:
    """The aggregation's CPU on ``rows`` rows of ``shape`` (this thread's CPU time, best of three
    passes: the machine's other load does not count). Each chunk's rows are parsed just before
    they are grouped, as a worker does (parsing is not counted)."""
    from ingest_server.processing.aggregate import Aggregator
    from ingest_server.processing.dates import parse_cqube_date
    from ingest_server.processing.datasets import plan_tables
    from processing_example import SCH_ATT, TEACHERSPRESENT
    text = event_csv(rows, 0, shape).decode().splitlines(keepends=True)
    header, body = next(csv.reader(text[:1])), text[1:]
    chunks = ["".join(body[i:i + chunk]) for i in range(0, len(body), chunk)]
    tables = plan_tables(TEACHERSPRESENT, SCH_ATT)
    # the valid output a worker writes of each chunk (CRLF), which it groups from (from_csv)
    raws = [c.replace("\n", "\r\n").encode() for c in chunks]
    best: dict[str, float] = {}
    for _ in range(3):
        agg = Aggregator(tables, header, parse_date=parse_cqube_date)
        partials, spent, from_bytes = [], 0.0, 0.0
        for c, raw in zip(chunks, raws):
            parsed = list(csv.reader(io.StringIO(c)))
            t = time.thread_time()
            partials.append(pickle.dumps(agg.row_groups(parsed)))  # sent back by the worker
            t1 = time.thread_time()
            assert pickle.dumps(agg.row_groups.from_csv(raw, len(header))) == partials[-1]
            spent += t1 - t
            from_bytes += time.thread_time() - t1
        t1 = time.thread_time()
        for p in partials:
            agg.merge(pickle.loads(p))
        t2 = time.thread_time()
        groups = agg.groups
        t3 = time.thread_time()
        for label, s in (("grouping", spent), ("bytes", from_bytes), ("merge", t2 - t1),
                         ("roll-up", t3 - t2)):
            best[label] = min(best.get(label, s), s)
    print(f"{rows} {shape} rows, {len(tables)} tables, "
          f"{sum(len(g) for g in groups.values())} groups, chunks of {chunk} rows (CPU, best of 3):")
    print(f"  workers' grouping of the rows: {best['grouping']:.2f} s = "
          f"{best['grouping'] / rows * 1e6:.2f} µs a row")
    print(f"  workers' grouping of the valid output's bytes (from_csv, as the workers do): "
          f"{best['bytes']:.2f} s = {best['bytes'] / rows * 1e6:.2f} µs a row")
    print(f"  merging the {len(chunks)} partials: {best['merge']:.2f} s")
    print(f"  roll-up into the tables: {best['roll-up']:.2f} s")
    print("load:", os.getloadavg())


async def main(rows: int, workers: int, dsn: str, shape: str) -> None:
    from ingest_server.web import appkeys
    async with app_client(dsn, workers) as (app, client, h):
        await register(client, h)
        service = app[appkeys.PROCESSING]
        datasets = service.datasets
        times = {}
        for salt, (label, on) in enumerate((("without datasets", False),
                                            ("with datasets", True),
                                            ("without datasets (again)", False))):
            body = event_csv(rows, salt, shape)  # new bytes: not a duplicate of the last run
            service.datasets = datasets if on else None
            sampler = TreeSampler(os.getpid()).__enter__()
            t = time.perf_counter()
            r = await client.post("/api/ingestion/new_programs", headers=h, data=form(
                body,
                fields={"ingestion_type": "event", "ingestion_name": "teacherspresent",
                        "program_name": "school-attendance"}, filename=f"{label}.csv"))
            answer = await r.json()
            assert r.status == 200 and answer["valid_rows"] == rows, answer
            landed = time.perf_counter() - t
            while on and answer["processing"]["status"] == "pending":
                await asyncio.sleep(0.05)
                r = await client.get(f"/api/ingestion/uploads/{answer['upload_id']}",
                                     headers=h)
                answer = await r.json()
            times[label] = time.perf_counter() - t
            sampler.__exit__()
            cpu = sampler.peak.cpu_by_name()
            server = sum(v for k, v in cpu.items() if k != "worker")
            print(f"{label}: {times[label]:.1f} s (answer after {landed:.1f} s)  "
                  f"CPU: server {server:.1f} s, workers {sum(cpu.values()) - server:.1f} s  "
                  f"processing={answer.get('processing')}", flush=True)
        service.datasets = datasets
        r = await client.get("/api/processing/programs/school-attendance", headers=h)
        tables = (await r.json())["datasets"]["tables"]
        print(f"{rows} rows, {len(tables)} tables, "
              f"{sum(t['rows'] for t in tables)} rows in them:")
        for t in tables:
            print(f"  {t['table']}: {t['rows']}")
        base_t = (times["without datasets"] + times["without datasets (again)"]) / 2
        print(f"ratio with/without: {times['with datasets'] / base_t:.2f}")
        print("load:", os.getloadavg())


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--shape", choices=("worst", "school-days"), default="worst")
    ap.add_argument("--grouping", action="store_true",
                    help="only the aggregation's CPU, in this process (no server, no database)")
    a = ap.parse_args()
    if a.grouping:
        grouping(a.rows, a.shape)
        sys.exit(0)
    # the datasets step's own log line: its roll-up and apply (overlapped), in X s
    logging.basicConfig(format="  server: %(message)s")
    logging.getLogger("ingest_server.processing").setLevel(logging.INFO)
    with fresh_database(os.environ["INGEST_TEST_DSN"], "bench_datasets") as dsn:
        asyncio.run(main(a.rows, a.workers, dsn, a.shape))
