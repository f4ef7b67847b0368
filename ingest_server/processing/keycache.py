"""Building a dimension column's key files (``keys.py``) from its table, once per load.

The files are named by the dimension, the column and a generation (the last load recorded and
the number of keys), built in a private folder and renamed into place, so processes and
replicas sharing the state folder never see half a file. PostgreSQL writes the key column out
with COPY (no sort); Python hashes each key into the tables (in a thread: about 2 µs a key).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
from pathlib import Path

import asyncpg

from .cqube_schema import dimension_table, ident
from .keys import KeyFiles, write_key_files

FORMAT = "x3"  # in each folder's name: files of an older format are never opened


async def key_state(conn: asyncpg.Connection, dimension: str, column: str) -> int | None:
    """None when the column has no key at all; else a number that changes when rows are
    written (PostgreSQL's insert/update/delete counters of the table): cheap on a table of
    millions, unlike a count. (Loads through this service also change the generation by their
    time; the counters catch writes made by others, once PostgreSQL has published them.)"""
    table, key = dimension_table(dimension), ident(column)
    if not await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {table} WHERE {key} IS NOT NULL)"):
        return None
    return await conn.fetchval(
        "SELECT coalesce(n_tup_ins + n_tup_upd + n_tup_del, 0) FROM pg_stat_user_tables "
        "WHERE schemaname = 'dimensions' AND relname = $1", dimension.lower()) or 0


async def key_files(conn: asyncpg.Connection, folder: Path, dimension: str, column: str,
                    generation: str) -> KeyFiles:
    """The key files of ``dimension.column`` at ``generation``, built if missing."""
    name = f"{dimension}.{column}.{FORMAT}-{generation}"
    final = folder / name
    if not final.is_dir():
        folder.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".build-", dir=folder))
        try:
            await _build(conn, work, dimension, column)
            try:
                os.rename(work, final)
            except OSError:  # another process built it meanwhile: theirs is the same
                pass
        finally:
            if work.exists():
                shutil.rmtree(work, ignore_errors=True)
        _remove_older(folder, f"{dimension}.{column}.", keep=name)
    count = os.path.getsize(final / "k.off") // 8 - 1
    return KeyFiles(base=str(final / "k"), dimension=dimension, column=column, count=count)


async def _build(conn: asyncpg.Connection, work: Path, dimension: str, column: str) -> None:
    table, key = dimension_table(dimension), ident(column)
    csv_path = work / "keys.csv"
    status = await conn.copy_from_query(f"SELECT {key} FROM {table} WHERE {key} IS NOT NULL",
                                        output=str(csv_path), format="csv")
    n = int(status.rsplit(" ", 1)[-1])  # "COPY n"
    await asyncio.to_thread(write_key_files, csv_path, work / "k", n)
    csv_path.unlink()


KEEP_S = 3600  # an upload that started before a new load still opens its generation's files


def _remove_older(folder: Path, prefix: str, keep: str) -> None:
    """Generations replaced more than an hour ago go (a worker that mapped one keeps its pages
    until it lets go)."""
    now = time.time()
    for entry in folder.iterdir():
        if (entry.name.startswith(prefix) and entry.name != keep and entry.is_dir()
                and now - entry.stat().st_mtime > KEEP_S):
            rest = entry.name[len(prefix):]
            if "." not in rest:  # only this column's generations, not a longer column name
                shutil.rmtree(entry, ignore_errors=True)
