"""The mixed-load runner (``bench/bench_load.py``, ``tests/test_load.py``): many concurrent uploads
of mixed sizes against one real server, every row accounted for afterwards. See
``bench/bench_load.py`` for what it checks and prints.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
import io
import json
import os
import random
import resource
import secrets
import signal
import time
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import aiohttp
import asyncpg

from testkit.pyspy import PySpy
from testkit.rss_sampler import TICKS, TreeSampler, cpu_ticks, tree_pids
from testkit.server_process import ServerConfig, free_port
from testkit.accounts import fresh_database
from testkit.stored import published

MB = 1e6
SPECS = ("loadtest", "loadtest_b")        # a ZIP holds one member of each
HEADER = ["row_id", "date", "school_id", "grade", "count", "remarks"]
REMARKS = ["", "ok", "late, start", 'said "fine"', "two\nlines", "naïve ünïcödé", "=1+1"]
INVALID_RATE = 0.05
TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=600)


def load_spec(name: str) -> dict[str, Any]:
    return {"program": name, "input": {"type": "object", "properties": {
        "row_id": {"type": "string", "shouldnotnull": True},
        "date": {"type": "string", "shouldnotnull": True, "format": "date"},
        "school_id": {"type": "string", "shouldnotnull": True},
        "grade": {"type": "integer", "shouldnotnull": True},
        "count": {"type": "number", "shouldnotnull": True},
        "remarks": {"type": "string"}},
        "required": HEADER[:-1]}}


# -- the files ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Part:
    """One CSV (a whole upload or one ZIP member): rows ``<tag>-0 .. <tag>-<rows-1>``, and the
    digests of what its outputs must hold, row by row in order (``content_digest``): the valid
    rows as sent, and the rejected rows' cells plus their physical line (``_errors`` aside)."""

    tag: str
    rows: int
    invalid: frozenset[int]
    valid_digest: str = ""
    error_digest: str = ""

    def ids(self) -> set[str]:
        return {f"{self.tag}-{i}" for i in range(self.rows)}

    def invalid_ids(self) -> set[str]:
        return {f"{self.tag}-{i}" for i in self.invalid}


def content_digest(rows: Any) -> Any:
    """A running digest of rows (lists of cells), for comparing outputs without keeping them."""
    h = hashlib.sha256()
    for row in rows:
        h.update(json.dumps(row, ensure_ascii=False).encode("utf-8") + b"\n")
    return h


