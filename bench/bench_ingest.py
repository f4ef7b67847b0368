#!/usr/bin/env python3
"""End-to-end ingest benchmark: a real server on loopback, the reference's benchmark file over HTTP.

usage: bench_ingest.py [--rows N] [--size-gb G] [--skip-zip] [--skip-csv] [--xlsx] [--workers N]
                       [--chunk-bytes B] [--repeat R] [--dsn DSN] [--keep] [--py-spy [gil]]

Starts ``python -m ingest_server`` with a temporary config (a fresh database on ``--dsn`` /
``INGEST_TEST_DSN``, dropped after; without one, embedded pgserver), registers
bench/data/bench_spec.json as event spec "bench", and uploads, streaming from disk:
  csv   the 1M-row file (gen_bench_csv.py) to /api/ingestion/new_programs
  zip   the same file as bench.zip holding bench.csv, to /api/ingestion/national_programs
  xlsx  with --xlsx: the same rows as an .xlsx workbook (bench_data.write_xlsx), to new_programs
  NGB   with --size-gb: the body repeated to ~N GB (header once), to new_programs
Each case also POSTs the same bytes to a raw sink (a separate aiohttp process that reads the
file part with read_chunk(256 KiB) and discards it): the transport's own ceiling, same run.
Counts are checked against the generator's (1M rows: 990,000 valid / 10,000 invalid) and the
published files are compared with the input row by row. Server peak RSS is the sum over its
process tree (server + validation workers), sampled every 50 ms, with the tree's PSS, the largest
single process and each one's VmHWM; "CPU s" is the tree's user+sys time during the upload,
the figure that other jobs on a shared machine distort least. Figures are printed (and saved
to bench/out/bench_ingest-<time>.json), not asserted. ``--py-spy`` records the first ingest
upload of each case (bench/out/pyspy-<case>.txt; summarise with pyspy_summary.py); ``--py-spy gil``
samples only the thread holding the GIL (where each process's Python CPU goes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import aiohttp

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
sys.path[:0] = [str(HERE), str(HERE.parent)]  # bench modules; ingest_server and testkit

from bench_data import SPEC, BenchFile, check_error_file, check_valid_file, csv_file, \
    repeated_file, xlsx_file, zip_file  # noqa: E402
from testkit.pyspy import PySpy  # noqa: E402
from testkit.rss_sampler import TreeSampler  # noqa: E402
from testkit.server_process import CLIENT_ID, ServerConfig, ServerProcess, free_port  # noqa: E402
from testkit.accounts import fresh_database  # noqa: E402

MB = 1e6
# cQube ingestion-ms v5.0.5 on the same file and machine kind (bench/data/README.md).
REFERENCE = {"csv": ("20-23k", "877-911"), "zip": ("18-24k", "795-842")}
TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=900)


@dataclass
class Run:
    seconds: float
    tree_peak_mb: float = 0.0
    single_peak_mb: float = 0.0
    pss_peak_mb: float = 0.0
    cpu_s: float = 0.0
    cpu_by: dict = field(default_factory=dict)
    idle_tree_mb: float = 0.0
    client_cpu_s: float = 0.0
    hwm: str = ""


@dataclass
class CaseResult:
    case: str
    rows: int
    mbytes: float
    ingest: list[Run] = field(default_factory=list)
    raw: list[Run] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)
    load: list[float] = field(default_factory=list)

    def best(self, runs: list[Run]) -> float:
        return min(r.seconds for r in runs) if runs else float("nan")

    def worst(self, runs: list[Run]) -> float:
        return max(r.seconds for r in runs) if runs else float("nan")


async def post_file(session: aiohttp.ClientSession, url: str, path: Path, *, filename: str,
                    fields: dict[str, str], headers: dict[str, str]) -> tuple[int, dict, float]:
    """POST ``path`` as the multipart ``file`` part, read from disk as it is sent.
    The text fields go first, so the server can stream the file straight into validation."""
    with path.open("rb") as f:
        form = aiohttp.FormData()
        for k, v in fields.items():
            form.add_field(k, v)
        form.add_field("file", f, filename=filename,
                       content_type="application/zip" if filename.endswith(".zip") else "text/csv")
        t0 = time.perf_counter()
        async with session.post(url, data=form, headers=headers, timeout=TIMEOUT) as r:
            body = await r.json(content_type=None)
            status = r.status
        return status, body, time.perf_counter() - t0


def cpu_self() -> float:
    """This process's CPU seconds: the client's share of a machine the server shares."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


