"""ingest_server.ziparchive: every hostile archive is built here, with zipfile or raw bytes."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import io
import stat
import struct
import threading
import time
import tracemalloc
import warnings
import zipfile
import zlib

import pytest
from ingest_helpers import build_zip as build

from ingest_server.errors import ZipRejected
from ingest_server.ziparchive import (
    ByteBudget, ZipLimits, ZipMember, aiter_member, inspect_zip, iter_member,
)

LIMITS = ZipLimits(max_entries=20, max_uncompressed_bytes=64 << 20, max_ratio=100)
CSV_A = b"".join(b"%d,school_%d,%d\n" % (i, i % 97, i * 7919 % 1000) for i in range(30_000))
CSV_B = b"id,name\n1,alpha\n2,beta\n"


# --- building archives -------------------------------------------------------------------



def save(tmp_path, data: bytes, name="upload.zip"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def headers(data: bytes):
    """Offsets of every (local header, central header) pair, in directory order."""
    eocd = data.rindex(b"PK\x05\x06")
    count, _, cd_offset = struct.unpack_from("<HLL", data, eocd + 10)
    pos, pairs = cd_offset, []
    for _ in range(count):
        assert data[pos:pos + 4] == b"PK\x01\x02"
        n, m, k = struct.unpack_from("<3H", data, pos + 28)
        local = struct.unpack_from("<L", data, pos + 42)[0]
        pairs.append((local, pos))
        pos += 46 + n + m + k
    return pairs


def patch(data: bytes, *, index=0, flags=0, file_size=None, crc=None, local=True,
          central=True) -> bytes:
    """Lie in the headers of member ``index``: OR ``flags``, replace the size or the CRC."""
    out = bytearray(data)
    lh, ch = headers(data)[index]
    # Field offsets: local header flags 6, crc 14, size 22; central header flags 8, crc 16, size 24.
    for on, base, flag_at, crc_at, size_at in ((local, lh, 6, 14, 22), (central, ch, 8, 16, 24)):
        if not on:
            continue
        struct.pack_into("<H", out, base + flag_at,
                         struct.unpack_from("<H", out, base + flag_at)[0] | flags)
        if crc is not None:
            struct.pack_into("<L", out, base + crc_at, crc)
        if file_size is not None:
            struct.pack_into("<L", out, base + size_at, file_size)
    return bytes(out)


def rejected(code, status=400):
    """pytest.raises for a ZipRejected with ``code``; checks the status on exit."""
    @contextlib.contextmanager
    def check():
        with pytest.raises(ZipRejected) as info:
            yield info
        assert info.value.code == code, info.value.message
        assert info.value.status == status
    return check()


def read_all(path, member, limits=LIMITS, **kw) -> bytes:
    return b"".join(iter_member(path, member, limits, **kw))


# --- good archives -----------------------------------------------------------------------

def test_good_archive_lists_members_and_skips_noise(tmp_path):
    readme = zipfile.ZipInfo("README.txt")
    path = save(tmp_path, build([
        ("data/", b""), ("data/pgi_all-dashboard.csv", CSV_A), ("diksha_etb.v2.csv", CSV_B),
        (readme, b"hello"), ("__MACOSX/data/._pgi_all-dashboard.csv", b"\0\5\x16\7"),
        ("data/.DS_Store", b"\0\0\0\1Bud1"), ("._diksha_etb.v2.csv", b"\0\5\x16\7"),
    ]))
    members = inspect_zip(path, LIMITS)
    assert [(m.name, m.stem, m.kind, m.file_size) for m in members] == [
        ("data/pgi_all-dashboard.csv", "pgi_all-dashboard", "csv", len(CSV_A)),
        ("diksha_etb.v2.csv", "diksha_etb.v2", "csv", len(CSV_B)),
        ("README.txt", "README", "other", 5),
    ]
    assert members[0].compressed_size < len(CSV_A) // 3
    budget = ByteBudget(LIMITS.max_uncompressed_bytes)
    chunks = list(iter_member(path, members[0], LIMITS, chunk_size=4096, budget=budget))
    assert b"".join(chunks) == CSV_A
    assert max(map(len, chunks)) == 4096
    assert read_all(path, members[2], budget=budget) == b"hello"
    assert budget.used == len(CSV_A) + 5


async def test_aiter_member_streams_identical_bytes(tmp_path):
    path = save(tmp_path, build([("a.csv", CSV_A), ("b.csv", CSV_B), ("README.txt", b"x")]))
    members = inspect_zip(path, LIMITS)
    budget = ByteBudget(LIMITS.max_uncompressed_bytes)
    got = {}
    for member in members:
        got[member.name] = b"".join([c async for c in aiter_member(
            path, member, LIMITS, budget=budget, chunk_size=8192, queue_size=2)])
    assert got == {"a.csv": CSV_A, "b.csv": CSV_B, "README.txt": b"x"}
    assert budget.used == len(CSV_A) + len(CSV_B) + 1


def test_cqube_convention_zip_named_like_its_csv(tmp_path):
    path = save(tmp_path, build([("pgi_all-dashboard.csv", CSV_B)]), "pgi_all-dashboard.zip")
    [member] = inspect_zip(path, LIMITS)
    assert member.stem == path.stem == "pgi_all-dashboard" and member.kind == "csv"
    assert read_all(path, member) == CSV_B


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_BZIP2])
def test_stored_and_bzip2_members(tmp_path, method):
    path = save(tmp_path, build([("a.csv", CSV_A), ("empty.csv", b"")], method))
    a, empty = inspect_zip(path, LIMITS)
    assert read_all(path, a, chunk_size=10_000) == CSV_A
    assert read_all(path, empty) == b""


def test_lzma_is_refused_as_unsupported(tmp_path):
    path = save(tmp_path, build([("a.csv", CSV_B)], zipfile.ZIP_LZMA))
    with rejected("zip_unsupported_compression"):
        inspect_zip(path, LIMITS)


# --- not a zip, truncated, corrupt, empty --------------------------------------------------

@pytest.mark.parametrize("content", [CSV_B, b"", b"PK", b"junk" + build([("a.csv", CSV_B)])])
def test_not_a_zip_whatever_the_name(tmp_path, content):
    with rejected("not_a_zip"):
        inspect_zip(save(tmp_path, content, "data.zip"), LIMITS)


@pytest.mark.parametrize("keep", [0.5, 0.95, -1])
def test_truncated_zip(tmp_path, keep):
    data = build([("a.csv", CSV_A), ("b.csv", CSV_B)])
    cut = len(data) - 1 if keep == -1 else int(len(data) * keep)
    with rejected("zip_truncated"):
        inspect_zip(save(tmp_path, data[:cut]), LIMITS)


def test_corrupt_compressed_data(tmp_path):
    data = bytearray(build([("a.csv", CSV_A)]))
    data[100:140] = b"\xff" * 40  # inside the deflate stream of the only member
    path = save(tmp_path, bytes(data))
    [member] = inspect_zip(path, LIMITS)
    with rejected("zip_corrupt"):
        read_all(path, member)


def test_crc_mismatch_is_reported_at_the_end(tmp_path):
    data = build([("a.csv", CSV_B)])
    path = save(tmp_path, patch(data, crc=zlib.crc32(CSV_B) ^ 1))
    [member] = inspect_zip(path, LIMITS)
    with rejected("zip_corrupt"):
        read_all(path, member)


@pytest.mark.parametrize("entries", [
    [], [("README.txt", b"no csv")], [("data/", b""), ("__MACOSX/._a.csv", b"x")],
])
def test_zip_without_csv_is_empty(tmp_path, entries):
    with rejected("zip_empty"):
        inspect_zip(save(tmp_path, build(entries)), LIMITS)


# --- sizes, entries, bombs -----------------------------------------------------------------

def test_too_many_entries(tmp_path):
    path = save(tmp_path, build([("f%d.csv" % i, b"x") for i in range(21)]))
    with rejected("zip_too_many_entries"):
        inspect_zip(path, LIMITS)


def test_too_many_entries_when_the_end_record_lies(tmp_path):
    data = bytearray(build([("f%d.csv" % i, b"x") for i in range(21)]))
    eocd = data.rindex(b"PK\x05\x06")
    struct.pack_into("<HH", data, eocd + 8, 1, 1)  # "one entry"; the directory holds 21
    with rejected("zip_too_many_entries"):
        inspect_zip(save(tmp_path, bytes(data)), LIMITS)


@pytest.mark.parametrize("count, code", [(3, None), (21, "zip_too_many_entries")])
def test_zip64_end_record(tmp_path, monkeypatch, count, code):
    monkeypatch.setattr(zipfile, "ZIP_FILECOUNT_LIMIT", 2)  # makes zipfile write zip64 records
    data = build([("f%d.csv" % i, b"x") for i in range(count)])
    assert b"PK\x06\x06" in data
    path = save(tmp_path, data)
    if code is None:
        assert len(inspect_zip(path, LIMITS)) == count
    else:
        with rejected(code) as info:
            inspect_zip(path, LIMITS)
        assert info.value.details["entries"] == count


def test_member_that_is_not_there_or_not_readable(tmp_path):
    path = save(tmp_path, build([("d/", b""), ("a.csv", CSV_B)]))
    with pytest.raises(KeyError):
        next(iter_member(path, ZipMember("b.csv", "b", "csv", 1, 1), LIMITS))
    with pytest.raises(ValueError):
        next(iter_member(path, ZipMember("d/", "", "other", 0, 0), LIMITS))


def test_declared_total_too_large_is_413(tmp_path):
    path = save(tmp_path, build([("a.csv", CSV_A), ("b.csv", CSV_A)]))
    limits = ZipLimits(max_entries=5, max_uncompressed_bytes=len(CSV_A) * 2 - 1, max_ratio=100)
    with rejected("zip_too_large", 413) as info:
        inspect_zip(path, limits)
    assert info.value.details["declared"] == len(CSV_A) * 2


def bomb(size=50 << 20, name="bomb.csv") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf, zf.open(name, "w") as out:
        block = bytes(1 << 20)
        for _ in range(size >> 20):
            out.write(block)
    return buf.getvalue()


@pytest.fixture(scope="module")
def bomb_50mb():
    return bomb()


def test_zip_bomb_by_ratio(tmp_path, bomb_50mb):
    assert len(bomb_50mb) < 100_000  # 50 MB of zeros, about 1000:1
    with rejected("zip_bomb") as info:
        inspect_zip(save(tmp_path, bomb_50mb), LIMITS)
    assert info.value.details["ratio"] > 500


def test_ratio_spares_small_members(tmp_path):
    path = save(tmp_path, build([("zeros.csv", bytes(100_000))]))
    [member] = inspect_zip(path, LIMITS)
    assert member.file_size > member.compressed_size * 100
    with rejected("zip_bomb"):
        inspect_zip(path, ZipLimits(20, 1 << 30, 100, ratio_grace_bytes=50_000))


def test_bomb_with_lying_headers_stops_at_the_declared_size(tmp_path, bomb_50mb):
    path = save(tmp_path, patch(bomb_50mb, file_size=1000))
    [member] = inspect_zip(path, LIMITS)  # declared 1000 bytes: nothing to see yet
    assert member.file_size == 1000
    yielded = 0
    tracemalloc.start()
    try:
        with rejected("zip_size_mismatch"):
            for chunk in iter_member(path, member, LIMITS):
                yielded += len(chunk)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert yielded <= 1000
    assert peak < 2 << 20  # the 50 MB were never inflated


def test_lying_header_in_central_directory_only(tmp_path):
    path = save(tmp_path, patch(build([("a.csv", CSV_A)]), file_size=1000, local=False))
    [member] = inspect_zip(path, LIMITS)
    with rejected("zip_size_mismatch"):
        next(iter_member(path, member, LIMITS))


def test_declared_size_larger_than_real(tmp_path):
    path = save(tmp_path, patch(build([("a.csv", CSV_A)]), file_size=len(CSV_A) + 10))
    [member] = inspect_zip(path, LIMITS)
    with rejected("zip_size_mismatch") as info:
        read_all(path, member)
    assert info.value.details["actual"] == len(CSV_A)


def test_shared_budget_counts_real_bytes_across_members(tmp_path):
    path = save(tmp_path, build([("a.csv", bytes(600)), ("b.csv", bytes(600))]))
    a, b = inspect_zip(path, LIMITS)
    budget = ByteBudget(1000)
    assert read_all(path, a, budget=budget) == bytes(600)
    yielded = 0
    with rejected("zip_too_large", 413):
        for chunk in iter_member(path, b, LIMITS, chunk_size=100, budget=budget):
            yielded += len(chunk)
    assert yielded == 400 and budget.used == 1000


# --- names ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", [
    "../x.csv", "/etc/x.csv", "a/../../x.csv", "..\\x.csv", "a\\..\\..\\x.csv", "C:/x.csv",
    "c:x.csv", "//server/share/x.csv", "a/.../x.csv", "../README.txt",
])
def test_zip_slip(tmp_path, name):
    with rejected("zip_slip") as info:
        inspect_zip(save(tmp_path, build([("ok.csv", CSV_B), (zipfile.ZipInfo(name), b"x")])),
                    LIMITS)
    assert info.value.details["name"] == name


@pytest.mark.parametrize("name", [
    "a\x07.csv", "a\x1b[2J.csv", "evil\u202ecsv.txt", "my file.csv", ".csv", "..csv",
    ".hidden.csv", "données.csv", "x" * 201 + ".csv", "a;rm -rf.csv",
])
def test_bad_member_names(tmp_path, name):
    with rejected("zip_bad_member_name"):
        inspect_zip(save(tmp_path, build([(zipfile.ZipInfo(name), b"x")])), LIMITS)


def test_longest_stem_accepted(tmp_path):
    path = save(tmp_path, build([("x" * 200 + ".CSV", b"x")]))
    assert inspect_zip(path, LIMITS)[0].stem == "x" * 200


def test_nul_in_name(tmp_path):
    # zipfile cuts names at NUL when writing, so the NUL is patched into both headers.
    data = build([("ok.csv", CSV_B), ("evil.csv.txt", b"x")])
    data = data.replace(b"evil.csv.txt", b"evil.csv\0txt")
    with rejected("zip_bad_member_name"):
        inspect_zip(save(tmp_path, data), LIMITS)


def test_name_that_is_not_utf8(tmp_path):
    data = build([("ok.csv", CSV_B), ("bad_X.csv", b"x")]).replace(b"bad_X", b"bad_\xff")
    with rejected("zip_bad_member_name"):
        inspect_zip(save(tmp_path, patch(data, index=1, flags=0x800)), LIMITS)


def test_local_header_naming_another_file(tmp_path):
    data = build([("aaa.csv", CSV_B)])
    lh = headers(data)[0][0]
    data = data[:lh + 30] + b"bbb" + data[lh + 33:]
    path = save(tmp_path, data)
    [member] = inspect_zip(path, LIMITS)
    with rejected("zip_corrupt"):
        read_all(path, member)


@pytest.mark.parametrize("names", [
    ["a.csv", "a.csv"], ["a.csv", "A.CSV"], ["x/a.csv", "y/a.csv"], ["d/r.txt", "d\\r.txt"],
])
def test_duplicate_members(tmp_path, names):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns on exact duplicates
        data = build([(zipfile.ZipInfo(n), b"x") for n in names] + [("ok.csv", CSV_B)])
    with rejected("zip_duplicate_member"):
        inspect_zip(save(tmp_path, data), LIMITS)


# --- nested, encrypted, symlinks -----------------------------------------------------------

@pytest.mark.parametrize("name", ["inner.zip", "data.csv.gz", "x.7z", "a.tar", "b.RAR", "c.jar"])
def test_nested_archive_by_name(tmp_path, name):
    with rejected("zip_nested_archive"):
        inspect_zip(save(tmp_path, build([("ok.csv", CSV_B), (name, b"x")])), LIMITS)


def tar_bytes() -> bytes:
    import tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("a.csv")
        info.size = len(CSV_B)
        tf.addfile(info, io.BytesIO(CSV_B))
    return buf.getvalue()


@pytest.mark.parametrize("content", [
    pytest.param(lambda: build([("a.csv", CSV_B)]), id="zip"),
    pytest.param(lambda: gzip.compress(CSV_B), id="gzip"),
    pytest.param(lambda: __import__("bz2").compress(CSV_B), id="bzip2"),
    pytest.param(tar_bytes, id="tar"),
])
def test_nested_archive_by_magic(tmp_path, content):
    path = save(tmp_path, build([("inner.csv", content())]))
    [member] = inspect_zip(path, LIMITS)
    chunks = []
    with rejected("zip_nested_archive"):
        for chunk in iter_member(path, member, LIMITS, chunk_size=16):
            chunks.append(chunk)
    assert chunks == []


def test_csv_starting_like_bzip2_is_not_an_archive(tmp_path):
    path = save(tmp_path, build([("a.csv", b"BZh9,col\n1,2\n")]))
    assert read_all(path, inspect_zip(path, LIMITS)[0]) == b"BZh9,col\n1,2\n"


def test_encrypted_entry(tmp_path):
    data = patch(build([("a.csv", CSV_B), ("b.csv", CSV_B)]), index=1, flags=0x1)
    with rejected("zip_encrypted"):
        inspect_zip(save(tmp_path, data), LIMITS)


def test_encrypted_flag_in_local_header_only(tmp_path):
    path = save(tmp_path, patch(build([("a.csv", CSV_B)]), flags=0x1, central=False))
    [member] = inspect_zip(path, LIMITS)
    with rejected("zip_encrypted"):
        read_all(path, member)


def test_symlink_entry(tmp_path):
    link = zipfile.ZipInfo("passwd.csv")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    with rejected("zip_symlink"):
        inspect_zip(save(tmp_path, build([("ok.csv", CSV_B), (link, b"/etc/passwd")])), LIMITS)


def test_unix_directory_without_slash_is_skipped(tmp_path):
    folder = zipfile.ZipInfo("folder")
    folder.create_system = 3
    folder.external_attr = (stat.S_IFDIR | 0o755) << 16
    members = inspect_zip(save(tmp_path, build([(folder, b""), ("a.csv", CSV_B)])), LIMITS)
    assert [m.name for m in members] == ["a.csv"]


# --- async reader: errors, cancellation, back-pressure ---------------------------------------

def reader_threads():
    return [t for t in threading.enumerate() if t.name.startswith("ziparchive:")]


async def wait_for(condition, timeout=10.0):
    """Wait for ``condition`` with a deadline, letting the event loop run meanwhile."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached before the deadline"
        await asyncio.sleep(0.005)