def make_csv(tag: str, rows: int, rng: random.Random) -> tuple[bytes, Part]:
    """A CSV whose bad rows are known: each bad row breaks one rule in one of several ways."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator=rng.choice(["\n", "\r\n"]))
    w.writerow(HEADER)
    invalid = set()
    valid_h, error_h = content_digest([]), content_digest([])
    line, end = 2, buf.tell()
    for i in range(rows):
        row = [f"{tag}-{i}", f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
               f"SCH{rng.randrange(10**6):06d}", str(rng.randint(1, 12)),
               f"{rng.uniform(0, 500):.2f}", rng.choice(REMARKS)]
        if rng.random() < INVALID_RATE:
            invalid.add(i)
            col, bad = rng.choice([(4, "n/a"), (4, ""), (3, "4.5"), (1, "2024-02-31"), (2, "")])
            row[col] = bad
        w.writerow(row)
        if i in invalid:
            error_h.update(json.dumps([*row, str(line)], ensure_ascii=False).encode() + b"\n")
        else:
            valid_h.update(json.dumps(row, ensure_ascii=False).encode() + b"\n")
        buf.seek(end)
        line += buf.read().count("\n")  # physical lines: a quoted newline is one too
        end = buf.tell()
    return buf.getvalue().encode("utf-8"), Part(tag, rows, frozenset(invalid),
                                                valid_h.hexdigest(), error_h.hexdigest())


def make_json(tag: str, rows: int, rng: random.Random) -> tuple[bytes, Part]:
    """The rows of ``make_csv`` as a JSON-rows body (``POST /api/ingestion/event``): every cell
    a string, so the objects written must equal the same rows a CSV upload would give."""
    text, part = make_csv(tag, rows, rng)
    table = list(csv.reader(io.StringIO(text.decode("utf-8"), newline="")))
    body = {"event_name": SPECS[0], "program_name": "load",
            "event": [dict(zip(table[0], r)) for r in table[1:]]}
    return json.dumps(body, ensure_ascii=False).encode("utf-8"), part


@dataclass
class Payload:
    """One upload: its bytes (dropped once sent) and what must come out of it."""

    seq: int
    kind: str                                    # "small" | "large" | "zip" | "json"
    filename: str
    body: bytes | None
    parts: dict[str, Part]                       # spec name (ZIP member stem) -> rows

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.parts.values())

    @property
    def route(self) -> str:
        return {"zip": "national_programs", "json": "event"}.get(self.kind, "new_programs")

    @property
    def fields(self) -> dict[str, str]:
        if self.kind == "zip":
            return {}
        return {"ingestion_type": "event", "ingestion_name": SPECS[0], "program_name": "load"}


def make_payload(run: str, seq: int, kind: str, rows: int, rng: random.Random) -> Payload:
    tag = f"{run}u{seq}"
    if kind == "json":
        body, part = make_json(tag, rows, rng)
        return Payload(seq, kind, f"load-{seq}.json", body, {SPECS[0]: part})
    if kind != "zip":
        body, part = make_csv(tag, rows, rng)
        return Payload(seq, kind, f"load-{seq}.csv", body, {SPECS[0]: part})
    out, parts = io.BytesIO(), {}
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for k, name in enumerate(SPECS):
            body, parts[name] = make_csv(f"{tag}m{k}", rows if k == 0 else rows // 2 + 1, rng)
            z.writestr(f"{name}.csv", body)
    return Payload(seq, kind, f"load-{seq}.zip", out.getvalue(), parts)


def ci_plan(run: str, seed: int = 8) -> list[Payload]:
    """The test's fixed plan: 32 uploads launched at once — 26 small CSVs, 2 mid-size ones that
    go through the validation worker pool, and 4 ZIPs of two members."""
    rng = random.Random(seed)
    plan = [make_payload(run, i, "small", rng.randint(10, 1000), rng) for i in range(26)]
    plan += [make_payload(run, 26 + i, "large", rng.randint(8_000, 12_000), rng) for i in range(2)]
    plan += [make_payload(run, 28 + i, "zip", rng.randint(50, 3_000), rng) for i in range(4)]
    return plan


def small_plan(run: str, count: int, seed: int, kind: str = "small",
               rows: tuple[int, int] = (10, 1000)) -> list[Payload]:
    """``count`` uploads of ``kind`` ("small" CSVs or "json" rows), made before the clock
    starts so that the client's time goes to sending them, not to making them."""
    rng = random.Random(seed)
    return [make_payload(run, i, kind, rng.randint(*rows), rng) for i in range(count)]


class Mix:
    """The benchmark's endless mix until the deadline: mostly small CSVs, every ``large_every``-th
    upload a 50k-200k row CSV, every ``zip_every``-th a ZIP."""

    def __init__(self, run: str, seed: int, large_every: int, zip_every: int) -> None:
        self.run, self.rng = run, random.Random(seed)
        self.large_every, self.zip_every, self.seq = large_every, zip_every, 0

    def next(self) -> Payload:
        seq, rng = self.seq, self.rng
        self.seq += 1
        if self.large_every and seq % self.large_every == self.large_every - 1:
            return make_payload(self.run, seq, "large", rng.randint(50_000, 200_000), rng)
        if self.zip_every and seq % self.zip_every == self.zip_every - 1:
            return make_payload(self.run, seq, "zip", rng.randint(200, 5_000), rng)
        return make_payload(self.run, seq, "small", rng.randint(10, 1000), rng)