async def get_token(session: aiohttp.ClientSession, base: str, secret: str) -> str:
    auth = aiohttp.encode_basic_auth(CLIENT_ID, secret)
    async with session.get(f"{base}/api/ingestion/generatejwt",
                           headers={"Authorization": auth, "Accept": "application/json"}) as r:
        body = await r.json()
        if r.status != 200:
            raise RuntimeError(f"generatejwt: {r.status} {body}")
        return body["token"]


async def register_spec(session: aiohttp.ClientSession, base: str, token: str) -> None:
    async with session.post(f"{base}/api/spec/event", data=SPEC.read_bytes(),
                            headers={"Authorization": f"Bearer {token}",
                                     "Content-Type": "application/json"}) as r:
        body = await r.json()
        if r.status not in (200, 201):
            raise RuntimeError(f"spec registration: {r.status} {body}")


def _single(keys: object) -> str | None:
    if isinstance(keys, list):
        return keys[0] if len(keys) == 1 else None
    return keys  # type: ignore[return-value]


def check_response(src: BenchFile, status: int, body: dict) -> list[str]:
    problems = []
    if status != 200 or body.get("status") != "uploaded":
        return [f"HTTP {status}: {json.dumps(body)[:500]}"]
    for key, want in (("total_rows", src.rows), ("valid_rows", src.valid_rows),
                      ("invalid_rows", src.invalid_rows)):
        if body.get(key) != want:
            problems.append(f"{key} = {body.get(key)}, expected {want:,}")
    return problems


def check_objects(src: BenchFile, body: dict, root: Path, keep: bool) -> list[str]:
    objects = body.get("objects") or {}
    valid, errors = _single(objects.get("valid")), _single(objects.get("errors"))
    if not valid or not errors:
        return [f"expected one valid and one error object, got {objects}"]
    problems = [p for p in (check_valid_file(src, root / valid),
                            check_error_file(src, root / errors)) if p]
    if not keep:
        for key in (valid, errors):
            (root / key).unlink(missing_ok=True)
    return problems


def drop_objects(body: dict, root: Path) -> None:
    for keys in (body.get("objects") or {}).values():
        for key in keys if isinstance(keys, list) else [keys]:
            if isinstance(key, str):
                (root / key).unlink(missing_ok=True)


async def run_case(name: str, src: BenchFile, upload: Path, *, session: aiohttp.ClientSession,
                   server: ServerProcess, sink_url: str, sink_pid: int, token: str,
                   repeat: int, keep: bool, profile_dir: Path | None,
                   profile_gil: bool = False) -> CaseResult:
    route = "national_programs" if name == "zip" else "new_programs"
    fields = {} if name == "zip" else {"ingestion_type": "event", "ingestion_name": "bench",
                                       "program_name": "bench"}
    filename = {"zip": "bench.zip", "xlsx": "bench.xlsx"}.get(name, "bench.csv")
    res = CaseResult(name, src.rows, upload.stat().st_size / MB, load=[os.getloadavg()[0]])
    headers = {"Authorization": f"Bearer {token}"}
    root = server.cfg.storage_root
    for i in range(repeat):
        with TreeSampler(sink_pid) as s:
            status, body, secs = await post_file(session, sink_url, upload, filename=filename,
                                                 fields=fields, headers={})
        if status != 200 or body.get("bytes") != upload.stat().st_size:
            res.checks.append(f"raw sink: HTTP {status} {body}")
        res.raw.append(Run(secs, s.peak.tree_bytes / MB, s.peak.single_bytes / MB,
                           s.peak.pss_tree_bytes / MB, cpu_s=s.peak.cpu_seconds()))

        spy = PySpy(server.pid, profile_dir / f"pyspy-{name}.txt", gil=profile_gil) \
            if profile_dir is not None and i == 0 else None
        client0 = cpu_self()
        with TreeSampler(server.pid) as s:
            if spy:
                await spy.start()
            try:
                status, body, secs = await post_file(
                    session, f"{server.url}/api/ingestion/{route}", upload, filename=filename,
                    fields=fields, headers=headers)
            finally:
                if spy:
                    spy.stop()
        res.ingest.append(Run(secs, s.peak.tree_bytes / MB, s.peak.single_bytes / MB,
                              s.peak.pss_tree_bytes / MB, hwm=s.peak.hwm_text(),
                              cpu_s=s.peak.cpu_seconds(), cpu_by=s.peak.cpu_by_name(),
                              idle_tree_mb=s.peak.start_tree_bytes / MB,
                              client_cpu_s=cpu_self() - client0))
        problems = check_response(src, status, body)
        if not problems and i == 0:
            problems += check_objects(src, body, root, keep)
        elif not keep:
            drop_objects(body, root)
        res.checks += [f"run {i + 1}: {p}" for p in problems]
        print(f"  {name} run {i + 1}: ingest {secs:.2f} s ({src.rows / secs:,.0f} rows/s, "
              f"tree RSS {s.peak.start_tree_bytes / MB:.0f} -> peak {s.peak.tree_bytes / MB:.0f} MB, "
              f"server CPU {s.peak.cpu_seconds():.1f} s "
              f"{ {k: round(v, 1) for k, v in s.peak.cpu_by_name().items()} }), "
              f"client CPU {res.ingest[-1].client_cpu_s:.1f} s, raw {res.raw[-1].seconds:.2f} s, "
              f"load {os.getloadavg()[0]:.2f}", flush=True)
    res.load.append(os.getloadavg()[0])
    return res


