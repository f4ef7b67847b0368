"""Storage backends against real storage: a temp folder and a real SeaweedFS S3 server."""

from __future__ import annotations


import hashlib
import uuid
from types import SimpleNamespace

import pytest
from testkit.s3_server import SeaweedS3, pick_ports
from testkit.stored import exists, published

from ingest_server.errors import (ConfigError, InsufficientStorage, InvalidStorageArgument,
                                  NotFound, StorageError)
from ingest_server.storage import (LocalStorage, ObjectWriter, S3Storage, Storage, make_storage,
                                   publish_all, validate_key)
from ingest_server.storage.base import validate_prefix
from ingest_server.storage.s3 import MIN_PART_SIZE

BUCKET = "storage-tests"
PART = MIN_PART_SIZE  # the smallest part S3 allows, so "several parts" stays cheap


def s3_storage_for(server: SeaweedS3, **overrides) -> S3Storage:
    options = dict(endpoint_url=server.endpoint_url, region=server.region,
                   access_key_id=server.access_key_id,
                   secret_access_key=server.secret_access_key,
                   prefix=f"t-{uuid.uuid4().hex}/",  # isolates each test inside one bucket
                   part_size=PART, connect_timeout_s=2, read_timeout_s=10, max_attempts=2)
    options.update(overrides)
    return S3Storage(BUCKET, **options)


@pytest.fixture(params=["local", "s3"])
async def storage(request, tmp_path):
    if request.param == "local":
        backend: Storage = LocalStorage(tmp_path / "root")
    else:
        backend = s3_storage_for(request.getfixturevalue("s3_server"))
    await backend.start()
    yield backend
    await backend.close()


async def pending_multipart(storage: Storage) -> list[str]:
    """Keys with a multipart upload still open (S3), or staged files (local)."""
    if isinstance(storage, LocalStorage):
        return sorted(str(p.relative_to(storage.staging)) for p in storage.staging.rglob("*")
                      if p.is_file())
    page = await storage.client.list_multipart_uploads(Bucket=storage.bucket,
                                                       Prefix=storage.prefix)
    return sorted(u["Key"] for u in page.get("Uploads", []))


async def read_all(storage: Storage, key: str, chunk_size: int = 256 * 1024) -> bytes:
    return b"".join([chunk async for chunk in storage.read(key, chunk_size)])


def payload(size: int) -> bytes:
    """Deterministic, non-repeating-per-part bytes so a misordered part would be caught."""
    block = hashlib.sha256(b"seed").digest() * 2048  # 64 KiB
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += counter.to_bytes(8, "big") + block
        counter += 1
    return bytes(out[:size])


KEY = "process_input/school-attendance/2026-11-27/attendance-event.u1.data.csv"


async def test_tiny_object_round_trip_and_invisible_until_commit(storage):
    writer = await storage.open_writer(KEY, upload_id="u1")
    await writer.write(b"school_id,date\n")
    await writer.write(b"101,2026-11-27\n")
    assert writer.bytes_written == 30
    assert not await exists(storage, KEY)
    assert await published(storage) == []

    await writer.commit()
    await writer.commit()  # idempotent

    assert await exists(storage, KEY)
    assert await published(storage) == [KEY]
    assert await published(storage, "process_input/school-") == [KEY]
    assert await published(storage, "ingestion_error/") == []
    assert await read_all(storage, KEY, chunk_size=7) == b"school_id,date\n101,2026-11-27\n"
    assert await pending_multipart(storage) == []


