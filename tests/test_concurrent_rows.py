"""No row corrupted under concurrency: many uploads at once through a transforming plugin.

``plugins/school_attendance.py`` rewrites dates and appends ``teacher_attendance_pct``. Row
checkers are shared by every upload of a process (one per spec version and header), and the
in-process runner checks big chunks in threads: a checker that kept per-row state between
``check`` and ``transform`` wrote rows of one upload untransformed (4 cells under a 5-column
header). Every written row of every upload is compared with what its input must give, on the
in-process path (chunks in threads) and on the worker-pool path.
"""

from __future__ import annotations

import asyncio
import sys

import pytest

from ingest_helpers import read_object, upload
from plugin_helpers import SCHOOL, SCHOOL_FIELDS, start

SPEC = {"cerberus": {
    "date": {"type": "date", "coerce": "dmy_date", "required": True},
    "school_id": {"type": "string", "required": True, "empty": False},
    "teachers_marked_present": {"type": "integer", "coerce": "integer", "required": True},
    "total_teachers": {"type": "integer", "coerce": "integer", "required": True}}}
HEADER = ["date", "school_id", "teachers_marked_present", "total_teachers"]
UPLOADS = 6
ROWS = 24_000


def make_file(n: int) -> tuple[bytes, list[list[str]], list[list[str]]]:
    """Upload ``n``: its bytes, the valid rows it must write and its rejected rows."""
    lines, valid, rejected = [",".join(HEADER)], [], []
    for i in range(ROWS):
        day, total = 1 + i % 28, 10 + i % 7
        present = total + 1 if i % 997 == 5 else (i * 7) % (total + 1)
        cells = [f"{day:02d}-03-2024", f"U{n}S{i}", str(present), str(total)]
        lines.append(",".join(cells))
        if present > total:
            rejected.append([*cells, str(i + 2)])
        else:
            valid.append([f"2024-03-{day:02d}", f"U{n}S{i}", str(present), str(total),
                          f"{100 * present / total:.1f}"])
    return ("\n".join(lines) + "\n").encode(), valid, rejected


@pytest.mark.parametrize("path", ["in-process", "pool"])
async def test_concurrent_transforming_uploads_write_every_row_right(aiohttp_client, tmp_path,
                                                                     clean_db, path):
    ingest = {"workers": 1} if path == "in-process" else \
        {"workers": 2, "parallel_min_bytes": 0, "chunk_bytes": 64 * 1024}
    client, headers = await start(aiohttp_client, tmp_path, clean_db, copy=[SCHOOL],
                                  ingest=ingest)
    resp = await client.put("/api/specs/event/teacher_attendance", headers=headers, json=SPEC)
    assert resp.status == 201, await resp.text()
    files = [make_file(n) for n in range(UPLOADS)]
    if path == "in-process":  # each file is checked in several chunks, each in a thread
        assert all(len(f[0]) > 3 * 64 * 1024 for f in files)

    # Switch threads often, so that rows of different uploads interleave inside the checker.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        answers = await asyncio.gather(*(upload(client, headers, content, fields=SCHOOL_FIELDS)
                                         for content, _, _ in files))
    finally:
        sys.setswitchinterval(interval)
    for (status, body), (_, valid, rejected) in zip(answers, files):
        assert status == 200, body
        assert (body["valid_rows"], body["invalid_rows"]) == (len(valid), len(rejected))
        written = await read_object(client, body["objects"]["valid"])
        assert written[0] == [*HEADER, "teacher_attendance_pct"]
        bad = [(i, row) for i, (row, want) in enumerate(zip(written[1:], valid)) if row != want]
        assert bad == [] and len(written) == len(valid) + 1, bad[:5]
        errors = await read_object(client, body["objects"]["errors"])
        assert errors[0] == [*HEADER, "_line", "_errors"]
        assert [r[:-1] for r in errors[1:]] == rejected
        assert all("present_exceeds_total" in r[-1] for r in errors[1:])