@dataclass
class Engine:
    """The validation engine alone on the same file, one core: csv.reader plus the compiled
    checks (``bench_validate``'s "compiled, 1 core"), wall and CPU time of this process."""

    rows: int
    seconds: float
    cpu_s: float

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds

    @property
    def rows_per_cpu_s(self) -> float:
        return self.rows / self.cpu_s


def measure_engine(path: Path) -> Engine:
    import csv  # noqa: PLC0415

    from ingest_server.validation import compile_schema, translate_cqube_spec  # noqa: PLC0415

    schema = translate_cqube_spec(json.loads(SPEC.read_text()))
    with path.open(newline="") as f:
        reader = csv.reader(f)
        check = compile_schema(schema).bind(next(reader)).check
        t0, c0, rows = time.perf_counter(), time.process_time(), 0
        for row in reader:
            check(row)
            rows += 1
        return Engine(rows, time.perf_counter() - t0, time.process_time() - c0)


def print_ratio(results: list[CaseResult], engine: Engine, workers: int) -> None:
    """End to end against what the engine alone could do with the same workers: rows/s over
    workers x the engine's rows/s per core (the goal: >= 0.8), and the same in CPU terms
    (rows per CPU second of the whole server tree over the engine's), which the other jobs on a
    shared machine distort less."""
    print(f"\nengine alone (parse + check, 1 core, same file): {engine.rows_per_s:,.0f} rows/s, "
          f"{engine.rows_per_cpu_s:,.0f} rows/CPU-s")
    for r in results:
        best = r.rows / r.best(r.ingest)
        cpu = r.rows / min(x.cpu_s for x in r.ingest)
        print(f"{r.case}: pipeline/engine = {best:,.0f} / ({workers} x {engine.rows_per_s:,.0f}) "
              f"= {best / (workers * engine.rows_per_s):.2f} (goal >= 0.80); CPU: "
              f"{cpu:,.0f} / {engine.rows_per_cpu_s:,.0f} rows/CPU-s = "
              f"{cpu / engine.rows_per_cpu_s:.2f}")


