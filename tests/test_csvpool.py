"""ChunkPool (2 worker processes) and InlineRunner: ordered results equal to in-process ones,
back-pressure, cancellation and worker crashes."""

from __future__ import annotations

import asyncio
import csv
import io
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator

import pytest

import csv_checkers
from ingest_server.csvstream import (
    CheckerRecipe,
    Chunk,
    ChunkPool,
    ChunkResult,
    InlineRunner,
    RowChunker,
    open_csv_stream,
    process_chunk,
    register_checker_factory,
)
from ingest_server.errors import IngestError


@pytest.fixture(scope="module")
def pool() -> Iterator[ChunkPool]:
    pool = ChunkPool(2, max_in_flight=3)
    yield pool
    asyncio.run(pool.close())


def make_csv(n: int) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["id", "name", "qty"])
    for i in range(n):
        qty = "many" if i % 7 == 3 else str(i % 50)
        name = f'line {i}\n"quoted", é' if i % 5 == 0 else f"n{i}"
        w.writerow([i, name, qty])
    return buf.getvalue().encode()


DATA = make_csv(3000)


def chunks_of(data: bytes, chunk_size: int = 4096) -> tuple[list[str], list[Chunk]]:
    chunker = RowChunker(chunk_size=chunk_size, max_line_bytes=1 << 16)
    chunks = chunker.feed(data) + chunker.finish()
    return chunker.header, chunks


def qty_spec(header: list[str], **kw: object) -> CheckerRecipe:
    return CheckerRecipe(csv_checkers.int_checker, (header, ("qty",)), kw)


async def collect(results: AsyncIterator[ChunkResult]) -> list[ChunkResult]:
    return [r async for r in results]


async def test_pool_results_are_ordered_and_equal_inline(pool: ChunkPool) -> None:
    header, chunks = chunks_of(DATA)
    assert len(chunks) > 10
    spec = qty_spec(header)
    register_checker_factory("pool-eq", spec)
    expected = [process_chunk(c, "pool-eq") for c in chunks]
    got = await collect(pool.map_ordered(chunks, "pool-eq", spec))
    assert got == expected
    assert [r.seq for r in got] == list(range(len(chunks)))
    assert sum(r.rows for r in got) == 3000
    assert sum(r.invalid_rows for r in got) == len(range(3, 3000, 7))
    inline = await collect(InlineRunner(thread_above_bytes=2048).map_ordered(
        chunks, "pool-eq", spec))
    assert inline == expected


async def test_new_spec_on_a_running_pool(pool: ChunkPool) -> None:
    header, chunks = chunks_of(DATA)
    first = await collect(pool.map_ordered(chunks, "v1", qty_spec(header)))
    second = await collect(pool.map_ordered(chunks, "v2", qty_spec(header, upper="name")))
    assert sum(r.valid_rows for r in first) == sum(r.valid_rows for r in second)
    assert b"N1,1,yes\r\n" in second[0].valid_csv and b"n1,1\r\n" in first[0].valid_csv


async def test_async_producer_gets_back_pressure(pool: ChunkPool) -> None:
    header, chunks = chunks_of(DATA)
    pulled = 0

    async def producer() -> AsyncIterator[Chunk]:
        nonlocal pulled
        for chunk in chunks:
            pulled += 1
            yield chunk

    consumed = 0
    async for _ in pool.map_ordered(producer(), "bp", qty_spec(header)):
        consumed += 1
        assert pulled <= consumed + pool.max_in_flight
    assert consumed == len(chunks)


async def test_cancelling_the_consumer_task(pool: ChunkPool) -> None:
    header, chunks = chunks_of(DATA)
    started = asyncio.Event()

    async def consume() -> None:
        async for _ in pool.map_ordered(chunks * 20, "cancel", qty_spec(header)):
            started.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(started.wait(), timeout=60)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    got = await collect(pool.map_ordered(chunks[:2], "cancel", qty_spec(header)))
    assert [r.seq for r in got] == [0, 1]


async def test_stopping_early_cancels_and_pool_stays_usable(pool: ChunkPool) -> None:
    header, chunks = chunks_of(DATA)
    producer_closed = asyncio.Event()

    async def producer() -> AsyncIterator[Chunk]:
        try:
            for chunk in chunks:
                yield chunk
        finally:
            producer_closed.set()

    results = pool.map_ordered(producer(), "stop", qty_spec(header))
    async for result in results:
        assert result.seq == 0
        break
    await results.aclose()
    assert producer_closed.is_set()  # the upstream reader is stopped too
    again = await collect(pool.map_ordered(chunks[:3], "stop", qty_spec(header)))
    assert [r.seq for r in again] == [0, 1, 2]


