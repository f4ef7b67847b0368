#!/usr/bin/env python3
"""Replicas under load, longer than the CI suite (tests/test_replicas.py).

usage: bench_replicas.py [--duration S] [--concurrency N] [--replicas N] [--kill-every S]
                         [--dsn DSN] [--seed N]

Starts N ``ingest-server`` processes (own host names) on one PostgreSQL (a fresh database on
``--dsn`` / ``INGEST_TEST_DSN``, dropped after) and one SeaweedFS, behind a real nginx, and keeps
``--concurrency`` uploads in flight for ``--duration`` seconds, while it restarts the replicas
one after another with SIGTERM (a rolling restart, over and over) and, every ``--kill-every``
seconds, SIGKILLs one instead. Each upload carries an Idempotency-Key; an upload that fails
(only the killed replica's may) is retried with its key until it lands. At the end every upload's
written rows are read back and compared with its input; printed: uploads, rows, failures before
retry (by status), retries answered 409, restarts and kills, p50/p99 latency.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the repository: ingest_server and testkit

import aiohttp  # noqa: E402

from testkit.accounts import fresh_database  # noqa: E402
from ingest_server.config import StorageConfig  # noqa: E402
from ingest_server.storage import make_storage  # noqa: E402
from testkit.replica_cluster import SPEC, Cluster, check_landed, new_case, send, token  # noqa: E402
from testkit.s3_server import SeaweedS3  # noqa: E402


async def run(args, cluster: Cluster) -> None:
    rng = random.Random(args.seed)
    stop = asyncio.Event()
    done, latencies, first_failures, conflicts = [], [], {}, [0]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as s:
        tok = await token(s, cluster.url)
        async with s.post(cluster.url + "/api/spec/event", json=SPEC,
                          headers={"Authorization": f"Bearer {tok}"}) as r:
            assert r.status in (200, 201), await r.text()

        async def client() -> None:
            while not stop.is_set():
                case = new_case(rng.choice([10, 500, 3000, 20000]), bad_every=rng.choice([0, 9]))
                key = uuid.uuid4().hex
                began = time.monotonic()
                while True:
                    try:
                        status, body = await send(s, cluster.url, tok, case, key=key, pieces=8,
                                                  pause_s=0.02)
                    except aiohttp.ClientError as e:
                        status, body = type(e).__name__, {}
                    if status == 200:
                        break
                    if status == 409:
                        conflicts[0] += 1
                    else:
                        first_failures[status] = first_failures.get(status, 0) + 1
                    await asyncio.sleep(0.5)  # a client's retry back-off
                latencies.append(time.monotonic() - began)
                done.append((case, body))

        async def operator() -> None:
            restarts = kills = 0
            last_kill = time.monotonic()
            while not stop.is_set():
                for replica in cluster.replicas:
                    if stop.is_set():
                        break
                    if args.kill_every and time.monotonic() - last_kill > args.kill_every:
                        replica.kill()
                        kills, last_kill = kills + 1, time.monotonic()
                    else:
                        replica.terminate()
                        await asyncio.to_thread(replica.wait, 60)
                        restarts += 1
                    await asyncio.to_thread(replica.start)
                    await asyncio.sleep(2)  # let the load settle on the restarted replica
            print(f"restarts (SIGTERM) {restarts}, kills (SIGKILL) {kills}")

        clients = [asyncio.create_task(client()) for _ in range(args.concurrency)]
        ops = asyncio.create_task(operator())
        await asyncio.sleep(args.duration)
        stop.set()
        await asyncio.gather(*clients, ops)
    storage = make_storage(StorageConfig(**cluster.storage))
    await storage.start()
    try:
        for case, body in done:
            await check_landed(storage, case, body)
    finally:
        await storage.close()
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [0] * 99
    print(f"uploads {len(done)} ({sum(c.rows for c, _ in done)} rows), every row checked; "
          f"failed before a retry: {first_failures or 'none'}; retries answered 409: "
          f"{conflicts[0]}; latency p50 {q[49]:.2f} s, p99 {q[98]:.2f} s")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--duration", type=float, default=60)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--replicas", type=int, default=3)
    p.add_argument("--kill-every", type=float, default=20)
    p.add_argument("--dsn", default=os.environ.get("INGEST_TEST_DSN",
                                                   "postgresql://postgres@127.0.0.1:5432/postgres"))
    p.add_argument("--seed", type=int, default=16)
    args = p.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-replicas-"))
    s3 = SeaweedS3(root / "s3")
    s3.start()
    try:
        with fresh_database(args.dsn, "bench_replicas") as dsn:
            storage = {"backend": "s3", "bucket": "bench", "endpoint_url": s3.endpoint_url,
                       "region": s3.region, "access_key_id": s3.access_key_id,
                       "secret_access_key": s3.secret_access_key}
            cluster = Cluster(root, dsn, storage)
            try:
                cluster.start(args.replicas)
                asyncio.run(run(args, cluster))
            finally:
                cluster.stop()
    finally:
        s3.stop()


if __name__ == "__main__":
    main()