def print_table(results: list[CaseResult], workers: int) -> None:
    print(f"\ningest.workers={workers or os.cpu_count()} cpus={os.cpu_count()}; best of each "
          "case, s worst = slowest run; CPU s = user+sys of the server tree during the upload "
          "(least of the runs); "
          "RSS/PSS in MB (server process tree, sampled every 50 ms)")
    head = (f"{'case':<6}{'rows':>12}{'MB':>9}{'s best':>8}{'s worst':>8}{'rows/s best':>13}"
            f"{'MB/s':>8}{'CPU s':>7}{'rows/CPU-s':>11}{'RSS tree':>9}{'PSS tree':>9}"
            f"{'RSS 1 proc':>11}{'raw MB/s':>10}{'raw RSS':>8}"
            f"  {'ref rows/s':>10}{'ref RSS':>9}  load")
    print(head)
    print("-" * len(head))
    for r in results:
        best, worst = r.best(r.ingest), r.worst(r.ingest)
        raw = r.best(r.raw)
        ref = REFERENCE.get(r.case if r.case == "zip" else "csv", ("", ""))
        print(f"{r.case:<6}{r.rows:>12,}{r.mbytes:>9.1f}{best:>8.2f}{worst:>8.2f}"
              f"{r.rows / best:>13,.0f}{r.mbytes / best:>8.1f}"
              f"{min(x.cpu_s for x in r.ingest):>7.1f}"
              f"{r.rows / min(x.cpu_s for x in r.ingest):>11,.0f}"
              f"{max(x.tree_peak_mb for x in r.ingest):>9.0f}"
              f"{max(x.pss_peak_mb for x in r.ingest):>9.0f}"
              f"{max(x.single_peak_mb for x in r.ingest):>11.0f}{r.mbytes / raw:>10.1f}"
              f"{max(x.tree_peak_mb for x in r.raw):>8.0f}  {ref[0]:>10}{ref[1]:>9}  "
              f"{'-'.join(f'{x:.1f}' for x in r.load)}")
    for r in results:
        print(f"{r.case}: VmHWM per process (MB, lifetime): {r.ingest[-1].hwm}")
        print(f"{r.case}: checks " + ("OK (counts, valid file == input's good rows in order, "
                                      "error file lines)" if not r.checks else "FAILED"))
        for p in r.checks:
            print(f"   {p}")


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000, help="rows of the generated file")
    ap.add_argument("--size-gb", type=float, default=0.0,
                    help="also a ~N GB CSV (the body repeated) for the flat-memory check")
    ap.add_argument("--skip-zip", action="store_true")
    ap.add_argument("--xlsx", action="store_true",
                    help="also the same rows as an .xlsx workbook (new_programs)")
    ap.add_argument("--skip-csv", action="store_true", help="only the zip and/or --size-gb cases")
    ap.add_argument("--workers", type=int, default=0, help="ingest.workers (0 = one per CPU)")
    ap.add_argument("--chunk-bytes", type=int, default=0,
                    help="ingest.chunk_bytes (0 = the server's default)")
    ap.add_argument("--repeat", type=int, default=2, help="uploads per case (best is reported)")
    ap.add_argument("--dsn", default=os.environ.get("INGEST_TEST_DSN", ""),
                    help="PostgreSQL server to create the run's database on (default "
                         "INGEST_TEST_DSN; empty = the server's embedded pgserver)")
    ap.add_argument("--keep", action="store_true", help="keep the run directory and outputs")
    ap.add_argument("--py-spy", nargs="?", const="all", choices=("all", "gil"),
                    help="profile the first ingest upload of each case with py-spy (gil: only "
                         "the thread holding the GIL)")
    args = ap.parse_args()

    base = csv_file(OUT, args.rows)
    cases: list[tuple[str, BenchFile, Path]] = []
    if not args.skip_csv:
        cases.append(("csv", base, base.path))
    if not args.skip_zip:
        cases.append(("zip", base, zip_file(base)))
    if args.xlsx:
        cases.append(("xlsx", base, xlsx_file(base)))
    if args.size_gb:
        big = repeated_file(base, int(args.size_gb * 1e9))
        cases.append((f"{args.size_gb:g}GB", big, big.path))

    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=OUT))
    secret = secrets.token_urlsafe(24)
    sink_port = free_port()
    sink = subprocess.Popen([sys.executable, str(HERE / "raw_sink.py"), str(sink_port)],
                            stdout=subprocess.DEVNULL)
    results: list[CaseResult] = []
    try:
        async with fresh_database(args.dsn) as dsn:
            server = ServerConfig(run_dir, free_port(), dsn, args.workers, secret,
                                  args.chunk_bytes).process()
            try:
                await server.start_async()
                await _wait_sink(sink_port, sink)
                async with aiohttp.ClientSession() as session:
                    token = await get_token(session, server.url, secret)
                    await register_spec(session, server.url, token)
                    for name, src, upload in cases:
                        print(f"{name}: {upload.name} {upload.stat().st_size / MB:.1f} MB, "
                              f"{src.rows:,} rows", flush=True)
                        results.append(await run_case(
                            name, src, upload, session=session, server=server,
                            sink_url=f"http://127.0.0.1:{sink_port}/sink", sink_pid=sink.pid,
                            token=token, repeat=args.repeat, keep=args.keep,
                            profile_dir=OUT if args.py_spy else None,
                            profile_gil=args.py_spy == "gil"))
            finally:
                server.stop()
    finally:
        sink.terminate()
        sink.wait(10)
        if not args.keep:
            shutil.rmtree(run_dir, ignore_errors=True)
    print_table(results, args.workers)
    engine = measure_engine(base.path)
    print_ratio(results, engine, args.workers or os.cpu_count() or 1)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (OUT / f"bench_ingest-{stamp}.json").write_text(json.dumps(
        {"args": vars(args) | {"dsn": bool(args.dsn)}, "results": [asdict(r) for r in results],
         "engine": asdict(engine), "workers": args.workers or os.cpu_count() or 1,
         "load": os.getloadavg()[0]}, indent=1, default=str))
    return 1 if any(r.checks for r in results) else 0


async def _wait_sink(port: int, proc: subprocess.Popen) -> None:
    """The sink answers GET /sink with 405 once it listens: that is ready enough."""
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(f"http://127.0.0.1:{port}/sink") as r:
                    if r.status:
                        return
            except aiohttp.ClientError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("raw sink did not start")
            await asyncio.sleep(0.1)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