async def test_multipart_object_round_trip(storage):
    data = payload(2 * PART + PART // 2 + 12345)  # three parts and a bit
    writer = await storage.open_writer(KEY, upload_id="u1")
    for start in range(0, len(data), 100_003):  # odd chunk size: parts never align with writes
        await writer.write(data[start:start + 100_003])
    if isinstance(storage, S3Storage):
        assert len(writer._parts) == 2 and writer._multipart_id is not None
    assert len(await pending_multipart(storage)) == 1
    assert not await exists(storage, KEY)

    await writer.commit()

    assert writer.bytes_written == len(data)
    assert await pending_multipart(storage) == []
    got = await read_all(storage, KEY)
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()


async def test_empty_object_is_published(storage):
    writer = await storage.open_writer("empty/e.u1.csv", upload_id="u1")
    await writer.commit()
    assert await published(storage) == ["empty/e.u1.csv"]
    assert await read_all(storage, "empty/e.u1.csv") == b""


@pytest.mark.parametrize("size", [10, PART + 100], ids=["tiny", "after-one-part"])
async def test_abort_leaves_nothing(storage, size):
    writer = await storage.open_writer(KEY, upload_id="u1")
    await writer.write(payload(size))
    await writer.abort()
    await writer.abort()  # idempotent

    assert not await exists(storage, KEY)
    assert await published(storage) == []
    assert await pending_multipart(storage) == []
    with pytest.raises(StorageError) as err:
        await writer.write(b"more")
    assert err.value.code == "writer_closed"
    with pytest.raises(StorageError) as err:
        await writer.commit()
    assert err.value.code == "writer_aborted"


async def test_abort_after_commit_keeps_the_object(storage):
    writer = await storage.open_writer(KEY, upload_id="u1")
    await writer.write(b"x")
    await writer.commit()
    await writer.abort()
    assert await exists(storage, KEY)


async def test_publish_all_publishes_every_object(storage):
    keys = [f"out/{name}.u7.csv" for name in ("valid", "errors")]
    writers = [await storage.open_writer(k, upload_id="u7") for k in keys]
    for writer in writers:
        await writer.write(writer.key.encode())
    await publish_all(writers)
    assert await published(storage, "out/") == sorted(keys)


async def test_local_publish_all_is_one_trip_to_the_disk_threads(tmp_path, monkeypatch):
    """An upload's objects on local storage are published in one disk-thread job, not one
    each (every job wakes a thread that takes the GIL from the event loop)."""
    from ingest_server.storage import local

    storage = LocalStorage(tmp_path / "root")
    await storage.start()
    writers = [await storage.open_writer(f"out/{name}.u9.csv", upload_id="u9")
               for name in ("valid", "errors")]
    for writer in writers:
        await writer.write(writer.key.encode())
    trips = []
    on_disk = local._on_disk
    monkeypatch.setattr(local, "_on_disk", lambda fn, *a: trips.append(fn) or on_disk(fn, *a))
    await publish_all(writers)
    assert len(trips) == 1
    assert await published(storage, "out/") == ["out/errors.u9.csv", "out/valid.u9.csv"]
    assert (storage.root / "out/valid.u9.csv").read_bytes() == b"out/valid.u9.csv"


async def test_publish_all_is_all_or_nothing(storage):
    keys = [f"out/{name}.u7.csv" for name in ("a", "b", "c")]
    writers = [await storage.open_writer(k, upload_id="u7") for k in keys]
    for writer in writers:
        await writer.write(payload(PART + 10))  # every S3 writer holds a multipart upload
    await writers[1].abort()  # the second commit will fail after the first succeeded

    with pytest.raises(StorageError) as err:
        await publish_all(writers)

    assert err.value.code == "writer_aborted"
    assert await published(storage) == []
    assert await pending_multipart(storage) == []


async def test_publish_all_rolls_back_on_a_real_commit_failure(tmp_path):
    storage = LocalStorage(tmp_path / "root")
    await storage.start()
    blocker = await storage.open_writer("out/clash", upload_id="u8")
    await blocker.commit()  # a file where the second key needs a folder
    writers = [await storage.open_writer("out/first.u8.csv", upload_id="u8"),
               await storage.open_writer("out/clash/second.u8.csv", upload_id="u8"),
               await storage.open_writer("out/third.u8.csv", upload_id="u8")]
    for writer in writers:
        await writer.write(b"data")

    with pytest.raises(StorageError) as err:
        await publish_all(writers)

    assert (err.value.code, err.value.status) == ("key_conflict", 409)
    assert await published(storage) == ["out/clash"]
    assert await pending_multipart(storage) == []


BAD_KEYS = ["", "/etc/passwd", "a//b", "a/", "../x", "a/../../b", "a/./b", ".", "a\\b", "a\x00b",
            "a\nb", "a\tb", "é" * 513, "x" * 1025, ".staging/u1/x.part", "\ud800"]


async def test_invalid_keys_are_refused_everywhere(storage):
    for key in BAD_KEYS:
        for attempt in (lambda: storage.open_writer(key, upload_id="u1"),
                        lambda: storage.delete(key), lambda: read_all(storage, key)):
            with pytest.raises(InvalidStorageArgument) as err:
                await attempt()
            assert err.value.code == "invalid_key", key
    for prefix in ("../", "/x", ".staging/", "a//"):
        with pytest.raises(InvalidStorageArgument):
            validate_prefix(prefix)
    assert await published(storage) == []


@pytest.mark.parametrize("key", ["a", "x" * 1024, "é/ü ß.csv", "a/.hidden/..b",
                                 "process_input/d/2026-11-27/x.1234.data.csv"])
def test_valid_keys_pass(key):
    assert validate_key(key) == key


async def test_invalid_upload_ids_are_refused(storage):
    for upload_id in ("", "../x", "a/b", ".hidden", "x" * 129):
        with pytest.raises(InvalidStorageArgument) as err:
            await storage.open_writer(KEY, upload_id=upload_id)
        assert err.value.code == "invalid_upload_id", upload_id
        with pytest.raises(InvalidStorageArgument):
            await storage.cleanup_staged(upload_id=upload_id)


async def test_read_missing_object_is_not_found(storage):
    with pytest.raises(NotFound) as err:
        await read_all(storage, "nope/missing.csv")
    assert err.value.code == "object_not_found"
    assert not await exists(storage, "nope/missing.csv")


async def test_delete(storage):
    writer = await storage.open_writer(KEY, upload_id="u1")
    await writer.commit()
    await storage.delete(KEY)
    await storage.delete(KEY)  # deleting a missing object is fine
    assert await published(storage) == []


async def crashed_writer(storage: Storage, upload_id: str) -> None:
    """Write past one part and drop the writer without commit or abort, as a crash would."""
    writer = await storage.open_writer(f"in/x.{upload_id}.data.csv", upload_id=upload_id)
    await writer.write(payload(PART + 1))
    if isinstance(storage, LocalStorage):
        writer._fh.close()  # what the OS does for a dead process; the staged file stays


async def test_cleanup_staged_by_upload_id(storage):
    await crashed_writer(storage, "crash1")
    await crashed_writer(storage, "crash2")
    survivor = await storage.open_writer("in/ok.live.csv", upload_id="live")
    await survivor.write(b"still writing")

    assert await storage.cleanup_staged(upload_id="other") == 0
    assert await storage.cleanup_staged(upload_id="crash1") == 1
    # Left: crash2 (the live writer's few bytes are still in memory, on either backend).
    assert len(await pending_multipart(storage)) == 1

    await survivor.commit()  # cleanup of another upload must not disturb a live writer
    assert await published(storage) == ["in/ok.live.csv"]


async def test_local_staged_files_lie_flat_and_an_older_upload_folder_is_still_cleaned(tmp_path):
    """An upload's staged files are ``.staging/<upload_id>.*`` (no folder per upload to make and
    remove); a folder an earlier version staged an upload in is still removed by its id."""
    storage = LocalStorage(tmp_path / "root")
    await storage.start()
    await crashed_writer(storage, "crash1")
    await crashed_writer(storage, "crash10")  # its id starts with the other's
    staged = sorted(p.name for p in storage.staging.iterdir())
    assert len(staged) == 2 and all((storage.staging / n).is_file() for n in staged)
    assert sum(n.startswith("crash1.") for n in staged) == 1
    legacy = storage.staging / "crash1"
    legacy.mkdir()
    (legacy / "0123.part").write_bytes(b"staged by an older version")

    assert await storage.cleanup_staged(upload_id="crash1") == 2
    assert [p.name for p in storage.staging.iterdir()] == \
        [n for n in staged if n.startswith("crash10.")]
    assert await storage.cleanup_staged(upload_id="crash10") == 1
    assert list(storage.staging.iterdir()) == []


async def test_cleanup_staged_by_age(storage):
    await crashed_writer(storage, "crash1")
    assert await storage.cleanup_staged(older_than_s=3600) == 0
    assert await storage.cleanup_staged(older_than_s=0) == 1
    assert await pending_multipart(storage) == []
    assert await published(storage) == []


async def test_check_passes_on_a_working_store(storage):
    await storage.check()
    assert isinstance(storage, Storage)
    writer = await storage.open_writer(KEY, upload_id="u1")
    assert isinstance(writer, ObjectWriter)
    await writer.abort()


async def test_local_check_fails_when_root_is_gone(tmp_path):
    storage = LocalStorage(tmp_path / "root")
    await storage.start()
    (tmp_path / "root" / ".staging").rmdir()
    with pytest.raises(StorageError) as err:
        await storage.check()
    assert err.value.code == "storage_unavailable"


async def test_s3_unreachable_is_storage_error():
    (port,) = pick_ports(1)  # free, so nothing listens: connections are refused
    storage = S3Storage(BUCKET, endpoint_url=f"http://127.0.0.1:{port}", region="us-east-1",
                        access_key_id="k", secret_access_key="s", connect_timeout_s=1,
                        max_attempts=1)
    with pytest.raises(StorageError) as err:
        await storage.start()
    assert err.value.code == "storage_unavailable"
    with pytest.raises(StorageError) as err:
        await storage.check()  # start failed, so the client was closed
    assert err.value.code == "storage_unavailable"


async def test_s3_server_killed_mid_upload_then_cleanup_after_restart(tmp_path):
    server = SeaweedS3(tmp_path / "weed")
    server.start()
    try:
        storage = s3_storage_for(server, max_attempts=1, read_timeout_s=5)
        await storage.start()
        try:
            writer = await storage.open_writer("in/x.crash9.csv", upload_id="crash9")
            await writer.write(payload(PART + 1))  # one part is in
            server.kill()
            with pytest.raises(StorageError) as err:
                await writer.write(payload(PART))
            assert err.value.code == "storage_unavailable"
            with pytest.raises(StorageError):
                await storage.check()

            server.start()
            await storage.check()
            assert await storage.cleanup_staged(upload_id="crash9") == 1
            assert await pending_multipart(storage) == []
            assert await published(storage) == []
        finally:
            await storage.close()
    finally:
        server.kill()  # nothing to keep: skip the SIGTERM grace period


async def test_local_disk_full_is_insufficient_storage(tiny_tmpfs):
    storage = LocalStorage(tiny_tmpfs)
    await storage.start()
    writer = await storage.open_writer(KEY, upload_id="u1")
    with pytest.raises(InsufficientStorage) as err:
        for _ in range(4):
            await writer.write(payload(256 * 1024))
        await writer.commit()
    assert err.value.code == "insufficient_storage"
    assert await published(storage) == []
    assert list(storage.staging.iterdir()) == []  # the staged file was removed
    # The space came back: a small object still fits.
    small = await storage.open_writer("ok.u2.csv", upload_id="u2")
    await small.write(b"fits")
    await small.commit()
    assert await published(storage) == ["ok.u2.csv"]


async def test_local_small_object_on_a_full_disk_is_insufficient_storage(tiny_tmpfs):
    """A small object goes to disk in one trip at commit (plain descriptor writes): a full disk
    there is a 507 too, and its staged file is removed."""
    storage = LocalStorage(tiny_tmpfs)
    await storage.start()
    # Leave less room than the object needs.
    (tiny_tmpfs / "filler").write_bytes(payload(512 * 1024 - 32 * 1024))
    writer = await storage.open_writer(KEY, upload_id="u1")
    await writer.write(payload(60 * 1024))  # under FIRST_FLUSH_BYTES: nothing on disk yet
    assert list(storage.staging.iterdir()) == []
    with pytest.raises(InsufficientStorage):
        await writer.commit()
    assert await published(storage) == ["filler"]
    assert list(storage.staging.iterdir()) == []


async def test_local_small_object_recreates_a_removed_staging_folder(tmp_path):
    storage = LocalStorage(tmp_path / "root")
    await storage.start()
    storage.staging.rmdir()  # by hand, while the server runs
    writer = await storage.open_writer(KEY, upload_id="u1")
    await writer.write(b"a,b\r\n")
    await writer.commit()
    assert await published(storage) == [KEY]
    assert (storage.root / KEY).read_bytes() == b"a,b\r\n"


def test_make_storage(tmp_path):
    def cfg(**kw):
        base = dict(backend="local", root=str(tmp_path), bucket="", endpoint_url="", region="",
                    access_key_id="", secret_access_key="")
        return SimpleNamespace(**{**base, **kw})

    assert isinstance(make_storage(cfg()), LocalStorage)
    s3 = make_storage(cfg(backend="s3", bucket="b", endpoint_url="http://127.0.0.1:9"))
    assert isinstance(s3, S3Storage) and s3.bucket == "b"
    for bad in (cfg(backend="azure"), cfg(backend="s3"), cfg(root="")):
        with pytest.raises(ConfigError):
            make_storage(bad)