# -- the server --------------------------------------------------------------------------------

def set_toml_keys(text: str, section: str, values: dict[str, Any]) -> str:
    """``text`` with ``values`` set in ``[section]`` (lines replaced, or added under the header).
    Values are written as JSON, which TOML reads the same for strings, numbers and booleans."""
    lines, out, current, done = text.splitlines(), [], None, set()

    def flush_missing() -> None:
        if current == f"[{section}]":
            out.extend(f"{k} = {json.dumps(v)}" for k, v in values.items() if k not in done)
            done.update(values)

    for line in lines:
        if line.startswith("["):
            flush_missing()
            current = line.strip()
        elif current == f"[{section}]" and line.split("=")[0].strip() in values:
            key = line.split("=")[0].strip()
            out.append(f"{key} = {json.dumps(values[key])}")
            done.add(key)
            continue
        out.append(line)
    flush_missing()
    if not done:
        out += [f"[{section}]", *(f"{k} = {json.dumps(v)}" for k, v in values.items())]
    return "\n".join(out) + "\n"


@dataclass
class LoadServerConfig(ServerConfig):
    """``server_process.ServerConfig`` plus ``--workers`` processes, S3 storage and [ingest] keys."""

    server_workers: int = 1
    storage: dict[str, Any] | None = None         # the [storage] section; None = local folder
    ingest: dict[str, Any] = field(default_factory=dict)
    database: dict[str, Any] = field(default_factory=dict)

    def toml(self) -> str:
        text = set_toml_keys(super().toml(), "server", {"workers": self.server_workers})
        if self.storage:
            text = set_toml_keys(text, "storage", self.storage)
        if self.ingest:
            text = set_toml_keys(text, "ingest", self.ingest)
        if self.database:
            text = set_toml_keys(text, "database", self.database)
        return text


async def get_token(session: aiohttp.ClientSession, url: str, secret: str) -> str:
    from testkit.server_process import CLIENT_ID

    async with session.get(f"{url}/api/ingestion/generatejwt",
                           headers={"Authorization": aiohttp.encode_basic_auth(CLIENT_ID, secret),
                                    "Accept": "application/json"}) as r:
        body = await r.json()
        if r.status != 200:
            raise RuntimeError(f"generatejwt: {r.status} {body}")
        return body["token"]


async def register_specs(session: aiohttp.ClientSession, url: str, token: str) -> None:
    for name in SPECS:
        async with session.post(f"{url}/api/spec/event", json=load_spec(name),
                                headers={"Authorization": f"Bearer {token}"}) as r:
            if r.status not in (200, 201):
                raise RuntimeError(f"spec {name}: {r.status} {await r.text()}")


# -- the load ----------------------------------------------------------------------------------

@dataclass
class Outcome:
    payload: Payload
    bytes: int
    status: int                   # HTTP status; 0 when the request itself failed
    seconds: float
    body: dict[str, Any]
    error: str | None = None      # a client-side failure (connection reset, timeout, bad JSON)


async def post(session: aiohttp.ClientSession, url: str, token: str, p: Payload) -> Outcome:
    assert p.body is not None
    size = len(p.body)
    if p.kind == "json":
        form: Any = p.body
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    else:
        form = aiohttp.FormData()
        for k, v in p.fields.items():
            form.add_field(k, v)
        form.add_field("file", p.body, filename=p.filename,
                       content_type="application/zip" if p.kind == "zip" else "text/csv")
        headers = {"Authorization": f"Bearer {token}"}
    p.body = None  # the form holds it until sent; the outcome only needs the expectations
    t0 = time.perf_counter()
    try:
        async with session.post(f"{url}/api/ingestion/{p.route}", data=form, timeout=TIMEOUT,
                                headers=headers) as r:
            text = await r.text()
            secs = time.perf_counter() - t0
            try:
                body = json.loads(text)
            except ValueError:
                return Outcome(p, size, r.status, secs, {}, f"not JSON: {text[:200]!r}")
            return Outcome(p, size, r.status, secs, body)
    except (aiohttp.ClientError, asyncio.TimeoutError) as e:
        return Outcome(p, size, 0, time.perf_counter() - t0, {}, f"{type(e).__name__}: {e}")


