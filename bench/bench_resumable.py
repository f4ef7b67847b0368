#!/usr/bin/env python3
"""Resumable (tus) upload vs one-shot upload of the same 1M-row file, measured in the same run.

usage: bench_resumable.py [--rows N] [--chunk-mb M] [--repeat R] [--dsn DSN] [--keep]

Starts a real server (testkit/server_process.py, fresh database on ``--dsn`` / ``INGEST_TEST_DSN``),
registers bench/data/bench_spec.json as event spec "bench", then for each repeat:
  one-shot   the file POSTed to /api/ingestion/new_programs (multipart, streamed from disk);
  resumable  the same file over tus: POST creation, PATCHes of ``--chunk-mb`` MiB read from disk,
             and ONE interruption: half-way, a PATCH whose connection is dropped part-way through
             its body; the client then asks HEAD for the offset and resumes from there. The clock
             runs from creation to the final PATCH's answer (the upload validated and published).
Both outcomes are checked (counts; the valid and error files against the input row by row) and
the server tree's peak RSS is sampled for each. Figures are printed, not asserted; the target is
resumable <= 1.5x one-shot.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
sys.path[:0] = [str(HERE), str(HERE.parent)]  # bench modules; ingest_server and testkit

from bench_data import csv_file  # noqa: E402
from bench_ingest import (TIMEOUT, check_objects, check_response, post_file,  # noqa: E402
                          register_spec)
from testkit.rss_sampler import TreeSampler  # noqa: E402
from testkit.server_process import CLIENT_ID, ServerConfig, free_port  # noqa: E402
from testkit.accounts import fresh_database  # noqa: E402

MB = 1e6
TUS = {"Tus-Resumable": "1.0.0"}
FIELDS = {"filename": "bench.csv", "ingestion_type": "event", "ingestion_name": "bench",
          "program_name": "bench"}


class Interrupted(Exception):
    """Raised inside a PATCH body: aiohttp drops the connection part-way through it."""


async def get_token(session: aiohttp.ClientSession, base: str, secret: str) -> str:
    async with session.get(f"{base}/api/ingestion/generatejwt", headers={
            "Authorization": aiohttp.encode_basic_auth(CLIENT_ID, secret),
            "Accept": "application/json"}) as r:
        return (await r.json())["token"]


async def tus_upload(session: aiohttp.ClientSession, base: str, path: Path, headers: dict,
                     chunk: int) -> tuple[int, dict, float, int]:
    """The whole tus exchange with one dropped connection; (status, record, seconds, resumed at)."""
    size = path.stat().st_size
    meta = ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in FIELDS.items())
    t0 = time.perf_counter()
    async with session.post(f"{base}/api/ingestion/resumable", headers=dict(
            headers, **TUS, **{"Upload-Length": str(size), "Upload-Metadata": meta})) as r:
        if r.status != 201:
            return r.status, await r.json(), 0.0, 0
        url = base + r.headers["Location"]
    offset, cut_done, resumed_at, answer = 0, False, 0, None
    with path.open("rb") as f:
        while offset < size:
            f.seek(offset)
            data = f.read(chunk)
            cut = not cut_done and offset + len(data) >= size // 2
            body = _cut_body(data) if cut else data
            h = dict(headers, **TUS, **{"Upload-Offset": str(offset),
                                         "Content-Type": "application/offset+octet-stream",
                                         "Content-Length": str(len(data))})
            try:
                async with session.patch(url, data=body, headers=h, timeout=TIMEOUT) as r:
                    if r.status != 204:
                        return r.status, await r.json(content_type=None), 0.0, 0
                    offset = int(r.headers["Upload-Offset"])
                    answer = r.headers
            except (aiohttp.ClientError, Interrupted):
                cut_done = True
                offset = await _offset_after_cut(session, url, headers)
                resumed_at = offset
    async with session.get(f"{base}/api/ingestion/uploads/{answer['Upload-Id']}",
                           headers=headers) as r:
        record = await r.json()
    return 200, record, time.perf_counter() - t0, resumed_at


async def _cut_body(data: bytes):
    yield data[:len(data) // 2]
    raise Interrupted("connection dropped")


async def _offset_after_cut(session, url: str, headers: dict) -> int:
    """HEAD until the server has settled the cut PATCH (its lease freed: 423 until then)."""
    deadline = time.monotonic() + 120
    while True:
        async with session.head(url, headers=dict(headers, **TUS)) as r:
            offset = int(r.headers["Upload-Offset"])
        h = dict(headers, **TUS, **{"Upload-Offset": str(offset),
                                     "Content-Type": "application/offset+octet-stream"})
        async with session.patch(url, data=b"", headers=h) as r:  # probes the lease
            if r.status == 204:
                return offset
        if time.monotonic() > deadline:
            raise RuntimeError("the cut PATCH never settled")
        await asyncio.sleep(0.05)


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--chunk-mb", type=float, default=8.0, help="PATCH size (MiB)")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--dsn", default=os.environ.get("INGEST_TEST_DSN", ""))
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    src = csv_file(OUT, args.rows)
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=OUT))
    secret = secrets.token_urlsafe(24)
    problems: list[str] = []
    lines = []
    try:
        async with fresh_database(args.dsn) as dsn:
            server = ServerConfig(run_dir, free_port(), dsn, 0, secret).process()
            try:
                await server.start_async()
                async with aiohttp.ClientSession() as session:
                    token = await get_token(session, server.url, secret)
                    await register_spec(session, server.url, token)
                    headers = {"Authorization": f"Bearer {token}"}
                    size = src.path.stat().st_size / MB
                    print(f"{src.path.name}: {size:.1f} MB, {src.rows:,} rows", flush=True)
                    for i in range(args.repeat):
                        with TreeSampler(server.pid) as s1:
                            status, body, one = await post_file(
                                session, f"{server.url}/api/ingestion/new_programs", src.path,
                                filename="bench.csv", fields={k: v for k, v in FIELDS.items()
                                                              if k != "filename"},
                                headers=headers)
                        problems += check_response(src, status, body)
                        problems += check_objects(src, body, server.cfg.storage_root, args.keep)
                        with TreeSampler(server.pid) as s2:
                            status, body, tus, resumed = await tus_upload(
                                session, server.url, src.path, headers,
                                int(args.chunk_mb * 1024 * 1024))
                        problems += check_response(src, status, body)
                        problems += check_objects(src, body, server.cfg.storage_root, args.keep)
                        lines.append(
                            f"run {i + 1}: one-shot {one:.2f} s (peak tree RSS "
                            f"{s1.peak.tree_bytes / MB:.0f} MB, server CPU "
                            f"{s1.peak.cpu_seconds():.1f} s); resumable with one dropped "
                            f"connection (resumed at {resumed / MB:.1f} MB) {tus:.2f} s (peak "
                            f"tree RSS {s2.peak.tree_bytes / MB:.0f} MB, server CPU "
                            f"{s2.peak.cpu_seconds():.1f} s); ratio {tus / one:.2f}x")
                        print(lines[-1], flush=True)
            finally:
                server.stop()
    finally:
        if not args.keep:
            shutil.rmtree(run_dir, ignore_errors=True)
    print("checks: " + ("OK (counts, valid and error files row by row, both uploads)"
                        if not problems else "FAILED"))
    for p in problems:
        print("  ", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
