"""Load: 32 concurrent uploads of mixed sizes against a real server process lose nothing.

The harness is the load benchmark's (``bench/bench_load.py``): a ``python -m ingest_server``
subprocess on a fresh database, a fixed plan of 26 small CSVs, 2 mid-size CSVs that go through
the validation worker pool and 4 two-member ZIPs, all launched at once. Every row carries a unique
id; afterwards each upload's output objects are read back and every id must be in exactly one of
them, the right one, and every written row must equal, cell by cell and in order, the row sent
(rejected rows also their physical ``_line``). Latency figures are printed, never asserted (CI machines are shared).
"""

from __future__ import annotations

import multiprocessing
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from bench_load import HEAD, ci_plan, plan_feed, run_load  # noqa: E402

from ingest_server.auth import load_or_create_secret  # noqa: E402

RSS_LIMIT_MB = 400


@pytest.mark.parametrize("server_workers", [1, 2])
async def test_concurrent_mixed_uploads_lose_nothing(pg_dsn, tmp_path, server_workers):
    plan = ci_plan(f"t{uuid.uuid4().hex[:6]}")
    expected_rows = sum(p.rows for p in plan)
    report = await run_load(
        tmp_path, pg_dsn, plan_feed(plan), concurrency=len(plan),
        # The server's own default split of the cores: a pool of 2 validation workers in one
        # process, or 2 processes checking in-process.
        server_workers=server_workers, ingest_workers=2 // server_workers,
        # Small thresholds so the mid-size files are cut into several chunks for the pool.
        ingest={"parallel_min_bytes": 256 * 1024, "chunk_bytes": 64 * 1024})
    print(f"\n{HEAD}\n{report.row()}")

    assert len(report.outcomes) == 32
    assert sum(o.payload.kind == "zip" for o in report.outcomes) == 4
    assert report.count_5xx == 0, report.statuses()
    assert dict(report.statuses()) == {200: 32}, [o.error or o.body for o in report.outcomes
                                                  if o.status != 200][:3]
    # Row by row: nothing lost, duplicated, misplaced or altered; no stray objects, staged leftovers,
    # unfinished upload records, or server processes outliving the stop.
    assert report.problems == []
    assert sum(o.body["total_rows"] for o in report.outcomes) == expected_rows
    assert report.rss_peak_mb < RSS_LIMIT_MB


def _secret_of(path: str, barrier, results) -> None:
    barrier.wait()
    try:
        results.put(load_or_create_secret(Path(path)))
    except Exception as e:  # noqa: BLE001 - the failure is the finding, reported to the parent
        results.put(f"{type(e).__name__}: {e}")


def test_workers_starting_together_share_one_generated_secret(tmp_path):
    """--workers N processes start at once with no configured jwt_secret: each must end with the
    same, non-empty key (it was read half-written, or creation raised FileExistsError)."""
    ctx = multiprocessing.get_context("fork")  # cheap, and the race needs simultaneous starts
    for attempt in range(25):
        path = tmp_path / f"state{attempt}" / "jwt_secret"
        barrier, results = ctx.Barrier(3), ctx.Queue()
        procs = [ctx.Process(target=_secret_of, args=(str(path), barrier, results))
                 for _ in range(3)]
        for p in procs:
            p.start()
        got = [results.get(timeout=30) for _ in procs]
        for p in procs:
            p.join(30)
        assert len(set(got)) == 1 and len(got[0]) >= 64, got
        assert path.read_text() == got[0]
        assert [p.name for p in path.parent.iterdir()] == ["jwt_secret"]  # no temp file left
