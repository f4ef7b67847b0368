"""Load: 32 concurrent uploads of mixed sizes against a real server process lose nothing.

The harness is the load benchmark's (``testkit/load.py``, also run by ``bench/bench_load.py``):
a ``python -m ingest_server`` subprocess on a fresh database, a fixed plan of 26 small CSVs, 2 mid-size CSVs that go through
the validation worker pool and 4 two-member ZIPs, all launched at once. Every row carries a unique
id; afterwards each upload's output objects are read back and every id must be in exactly one of
them, the right one, and every written row must equal, cell by cell and in order, the row sent
(rejected rows also their physical ``_line``). Latency figures are printed, never asserted (CI machines are shared).
"""

from __future__ import annotations

import uuid

import pytest


from testkit.load import HEAD, ci_plan, plan_feed, run_load


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