async def assert_threads_end(baseline: int):
    await wait_for(lambda: not reader_threads() and threading.active_count() == baseline)


async def test_aiter_member_raises_in_the_consumer(tmp_path, bomb_50mb):
    baseline = threading.active_count()
    path = save(tmp_path, patch(bomb_50mb, file_size=1000))
    [member] = inspect_zip(path, LIMITS)
    with rejected("zip_size_mismatch"):
        async for _ in aiter_member(path, member, LIMITS):
            pass
    await assert_threads_end(baseline)


async def test_cancelling_the_consumer_stops_the_thread(tmp_path):
    baseline = threading.active_count()
    path = save(tmp_path, build([("a.csv", CSV_A)]))
    [member] = inspect_zip(path, LIMITS)
    first = asyncio.Event()

    async def consume():
        stream = aiter_member(path, member, LIMITS, chunk_size=4096, queue_size=2)
        async with contextlib.aclosing(stream):
            async for _ in stream:
                first.set()
                await asyncio.Event().wait()  # busy elsewhere, e.g. writing to storage

    task = asyncio.create_task(consume())
    await first.wait()
    assert len(reader_threads()) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await assert_threads_end(baseline)


class GatedBudget(ByteBudget):
    """A budget that holds the reader thread before its second chunk until ``gate`` opens."""

    def __init__(self):
        super().__init__(1 << 40)
        self.gate, self.blocked, self.calls = threading.Event(), threading.Event(), 0

    def take(self, n):
        self.calls += 1
        if self.calls > 1:
            self.blocked.set()
            self.gate.wait(timeout=10)
        super().take(n)


