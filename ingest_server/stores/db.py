"""PostgreSQL: the connection pool, the embedded server for the default set-up, and migrations.

With ``database.dsn`` empty the service starts an embedded PostgreSQL (the ``pgserver`` package) in
``database.data_dir``; that is what ``make serve`` uses. Migrations are plain SQL files in
``migrations/`` applied once each, in order, under an advisory lock so several workers starting at
once do not race.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import logging
import os
import socket
import subprocess
import time
import contextlib
import functools
from importlib import resources
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, TypeVar

import asyncpg

from ..errors import Conflict, DatabaseError, DatabaseUnavailable
from ..version import __version__, schema_version

log = logging.getLogger("ingest_server.db")

MIGRATION_LOCK = 7_246_113_001  # any constant; shared by every process of this service
CONNECTION_ERRORS = (OSError, asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError,
                     asyncpg.InterfaceError, asyncio.TimeoutError, ConnectionError)
# What the stores turn into DatabaseUnavailable: inside a store call a refused or reset connection
# can only be the database's (the client's connection is not touched there).
DB_DOWN = CONNECTION_ERRORS + (asyncpg.ConnectionDoesNotExistError,
                               asyncpg.ConnectionFailureError)
Pool = asyncpg.Pool  # for type hints above the stores (the web layer's app keys)
T = TypeVar("T")


@contextlib.contextmanager
def db_errors():
    """Turn the driver's errors raised inside into domain errors: ``DatabaseUnavailable`` (503)
    for a database that cannot be reached, ``DatabaseError`` (500, logged with its traceback)
    for any other failure of the driver. Domain errors pass through."""
    try:
        yield
    except DB_DOWN as e:
        raise DatabaseUnavailable("the database is unavailable, try again later",
                                  reason=e.__class__.__name__) from e
    except asyncpg.PostgresError as e:
        log.error("database error: %s", e.__class__.__name__, exc_info=e)
        raise DatabaseError("internal error (database); quote the request id when reporting it"
                            ) from e


def stored(fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """A store method whose driver errors become domain errors (see ``db_errors``)."""

    @functools.wraps(fn)
    async def call(*args: Any, **kwargs: Any) -> T:
        with db_errors():
            return await fn(*args, **kwargs)

    return call


@contextlib.asynccontextmanager
async def transaction(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A connection in a transaction, for steps that must be one (committed when the block ends
    without error). Only the database's own steps are translated by ``db_errors``: an error of
    the block (a storage failure between two statements) passes through untouched."""
    with db_errors():
        conn = await pool.acquire()
    try:
        with db_errors():
            tx = conn.transaction()
            await tx.start()
        try:
            yield conn
        except BaseException:
            with contextlib.suppress(*DB_DOWN, asyncpg.PostgresError):  # the block's error wins
                await tx.rollback()
            raise
        with db_errors():
            await tx.commit()
    finally:
        with contextlib.suppress(*DB_DOWN, asyncpg.PostgresError):
            await pool.release(conn)


