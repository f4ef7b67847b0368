#!/usr/bin/env python3
"""Load benchmark: many concurrent uploads of mixed sizes against one real server; nothing lost.

usage: bench_load.py [--duration S] [--concurrency N] [--server-workers 1,2] [--ingest-workers N]
                     [--large-every K] [--zip-every K] [--s3] [--dsn DSN] [--seed N] [--keep]
                     [--small N | --json N [--json-rows R]] [--json-out FILE] [--py-spy [gil]]

For each ``--server-workers`` value, starts ``python -m ingest_server --workers N`` (a fresh
database on ``--dsn`` / ``INGEST_TEST_DSN``, dropped after; local storage, or SeaweedFS with
``--s3``), registers two event specs and keeps ``--concurrency`` uploads in flight for
``--duration`` seconds: small CSVs (10-1,000 rows), a few large ones (50k-200k rows) and ZIPs
of two members. Every row carries a unique ``row_id``; about 5 % are made invalid on purpose.

Afterwards every upload is accounted for by reading its output objects back: each row id is in
exactly one of the valid/error outputs, the right one, and nowhere else; every written row equals,
cell by cell and in order, the row sent (rejected rows also their physical ``_line``); storage holds no object
that no answer named and no staged leftovers; every upload row in PostgreSQL is ``uploaded``.
Printed: p50/p99/max latency of small uploads, throughput, peak RSS of the server's process tree
(server processes and validation workers, sampled every 50 ms), 5xx count and the accounting.
``tests/test_load.py`` runs a short fixed plan with the same harness.

``--small N`` replaces the timed mix with N small CSV uploads (10-1,000 rows each) made before
the clock starts (the many-small-uploads case: uploads/s, p50/p99); ``--json N`` with N bodies
of ``--json-rows`` JSON rows POSTed to /api/ingestion/event (rows/s, p99), accounted for the
same way. CPU ms per upload (server tree / PostgreSQL backends / this client) are printed too:
on a shared machine they move less than wall time. ``--json-out`` saves the figures as JSON.
``--py-spy`` records the server tree during each run (bench/out/pyspy-load-w<N>.txt; summarise
with pyspy_summary.py); py-spy itself takes some of the CPU, so the run's figures are lower.
``--py-spy gil`` samples only the thread holding the GIL: where Python's CPU goes (the disk
threads waiting in fsync are otherwise counted as busy).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the repository: ingest_server and testkit

from testkit.load import Mix, Payload, plan_feed, print_reports, run_load, \
    small_plan  # noqa: E402


def deadline_mix(mix: Mix, duration_s: float) -> Callable[[], Payload | None]:
    """The mix until ``duration_s`` after the first upload (not after the server's start-up)."""
    end: list[float] = []

    def feed() -> Payload | None:
        if not end:
            end.append(time.monotonic() + duration_s)
        return mix.next() if time.monotonic() < end[0] else None

    return feed


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of load per run")
    ap.add_argument("--concurrency", type=int, default=32, help="uploads in flight")
    ap.add_argument("--server-workers", default="1,2",
                    help="comma-separated --workers values, one run each")
    ap.add_argument("--ingest-workers", type=int, default=0,
                    help="ingest.workers per server process (0 = CPUs / server workers)")
    ap.add_argument("--large-every", type=int, default=40, help="every K-th upload is large")
    ap.add_argument("--zip-every", type=int, default=8, help="every K-th upload is a ZIP")
    ap.add_argument("--s3", action="store_true", help="store in a SeaweedFS S3 server")
    ap.add_argument("--dsn", default=os.environ.get("INGEST_TEST_DSN", ""),
                    help="PostgreSQL server for the run's database (default INGEST_TEST_DSN); "
                         "--workers > 1 needs one: each process would start its own embedded one")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", action="store_true", help="keep the run directories")
    ap.add_argument("--small", type=int, default=0,
                    help="N small CSV uploads made before the clock, instead of the timed mix")
    ap.add_argument("--json", type=int, default=0,
                    help="N JSON-row bodies (POST /api/ingestion/event), instead of the mix")
    ap.add_argument("--json-rows", type=int, default=1000, help="rows per JSON body")
    ap.add_argument("--json-out", type=Path, help="also save the figures to this JSON file")
    ap.add_argument("--py-spy", nargs="?", const="all", choices=("all", "gil"),
                    help="profile the server tree during each run with py-spy (gil: only the "
                         "thread holding the GIL)")
    args = ap.parse_args()
    workers = [int(x) for x in args.server_workers.split(",")]
    if not args.dsn and max(workers) > 1:
        ap.error("--server-workers > 1 needs --dsn or INGEST_TEST_DSN")

    s3 = None
    storage = None
    if args.s3:
        from testkit.s3_server import SeaweedS3  # noqa: PLC0415

        s3 = SeaweedS3(Path(tempfile.mkdtemp(prefix="load-s3-")))
        s3.start()
        storage = {"backend": "s3", "bucket": "load", "endpoint_url": s3.endpoint_url,
                   "region": s3.region, "access_key_id": s3.access_key_id,
                   "secret_access_key": s3.secret_access_key}
    reports = []
    try:
        for n in workers:
            ingest_workers = args.ingest_workers or max(1, (os.cpu_count() or 1) // n)
            (HERE / "out").mkdir(exist_ok=True)  # not in a fresh clone (.gitignore)
            run_dir = Path(tempfile.mkdtemp(prefix="load-", dir=HERE / "out"))
            if storage:
                storage = dict(storage, prefix=f"{run_dir.name}/")
            what = (f"{args.json} JSON bodies of {args.json_rows} rows" if args.json else
                    f"{args.small} small CSVs" if args.small else f"the mix for {args.duration:g} s")
            print(f"--workers {n}, ingest.workers {ingest_workers}: {args.concurrency} in flight, "
                  f"{what} ...", flush=True)
            if args.small or args.json:
                kind, count = ("json", args.json) if args.json else ("small", args.small)
                rows = (args.json_rows, args.json_rows) if args.json else (10, 1000)
                feed = plan_feed(small_plan(f"w{n}", count, args.seed, kind, rows))
            else:
                feed = deadline_mix(Mix(f"w{n}", args.seed, args.large_every, args.zip_every),
                                    args.duration)
            reports.append(await run_load(
                run_dir, args.dsn, feed,
                concurrency=args.concurrency, server_workers=n,
                ingest_workers=ingest_workers, storage=storage,
                profile=HERE / "out" / f"pyspy-load-w{n}.txt" if args.py_spy else None,
                profile_gil=args.py_spy == "gil"))
            if not args.keep:
                shutil.rmtree(run_dir, ignore_errors=True)
    finally:
        if s3 is not None:
            s3.stop()
            if not args.keep:
                shutil.rmtree(s3.data_dir, ignore_errors=True)
    print_reports(reports)
    if args.json_out:
        args.json_out.write_text(json.dumps([r.summary() for r in reports], indent=1))
    return 1 if any(r.problems or r.count_5xx for r in reports) else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
