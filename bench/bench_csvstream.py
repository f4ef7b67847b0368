#!/usr/bin/env python3
"""Throughput of the CSV engine alone: file -> RowChunker -> ChunkPool -> output files.

usage: bench_csvstream.py [CSV] [--workers N] [--checker trivial|numbers] [--piece BYTES]
                          [--repeat N]
``--repeat 17`` streams the file's rows 17 times (header once): a ~1 GB upload without a
~1 GB file on disk, to show memory stays flat.
Default CSV is bench/out/bench_1m.csv, generated on first use with
bench/data/gen_bench_csv.py (1M rows, 59.6 MB). Figures are printed, not asserted.
The file is read in network-sized pieces to imitate an upload.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from ingest_server.csvstream import (  # noqa: E402
    CheckerRecipe,
    ChunkPool,
    header_rows,
    open_csv_stream,
)
# In a module of their own: a worker process imports them by name (it has this sys.path).
from csvstream_checkers import NumbersChecker, TrivialChecker  # noqa: E402

GEN = Path(__file__).resolve().parent / "data" / "gen_bench_csv.py"


async def pieces(path: Path, size: int, repeat: int = 1):
    for i in range(repeat):
        with path.open("rb") as f:
            if i:
                f.readline()  # the header only once
            while data := f.read(size):
                yield data


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("csv", nargs="?", default=str(HERE / "out" / "bench_1m.csv"))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--checker", choices=["trivial", "numbers"], default="trivial")
    ap.add_argument("--piece", type=int, default=256 << 10)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    path = Path(args.csv)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(GEN), str(path), "1000000"], check=True)
    size = path.stat().st_size * args.repeat
    out_dir = HERE / "out"
    pool = ChunkPool(args.workers)
    t0 = time.perf_counter()
    await pool.start()
    t1 = time.perf_counter()
    stream = await open_csv_stream(pieces(path, args.piece, args.repeat))
    factory = {"trivial": TrivialChecker, "numbers": NumbersChecker}[args.checker]
    spec = CheckerRecipe(factory, (stream.header,))
    totals = [0, 0, 0]
    valid_head, error_head = header_rows(stream.header, stream.header)
    with (out_dir / "bench.valid.csv").open("wb") as valid, \
         (out_dir / "bench.errors.csv").open("wb") as errors:
        valid.write(valid_head)
        errors.write(error_head)
        async for result in pool.map_ordered(stream, "bench", spec):
            totals[0] += result.rows
            totals[1] += result.valid_rows
            totals[2] += result.invalid_rows
            valid.write(result.valid_csv)
            errors.write(result.errors_csv)
    t2 = time.perf_counter()
    await pool.close()
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    secs = t2 - t1
    print(f"file {path.name} x{args.repeat}: {size / 1e6:.1f} MB, checker {args.checker}, "
          f"workers {args.workers}, cpus {os.cpu_count()}")
    print(f"rows {totals[0]:,} valid {totals[1]:,} invalid {totals[2]:,}")
    print(f"pool start {t1 - t0:.2f} s; stream {secs:.2f} s: {totals[0] / secs:,.0f} rows/s, "
          f"{size / secs / 1e6:.1f} MB/s")
    print(f"peak RSS parent {me.ru_maxrss / 1024:.1f} MB, largest child "
          f"{kids.ru_maxrss / 1024:.1f} MB; CPU parent {me.ru_utime + me.ru_stime:.2f} s, "
          f"children {kids.ru_utime + kids.ru_stime:.2f} s")


if __name__ == "__main__":
    asyncio.run(main())