async def drive(url: str, token: str, next_payload: Callable[[], Payload | None],
                concurrency: int) -> list[Outcome]:
    """``concurrency`` uploads in flight until ``next_payload`` returns None."""
    outcomes: list[Outcome] = []
    feed = asyncio.Lock()  # the feed is not thread-safe: one generator call at a time
    connector = aiohttp.TCPConnector(limit=concurrency + 4)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def take() -> Payload | None:
            async with feed:
                # Generating a 200k-row file takes a while: off the loop, so the requests in
                # flight keep being sent and timed.
                return await asyncio.to_thread(next_payload)

        async def worker() -> None:
            while (p := await take()) is not None:
                outcomes.append(await post(session, url, token, p))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return outcomes


# -- the accounting ----------------------------------------------------------------------------

async def read_rows(storage: Any, key: str | None, errors: bool) -> list[list[str]]:
    """The rows of one output object, header checked and left out; an error file's rows
    without their ``_errors`` message (the digest covers the cells and ``_line``)."""
    if not key:
        return []
    data = b"".join([chunk async for chunk in storage.read(key)])
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    head = rows[0]
    want = HEADER + (["_line", "_errors"] if errors else [])
    if head != want:
        raise ValueError(f"{key}: header {head!r}, expected {want!r}")
    bad = [r for r in rows[1:] if len(r) != len(want)]
    if bad:
        raise ValueError(f"{key}: {len(bad)} rows of the wrong width, e.g. {bad[0]!r}")
    return [r[:-1] for r in rows[1:]] if errors else rows[1:]


def object_keys(body: dict[str, Any]) -> set[str]:
    keys = set()
    for v in (body.get("objects") or {}).values():
        for k in v if isinstance(v, list) else [v]:
            if isinstance(k, str) and k and k != body.get("objects", {}).get("duplicate_of"):
                keys.add(k)
    return keys


async def account(storage: Any, o: Outcome) -> list[str]:
    """What went wrong with one upload's rows: lost, duplicated, misplaced or foreign ids."""
    p, b = o.payload, o.body
    where = f"upload {p.seq} ({p.kind}, {p.rows} rows)"
    if o.error or o.status != 200 or b.get("status") != "uploaded":
        return [f"{where}: HTTP {o.status} {o.error or json.dumps(b)[:300]}"]
    members = {m["name"]: m for m in b.get("members") or []} if p.kind == "zip" \
        else {SPECS[0]: b}
    problems = []
    for name, part in p.parts.items():
        m = members.get(name)
        if m is None:
            problems.append(f"{where}: no member {name} in the answer")
            continue
        bad = part.invalid_ids()
        good = part.ids() - bad
        for k, want in (("total_rows", part.rows), ("valid_rows", len(good)),
                        ("invalid_rows", len(bad))):
            if m.get(k) != want:
                problems.append(f"{where} {name}: {k} = {m.get(k)}, expected {want}")
        try:
            valid_rows = await read_rows(storage, m["objects"]["valid"], errors=False)
            error_rows = await read_rows(storage, m["objects"]["errors"], errors=True)
        except ValueError as e:
            problems.append(f"{where} {name}: {e}")
            continue
        # Every written row, cell by cell, equals what was sent (and where it was sent from).
        if content_digest(valid_rows).hexdigest() != part.valid_digest:
            problems.append(f"{where} {name}: valid rows differ from the rows sent")
        if content_digest(error_rows).hexdigest() != part.error_digest:
            problems.append(f"{where} {name}: rejected rows differ from the rows sent "
                            "(cells or _line)")
        valid, rejected = [r[0] for r in valid_rows], [r[0] for r in error_rows]
        seen = Counter(valid + rejected)
        checks = {"duplicated": {i for i, n in seen.items() if n > 1},
                  "lost": (good | bad) - seen.keys(),
                  "foreign": seen.keys() - (good | bad),
                  "valid but rejected": set(rejected) & good,
                  "invalid but landed": set(valid) & bad}
        problems += [f"{where} {name}: {len(ids)} {what}, e.g. {sorted(ids)[:3]}"
                     for what, ids in checks.items() if ids]
    return problems