async def test_cancelled_while_waiting_for_a_chunk(tmp_path):
    baseline = threading.active_count()
    path = save(tmp_path, build([("a.csv", CSV_A)]))
    [member] = inspect_zip(path, LIMITS)
    budget = GatedBudget()
    stream = aiter_member(path, member, LIMITS, budget=budget, chunk_size=4096)
    await anext(stream)
    waiting = asyncio.create_task(anext(stream))
    await wait_for(budget.blocked.is_set)  # the reader is held, so the stream is waiting
    assert not waiting.done()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    budget.gate.set()  # the reader finishes its chunk, sees the stop, and ends
    await assert_threads_end(baseline)
    assert budget.used == 2 * 4096


async def test_abandoned_stream_stops_its_thread_when_collected(tmp_path):
    baseline = threading.active_count()
    path = save(tmp_path, build([("a.csv", CSV_A)]))
    [member] = inspect_zip(path, LIMITS)
    stream = aiter_member(path, member, LIMITS, chunk_size=4096)
    async for _ in stream:
        break
    del stream  # the loop's async-generator finalizer closes it
    await assert_threads_end(baseline)


async def test_back_pressure_bounds_what_the_thread_reads_ahead(tmp_path):
    # Stored, so that every chunk is exactly `chunk` bytes and the count is exact.
    path = save(tmp_path, build([("a.csv", CSV_A)], zipfile.ZIP_STORED))
    [member] = inspect_zip(path, LIMITS)
    budget = ByteBudget(LIMITS.max_uncompressed_bytes)
    chunk, queued = 4096, 2
    stream = aiter_member(path, member, LIMITS, budget=budget, chunk_size=chunk,
                          queue_size=queued)
    async with contextlib.aclosing(stream):
        for taken in (1, 2):
            await anext(stream)
            # taken by us + waiting in the queue + one produced and waiting for room
            bound = (taken + queued + 1) * chunk
            await wait_for(lambda: budget.used >= bound)
            assert budget.used == bound
    assert len(CSV_A) > 10 * bound


def test_member_argument_is_rechecked(tmp_path):
    path = save(tmp_path, build([("a.csv", CSV_A)]))
    forged = ZipMember(name="a.csv", stem="a", kind="csv", compressed_size=1, file_size=1)
    strict = ZipLimits(max_entries=5, max_uncompressed_bytes=1000, max_ratio=100)
    with rejected("zip_too_large", 413):
        next(iter_member(path, forged, strict))