async def test_worker_crash_is_a_clean_error_then_pool_recovers(pool: ChunkPool) -> None:
    data = DATA + b"9999,CRASH,1\n"
    header, chunks = chunks_of(data)
    with pytest.raises(IngestError) as info:
        await asyncio.wait_for(collect(pool.map_ordered(
            chunks, "crash", qty_spec(header, crash_on="CRASH"))), timeout=120)
    assert info.value.code == "worker_crashed" and info.value.status == 500
    header, chunks = chunks_of(DATA)
    got = await collect(pool.map_ordered(chunks, "after-crash", qty_spec(header)))
    assert sum(r.rows for r in got) == 3000


async def test_open_csv_stream_end_to_end(pool: ChunkPool) -> None:
    async def pieces() -> AsyncIterator[bytes]:
        for i in range(0, len(DATA), 1000):
            yield DATA[i:i + 1000]

    stream = await open_csv_stream(pieces(), chunk_size=8192, max_line_bytes=1 << 16)
    assert stream.header == ["id", "name", "qty"] and stream.header_lines == 1
    results = await collect(pool.map_ordered(stream, "e2e", qty_spec(stream.header)))
    errors = list(csv.reader(io.StringIO(b"".join(r.errors_csv for r in results).decode(),
                                         newline="")))
    # every 7th row (i % 7 == 3) is rejected; rows with i % 5 == 0 span 2 lines
    lines = {int(row[0]): int(row[-2]) for row in errors}
    assert lines[3] == 2 + 3 + 1  # header, rows 0..2 (row 0 has two lines)
    assert all(row[-1] == "qty: type_error: must be an integer" for row in errors)
    assert sum(r.rows for r in results) == 3000


async def test_chunks_larger_than_a_pipe_go_both_ways(pool: ChunkPool) -> None:
    """A 3 MiB chunk and its 3 MiB answer pass pipes of 1 MiB at most (written in parts as
    the other side reads)."""
    data = b"id,name,qty\n" + b"".join(b"%d,%s,%d\n" % (i, b"x" * 80, i % 50)
                                       for i in range(36_000))
    chunker = RowChunker(chunk_size=4 << 20, max_line_bytes=4 << 20)
    chunks = chunker.feed(data) + chunker.finish()
    assert len(chunks) == 1 and len(chunks[0].data) > 3 << 20
    got = await collect(pool.map_ordered(chunks, "big", qty_spec(chunker.header)))
    assert got[0].valid_rows == 36_000
    assert got[0].valid_csv == data.split(b"\n", 1)[1].replace(b"\n", b"\r\n")


def test_workers_need_no_resource_tracker(tmp_path) -> None:
    """The workers are plain child processes: no multiprocessing resource tracker (a whole
    Python process, ~13 MB) starts beside the server."""
    script = tmp_path / "pool.py"
    script.write_text(
        "import asyncio, sys\n"
        "from multiprocessing import resource_tracker\n"
        "from ingest_server.csvstream import ChunkPool\n"
        "async def main():\n"
        "    pool = ChunkPool(2)\n"
        "    await pool.start()\n"
        "    await pool.close()\n"
        "asyncio.run(main())\n"
        "print(resource_tracker._resource_tracker._fd)\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=120, check=True)
    assert out.stdout.strip() == "None", out


def test_workers_run_the_installed_code_not_the_working_directorys(tmp_path) -> None:
    """A folder named ``ingest_server`` in the directory the server runs in is not the code its
    workers run (``python -m`` would put the working directory first on their path)."""
    decoy = tmp_path / "cwd" / "ingest_server" / "csvstream"
    decoy.mkdir(parents=True)
    (decoy.parent / "__init__.py").write_text("")
    (decoy / "__init__.py").write_text("")
    marker = tmp_path / "decoy-ran"
    (decoy / "workermain.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    script = tmp_path / "pool.py"
    script.write_text(
        "import asyncio\n"
        "from ingest_server.csvstream import ChunkPool\n"
        "async def main():\n"
        "    pool = ChunkPool(1)\n"
        "    await asyncio.wait_for(pool.start(), 60)\n"
        "    await pool.close()\n"
        "asyncio.run(main())\n"
        "print('started')\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=120, cwd=decoy.parent.parent)
    assert not marker.exists(), out
    assert out.returncode == 0 and out.stdout.strip() == "started", out


async def test_workers_collect_cycles_between_jobs_not_during_them(pool: ChunkPool) -> None:
    """The cyclic collector does not run while a worker checks a chunk (it walked the chunk's
    rows again and again), and the cycles a job made are gone before its worker's next job."""
    data = b"id\n" + b"".join(b"%d\n" % i for i in range(2000))
    chunker = RowChunker(chunk_size=1000, max_line_bytes=1 << 10)
    chunks = chunker.feed(data) + chunker.finish()
    assert len(chunks) > 4
    results = await collect(pool.map_ordered(chunks, "gc-witness",
                                             CheckerRecipe(csv_checkers.gc_witness,
                                                           (chunker.header,))))
    for r in results:
        messages = [e["message"] for e in r.errors_sample]
        assert messages == [f"enabled=False alive={i}" for i in range(len(messages))], messages