async def staged_left(storage: Any) -> list[str]:
    """Staged (never published) data left behind: local staging files or open S3 multiparts."""
    from ingest_server.storage import LocalStorage

    if isinstance(storage, LocalStorage):
        return sorted(str(p) for p in storage.staging.rglob("*") if p.is_file())
    page = await storage.client.list_multipart_uploads(Bucket=storage.bucket,
                                                       Prefix=storage.prefix)
    return sorted(u["Key"] for u in page.get("Uploads", []))


async def audit(config_path: Path, dsn: str, outcomes: list[Outcome]) -> list[str]:
    """Every upload accounted for row by row, and nothing in storage or the database besides."""
    from ingest_server.config import load_settings
    from ingest_server.storage import make_storage

    settings = load_settings(str(config_path), env={})
    storage = make_storage(settings.storage)
    await storage.start()
    try:
        problems = []
        for o in outcomes:
            problems += await account(storage, o)
        named = set().union(*(object_keys(o.body) for o in outcomes)) if outcomes else set()
        stored = set(await published(storage))
        if stored - named:
            problems.append(f"{len(stored - named)} objects no answer named, e.g. "
                            f"{sorted(stored - named)[:3]}")
        if named - stored:
            problems.append(f"{len(named - stored)} named objects missing, e.g. "
                            f"{sorted(named - stored)[:3]}")
        if left := await staged_left(storage):
            problems.append(f"{len(left)} staged leftovers, e.g. {left[:3]}")
    finally:
        await storage.close()
    conn = await asyncpg.connect(dsn)
    try:
        statuses = dict(await conn.fetch("SELECT status, count(*) FROM uploads GROUP BY 1"))
    finally:
        await conn.close()
    if statuses != ({"uploaded": len(outcomes)} if outcomes else {}):
        problems.append(f"uploads table: {statuses}, expected {len(outcomes)} uploaded")
    return problems


# -- one run -----------------------------------------------------------------------------------

