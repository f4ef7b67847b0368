"""The stores hide the database driver: its errors arrive as domain errors, rows as typed records.

Against the real PostgreSQL: a closed pool stands for a database that went away."""

from __future__ import annotations

import pytest

from ingest_server.stores.db import create_pool, migrate, stored
from ingest_server.errors import Conflict, DatabaseError, DatabaseUnavailable
from ingest_server.stores.specs import SpecStore
from ingest_server.stores.uploads import COLUMNS, UploadRecord, UploadStore


def new_upload(store: UploadStore, upload_id: str, key: str | None = None):
    return store.create(upload_id=upload_id, route="new_programs", client="c", filename="f.csv",
                        kind="event", program="p", ingestion_name="n", dry_run=False,
                        idempotency_key=key)


def test_an_upload_record_has_every_column():
    assert list(UploadRecord.__annotations__) == [c.strip() for c in COLUMNS.split(",")]


async def test_driver_errors_become_domain_errors(clean_db):
    pool = await create_pool(clean_db)
    try:
        await migrate(pool)
        uploads = UploadStore(pool)
        await new_upload(uploads, "u-1", key="k")
        record = await uploads.get("u-1")
        assert record["status"] == "receiving" and isinstance(record["started_at"], str)
        with pytest.raises(Conflict) as taken:  # the unique key, as the lifecycle needs it
            await new_upload(uploads, "u-2", key="k")
        assert taken.value.code == "upload_in_progress"

        @stored
        async def broken_sql() -> None:
            await pool.execute("SELECT no_such_column FROM uploads")

        with pytest.raises(DatabaseError) as bad:
            await broken_sql()
        assert bad.value.status == 500 and not isinstance(bad.value, DatabaseUnavailable)
    finally:
        await pool.close()
    with pytest.raises(DatabaseUnavailable) as gone:  # the database went away
        await uploads.get("u-1")
    assert gone.value.status == 503 and gone.value.code == "db_unavailable"
    with pytest.raises(DatabaseUnavailable):
        await SpecStore(pool).latest("event", "n")