def unique_violation(message: str, code: str) -> Callable[[Callable[..., Awaitable[T]]],
                                                         Callable[..., Awaitable[T]]]:
    """A store method whose unique-key violation is a 409 ``code`` (the rest as ``stored``)."""

    def wrap(fn: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
        @functools.wraps(fn)
        async def call(*args: Any, **kwargs: Any) -> T:
            with db_errors():
                try:
                    return await fn(*args, **kwargs)
                except asyncpg.UniqueViolationError:
                    raise Conflict(message, code=code) from None

        return call

    return wrap


class EmbeddedDatabaseInUse(DatabaseUnavailable):
    code = "embedded_database_in_use"


_embedded_claim: int | None = None  # a file descriptor held for the life of the process


def claim_embedded(data_dir: Path) -> None:
    """Refuse to run the embedded PostgreSQL of ``data_dir`` for a second instance.

    The processes of one instance (``--workers``, one host name) share it, as pgserver intends.
    Another instance (a replica in another container with the folder on a shared volume) would
    start a second postmaster on the same files: each process holds a shared lock on
    ``<data_dir>.owner``, which names the owner's host, and a live owner of another host stops
    start-up with a clear message. Replicas need ``database.dsn`` (DESIGN.md §10).
    """
    global _embedded_claim
    if _embedded_claim is not None:
        return
    owner_path = data_dir.parent / (data_dir.name + ".owner")
    host = socket.gethostname()
    guard = os.open(str(owner_path) + ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(guard, fcntl.LOCK_EX)  # one instance checks at a time
        fd = os.open(owner_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 255, 0).decode("utf-8", "replace").strip()
            if owner != host:
                os.close(fd)
                raise EmbeddedDatabaseInUse(
                    f"the embedded database in {data_dir} is in use by another instance (host "
                    f"'{owner}'): it serves one instance only; run replicas on a shared "
                    "PostgreSQL (database.dsn / INGEST_DATABASE_DSN)") from None
        else:
            os.ftruncate(fd, 0)
            os.pwrite(fd, host.encode("utf-8"), 0)
        fcntl.flock(fd, fcntl.LOCK_SH)
        _embedded_claim = fd
    finally:
        os.close(guard)


def embedded_dsn(data_dir: Path) -> str:
    """Start (or reuse) the embedded PostgreSQL in ``data_dir`` and return its DSN."""
    logging.getLogger("pgserver").setLevel(logging.WARNING)  # its INFO lines are command dumps
    try:
        _private_runtime_dir(data_dir.parent / ".runtime")
        import pgserver  # imported lazily: production set-ups never need it

        data_dir.mkdir(parents=True, exist_ok=True)
        claim_embedded(data_dir)
        server = pgserver.get_server(data_dir, cleanup_mode="stop")
    except (OSError, RuntimeError, subprocess.CalledProcessError) as e:
        # One line at start-up, not pgserver's traceback (its own ERROR line has the details).
        stderr = getattr(e, "stderr", None) or ""
        reason = stderr.strip().splitlines()[-1] if stderr.strip() else str(e)
        raise DatabaseUnavailable(f"the embedded PostgreSQL did not start in {data_dir}: "
                                  f"{reason}") from None
    return server.get_uri()


def _private_runtime_dir(path: Path) -> None:
    """pgserver (platformdirs) warns with RuntimeDirWarning unless XDG_RUNTIME_DIR is a folder
    of ours with mode 0700: make one beside the data dir when the variable is unset or unusable."""
    current = os.environ.get("XDG_RUNTIME_DIR")
    if current and os.path.isdir(current):
        info = os.stat(current)
        if info.st_mode & 0o777 == 0o700 and info.st_uid == os.geteuid():
            return
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)
    os.environ["XDG_RUNTIME_DIR"] = str(path)


def _without_nul(value):
    """``value`` with every NUL character in its strings (keys too) written ``\\x00``."""
    if isinstance(value, str):
        return value.replace("\x00", "\\x00") if "\x00" in value else value
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_without_nul(v) for v in value]
    return value


def encode_jsonb(value) -> str:
    """JSON for a jsonb column. PostgreSQL refuses ``\\u0000`` in jsonb, and a NUL can reach an
    error detail from any client text (e.g. ``encoding=utf-8%00``): the upload's outcome could
    then not be recorded. So NUL is escaped everywhere, whatever the caller stores."""
    text = json.dumps(value)
    return json.dumps(_without_nul(value)) if "\\u0000" in text else text


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=encode_jsonb, decoder=json.loads,
                              schema="pg_catalog")


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10,
                      timeout: float = 10.0, wait_s: float = 0.0) -> asyncpg.Pool:
    """Connect, retrying for up to ``wait_s`` seconds while the database is not reachable yet."""
    deadline = time.monotonic() + wait_s
    delay = 0.2
    while True:
        try:
            return await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size,
                                             timeout=timeout, command_timeout=60,
                                             init=_init_connection, reset=_keep_session)
        except CONNECTION_ERRORS as e:
            if time.monotonic() + delay > deadline:
                raise DatabaseUnavailable(f"database not reachable: {e.__class__.__name__}") from e
            log.warning("database not reachable yet (%s), retrying", e.__class__.__name__)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