@dataclass
class Report:
    server_workers: int
    ingest_workers: int
    backend: str
    seconds: float
    outcomes: list[Outcome]
    rss_peak_mb: float
    rss_start_mb: float
    pss_peak_mb: float
    processes: int
    problems: list[str]
    server_cpu_s: float = 0.0     # user+sys of the server's process tree during the load
    client_cpu_s: float = 0.0     # of this process (the load client) during the load
    db_cpu_s: float = 0.0         # of the PostgreSQL backends serving the run's database

    def statuses(self) -> Counter:
        return Counter(o.status for o in self.outcomes)

    @property
    def count_5xx(self) -> int:
        return sum(1 for o in self.outcomes if o.status >= 500)

    def small_latencies(self) -> list[float]:
        """Of the small uploads (10-1,000 rows): CSV files, or JSON rows in a JSON-only run."""
        kind = "json" if all(o.payload.kind == "json" for o in self.outcomes) else "small"
        return sorted(o.seconds for o in self.outcomes if o.payload.kind == kind)

    def cpu_ms_per_upload(self) -> str:
        """Server / PostgreSQL / client CPU milliseconds per upload: what the machine's other
        jobs distort least (wall time on a shared machine depends on them)."""
        n = max(1, len(self.outcomes))
        return (f"{self.server_cpu_s / n * 1000:.1f}/{self.db_cpu_s / n * 1000:.1f}/"
                f"{self.client_cpu_s / n * 1000:.1f}")

    def row(self) -> str:
        lat = self.small_latencies()

        def pct(q: float) -> float:
            return lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else float("nan")

        rows = sum(o.payload.rows for o in self.outcomes)
        mbytes = sum(o.bytes for o in self.outcomes) / MB
        kinds = Counter(o.payload.kind for o in self.outcomes)
        return (f"{self.server_workers:>7}{self.ingest_workers:>7}  {self.backend:<6}"
                f"{len(self.outcomes):>6}{kinds['small'] + kinds['json']:>6}{kinds['large']:>6}"
                f"{kinds['zip']:>5}"
                f"{rows:>10,}{mbytes:>8.1f}{self.seconds:>7.1f}{self.uploads_per_s:>7.0f}"
                f"{rows / self.seconds:>9,.0f}"
                f"{mbytes / self.seconds:>7.2f}{pct(0.5):>8.0f}{pct(0.99):>8.0f}"
                f"{(lat[-1] * 1000 if lat else float('nan')):>8.0f}"
                f"{self.rss_start_mb:>7.0f}{self.rss_peak_mb:>7.0f}{self.pss_peak_mb:>7.0f}"
                f"{self.processes:>6}{self.count_5xx:>5}{self.cpu_ms_per_upload():>16}  "
                f"{'OK' if not self.problems else f'{len(self.problems)} PROBLEMS'}")

    @property
    def uploads_per_s(self) -> float:
        return len(self.outcomes) / self.seconds if self.seconds else 0.0

    def summary(self) -> dict[str, Any]:
        """The figures of the run, for ``make bench``'s table and the docs' chart."""
        n = max(1, len(self.outcomes))
        return {"server_workers": self.server_workers, "ingest_workers": self.ingest_workers,
                "uploads": len(self.outcomes), "rows": sum(o.payload.rows for o in self.outcomes),
                "seconds": self.seconds, "uploads_per_s": self.uploads_per_s,
                "rows_per_s": sum(o.payload.rows for o in self.outcomes) / self.seconds,
                "p50_ms": self.percentile_ms(0.5), "p99_ms": self.percentile_ms(0.99),
                "rss_peak_mb": self.rss_peak_mb, "pss_peak_mb": self.pss_peak_mb,
                "server_cpu_ms": self.server_cpu_s / n * 1000,
                "db_cpu_ms": self.db_cpu_s / n * 1000, "client_cpu_ms": self.client_cpu_s / n * 1000,
                "count_5xx": self.count_5xx, "problems": len(self.problems),
                "load": os.getloadavg()[0]}

    def percentile_ms(self, q: float) -> float:
        lat = self.small_latencies()
        return lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else float("nan")


HEAD = (f"{'srv wk':>7}{'val wk':>7}  {'store':<6}{'ups':>6}{'small':>6}{'large':>6}{'zip':>5}"
        f"{'rows':>10}{'MB':>8}{'s':>7}{'ups/s':>7}{'rows/s':>9}{'MB/s':>7}{'p50 ms':>8}"
        f"{'p99 ms':>8}{'max ms':>8}{'RSS0':>7}{'RSS pk':>7}{'PSS pk':>7}{'procs':>6}{'5xx':>5}"
        f"{'CPU ms/up s/db/c':>16}  accounting")


def print_reports(reports: list[Report]) -> None:
    print("\nlatency = small uploads (10-1,000 rows; JSON bodies in a JSON-only run), request "
          "start to answer; RSS/PSS MB of the server's process tree (RSS0 before the load); "
          "rows/s over the whole run; CPU ms per upload of the server tree / the PostgreSQL "
          "backends of the run's database / the load client")
    print(HEAD)
    print("-" * len(HEAD))
    for r in reports:
        print(r.row())
    for r in reports:
        print(f"workers={r.server_workers}: HTTP statuses {dict(r.statuses())}")
        for p in r.problems[:20]:
            print(f"   {p}")


