"""What the referential check's key index costs a validation worker, against Python strings.

Builds a dimension of N keys (default 2,000,000) in the processing database, the key files the
upload check uses (``processing/keys.py``), then, in fresh processes, measures the memory of
(a) mapping the files and looking up 1,000,000 keys, (b) a Python ``set`` of the same keys, and
the lookup speed of both. Memory from /proc/self/smaps_rollup: ``Private`` is what one more
worker costs; ``Shared`` (the mapped files) is paid once, in the page cache.

    INGEST_TEST_DSN=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/bench_processing_keys.py [N]
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

from ingest_server.processing.keycache import key_files

LOOKUPS = 1_000_000


def memory() -> dict[str, int]:
    out = {}
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if parts[0] in ("Rss:", "Pss:", "Private_Clean:", "Private_Dirty:",
                            "Shared_Clean:", "Shared_Dirty:"):
                out[parts[0].rstrip(":")] = int(parts[1]) * 1024
    out["Private"] = out.pop("Private_Clean") + out.pop("Private_Dirty")
    out["Shared"] = out.pop("Shared_Clean") + out.pop("Shared_Dirty")
    return out


def child(mode: str, base: str, n: int) -> None:
    """Runs in a fresh interpreter: memory before/after, lookups per second."""
    from ingest_server.processing.keys import KeyFiles, KeyIndex
    rng = random.Random(1)
    probes = [f"S{rng.randrange(n * 2):08d}" for _ in range(LOOKUPS)]  # half unknown
    before = memory()
    t0 = time.perf_counter()
    if mode == "index":
        index = KeyIndex(KeyFiles(base=base, dimension="bench", column="k", count=n))
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        found = sum(index.contains(p, "exact") for p in probes)
    else:
        keys = {f"S{i:08d}" for i in range(n)}
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        found = sum(p in keys for p in probes)
    look_s = time.perf_counter() - t0
    after = memory()
    print(json.dumps({"mode": mode, "found": found, "load_s": round(load_s, 3),
                      "lookups_per_s": round(LOOKUPS / look_s),
                      "private_mb": round((after["Private"] - before["Private"]) / 2**20, 1),
                      "shared_mb": round((after["Shared"] - before["Shared"]) / 2**20, 1),
                      "rss_mb": round((after["Rss"] - before["Rss"]) / 2**20, 1)}))


async def build(dsn: str, n: int, folder: Path) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE SCHEMA IF NOT EXISTS dimensions")
        await conn.execute("DROP TABLE IF EXISTS dimensions.bench_keys")
        await conn.execute("CREATE TABLE dimensions.bench_keys (id SERIAL PRIMARY KEY, "
                           "k VARCHAR UNIQUE)")
        await conn.execute("INSERT INTO dimensions.bench_keys (k) SELECT 'S' || "
                           "lpad(g::text, 8, '0') FROM generate_series(0, $1 - 1) g", n)
        t0 = time.perf_counter()
        files = await key_files(conn, folder, "bench_keys", "k", "bench")
        print(json.dumps({"build_s": round(time.perf_counter() - t0, 2), "keys": files.count,
                          "files_mb": round(sum(os.path.getsize(files.base + s) for s in (
                              ".exact", ".exact.ref", ".trim", ".trim.ref", ".fold", ".fold.ref",
                              ".off", ".blob")) / 2**20, 1)}))
        return files.base
    finally:
        await conn.execute("DROP TABLE IF EXISTS dimensions.bench_keys")
        await conn.close()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000
    dsn = os.environ.get("INGEST_TEST_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
    with tempfile.TemporaryDirectory() as tmp:
        base = asyncio.run(build(dsn, n, Path(tmp)))
        for mode in ("index", "set"):
            subprocess.run([sys.executable, __file__, "--child", mode, base, str(n)], check=True)


if __name__ == "__main__":
    main()