async def _keep_session(conn: asyncpg.Connection) -> None:
    """What a connection needs when it goes back to the pool, after asyncpg has rolled back a
    transaction left open: nothing. The service changes no session state (no SET, LISTEN,
    session-level advisory lock or cursor held past its transaction), so asyncpg's default
    reset query (``RESET ALL``, ``UNLISTEN *``, ...) would be a round trip per release, several
    per upload, that undoes nothing."""


def migration_files() -> list[tuple[int, str, str]]:
    """(version, name, sql) for every migration shipped with the package, in order."""
    out = []
    for entry in resources.files("ingest_server.migrations").iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            out.append((version, entry.name, entry.read_text(encoding="utf-8")))
    return sorted(out)


class SchemaTooNew(Exception):
    """The database was migrated by a newer release than this code: refused before any write."""

    def __init__(self, database: int, written_by: str | None, ours: int, release: str) -> None:
        self.database, self.written_by, self.ours, self.release = (database, written_by, ours,
                                                                   release)
        by = f"ingest-server {written_by}" if written_by else "a newer ingest-server"
        super().__init__(
            f"the database's schema is version {database} (written by {by}), newer than this "
            f"ingest-server {release} (schema {ours}): downgrading is not supported; run "
            f"{written_by or 'that release'} or newer (docs/upgrading.md)")


async def _applied(conn: asyncpg.Connection) -> dict[int, str | None]:
    """{version: release that applied it (None before 0.3.0)} of the migrations applied."""
    columns = {r["column_name"] for r in await conn.fetch(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = 'schema_migrations'")}
    if not columns:
        return {}
    if "release" not in columns:
        return {r["version"]: None for r in await conn.fetch("SELECT version FROM schema_migrations")}
    return {r["version"]: r["release"]
            for r in await conn.fetch("SELECT version, release FROM schema_migrations")}


# The tables that earlier releases' servers write while a newer one migrates (a rolling upgrade).
# A migration that first takes a weaker lock on one of them (an UPDATE, a CREATE INDEX) and later a
# stronger one (ALTER TABLE) deadlocks with a running server's transaction that read the table and
# then writes it. Taking the strongest lock first, before any statement, leaves nothing to upgrade:
# the servers wait for the migration (a few seconds at most) instead of one side being aborted.
async def _lock_busy_tables(conn: asyncpg.Connection) -> None:
    """``uploads`` and ``specs``: the tables that migrations alter and that earlier releases'
    servers use on every upload during a rolling upgrade; always locked in this order."""
    if await conn.fetchval("SELECT to_regclass('uploads') IS NOT NULL"):
        await conn.execute("LOCK TABLE uploads IN ACCESS EXCLUSIVE MODE")
    if await conn.fetchval("SELECT to_regclass('specs') IS NOT NULL"):
        await conn.execute("LOCK TABLE specs IN ACCESS EXCLUSIVE MODE")


async def migrate(pool: asyncpg.Pool) -> list[str]:
    """Apply the migrations not applied yet; returns the names applied now (idempotent).

    A database that already holds a migration newer than any this code ships was written by a
    newer release: ``SchemaTooNew`` is raised before anything is written. Each migration applied
    records the release that applied it (``schema_migrations.release``, an expand-only column
    older releases ignore)."""
    applied_now = []
    async with pool.acquire() as conn:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            done = await _applied(conn)
            newest = max(done, default=0)
            if newest > schema_version():
                raise SchemaTooNew(newest, done[newest], schema_version(), __version__)
            await conn.execute("""
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version integer PRIMARY KEY, name text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now())""")
            await conn.execute("ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS release text")
            pending = [m for m in migration_files() if m[0] not in done]
            if pending:
                await _lock_busy_tables(conn)
            for version, name, sql in pending:
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (version, name, release) "
                                   "VALUES ($1, $2, $3)", version, name, __version__)
                applied_now.append(name)
    for name in applied_now:
        log.info("applied migration %s", name)
    return applied_now


async def ping(pool: asyncpg.Pool, timeout: float = 2.0) -> None:
    try:
        async with asyncio.timeout(timeout):
            async with pool.acquire() as conn:
                await conn.fetchval("SELECT 1")
    except CONNECTION_ERRORS as e:
        raise DatabaseUnavailable(f"database not reachable: {e.__class__.__name__}") from e