async def run_load(run_dir: Path, dsn: str, next_payload: Callable[[], Payload | None], *,
                   concurrency: int, server_workers: int, ingest_workers: int,
                   storage: dict[str, Any] | None = None,
                   ingest: dict[str, Any] | None = None,
                   profile: Path | None = None, profile_gil: bool = False) -> Report:
    """Start a server on a fresh database, run the load, stop it, audit, report.
    ``profile``: where to write a ``py-spy record`` of the server tree during the load
    (``profile_gil``: of the thread holding the GIL only)."""
    secret = secrets.token_urlsafe(24)
    async with fresh_database(dsn) as db:
        cfg = LoadServerConfig(run_dir, free_port(), db, ingest_workers, secret,
                               server_workers=server_workers, storage=storage,
                               ingest=ingest or {},
                               # every in-flight upload may hold a connection for a moment
                               database={"pool_max": max(10, concurrency // server_workers + 4)})
        server = cfg.process()
        pids: set[int] = set()
        try:
            await server.start_async()
            async with aiohttp.ClientSession() as session:
                token = await get_token(session, server.url, secret)
                await register_specs(session, server.url, token)
            pids.update(tree_pids(server.pid))
            spy = PySpy(server.pid, profile, gil=profile_gil) if profile is not None else None
            if spy is not None:
                await spy.start()
            with TreeSampler(server.pid) as sampler:
                db_cpu = DatabaseCpu(db)
                await db_cpu.start()
                client0 = _cpu_self()
                t0 = time.perf_counter()
                outcomes = await drive(server.url, token, next_payload, concurrency)
                seconds = time.perf_counter() - t0
                client_cpu = _cpu_self() - client0
                db_cpu_s = await db_cpu.stop()
            if spy is not None:
                spy.stop()
        finally:
            if server.process is not None:
                pids.update(tree_pids(server.pid))
            server.stop()
            left = await outlived(pids)
        pids.update(sampler.peak.hwm_kib)
        problems = await audit(run_dir / "config.toml", db, outcomes)
    if left:
        problems.append(f"{len(left)} server processes still running after the server was "
                        f"stopped (now killed): {left}")
    peak = sampler.peak
    return Report(server_workers, ingest_workers, "s3" if storage else "local", seconds,
                  outcomes, peak.tree_bytes / MB, peak.start_tree_bytes / MB,
                  peak.pss_tree_bytes / MB, len(pids), problems,
                  server_cpu_s=peak.cpu_seconds(), client_cpu_s=client_cpu, db_cpu_s=db_cpu_s)


def _cpu_self() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


class DatabaseCpu:
    """CPU seconds of the PostgreSQL backends connected to one database (PostgreSQL on this
    machine): read from /proc at the start and the end of the load. Backends that come and
    go in between are missed, so it is a floor (the server's pool keeps its connections)."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.first: dict[int, int] = {}

    async def _ticks(self) -> dict[int, int]:
        conn = await asyncpg.connect(self.dsn)
        try:
            pids = [r["pid"] for r in await conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()")]
        finally:
            await conn.close()
        return {pid: t for pid in pids if (t := cpu_ticks(pid)) is not None}

    async def start(self) -> None:
        self.first = await self._ticks()

    async def stop(self) -> float:
        last = await self._ticks()
        return sum(t - self.first.get(pid, 0) for pid, t in last.items()) / TICKS


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] not in ("Z", "X")
    except OSError:
        return False


async def outlived(pids: set[int], grace_s: float = 15.0) -> list[int]:
    """The processes of the server's tree still running ``grace_s`` after it was stopped;
    they are SIGKILLed so that a failed check does not leak them."""
    deadline = time.monotonic() + grace_s
    while (left := sorted(p for p in pids if _running(p))) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return left


def plan_feed(plan: list[Payload]) -> Callable[[], Payload | None]:
    it = iter(plan)
    return lambda: next(it, None)
