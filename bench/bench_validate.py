#!/usr/bin/env python3
"""Benchmark: stock Cerberus vs hand-written checks vs the compiled engine (1 core, all cores).

usage: .venv/bin/python bench/bench_validate.py [--rows N] [--data DIR] [--sample N]

Uses the shared benchmark file and spec (bench/data, copies of shared/bench: gen_bench_csv.py,
bench_spec.json);
the CSV is generated once into bench/out/ (git-ignored). What each figure includes:
  * Cerberus rows: validator.validate(dict(zip(header, row))) on pre-parsed rows (a sample).
  * "check only" rows: the check on pre-parsed rows in memory (a larger sample).
  * "parse+check" rows: csv.reader over the whole file plus the check, in one process.
  * all cores: the file is cut into byte ranges at line boundaries; a ProcessPoolExecutor with
    os.cpu_count() workers (each compiled the schema once, in its initializer) reads, decodes,
    parses and checks each range. Cutting at newlines is valid because this file has no quoted
    newlines; the service's own upload pipeline is not measured here.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ingest_server.validation import (IngestValidator, compile_schema,  # noqa: E402
                                      translate_cqube_spec)
from ingest_server.validation.coercers import coerce_number  # noqa: E402

def generate(data: Path, rows: int) -> Path:
    out = ROOT / "bench" / "out" / f"bench_{rows}.csv"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(data / "gen_bench_csv.py"), str(out),
                        str(rows)], check=True)
    return out


def read_rows(path: Path, limit: int) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = []
        for row in reader:
            rows.append(row)
            if len(rows) >= limit:
                break
    return header, rows


def hand_written(header: list[str]):
    """What a person would write for this spec: same verdicts as the schema on this file."""
    text = [header.index(c) for c in ("date", "state_code", "district_code", "school_id",
                                      "gender")]
    grade = header.index("grade")
    optional = [header.index(c) for c in ("total_students", "students_present",
                                          "attendance_pct")]
    t0, t1, t2, t3, t4 = text
    o0, o1, o2 = optional

    def number(cell: str) -> bool:
        try:
            return math.isfinite(float(cell))
        except ValueError:
            return False

    def check(row: list[str]) -> bool:
        if not (row[t0] and row[t1] and row[t2] and row[t3] and row[t4]):
            return False
        if not number(row[grade]):
            return False
        for i in (o0, o1, o2):
            cell = row[i]
            if cell.strip() and not number(cell):
                return False
        return True

    return check


def rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def time_rows(fn, rows) -> tuple[float, int]:
    start = time.perf_counter()
    bad = sum(1 for row in rows if fn(row))
    return time.perf_counter() - start, bad


_CHECK = None


def _init(schema: dict, header: list[str]) -> None:
    global _CHECK
    _CHECK = compile_schema(schema).bind(header).check


def _work(task: tuple[str, int, int]) -> tuple[int, int]:
    name, start, end = task
    if end <= start:
        return 0, 0
    with open(name, "rb") as f:
        f.seek(start)
        block = f.read(end - start).decode()
    check, rows, bad = _CHECK, 0, 0
    for row in csv.reader(io.StringIO(block, newline="")):
        rows += 1
        if check(row):
            bad += 1
    return rows, bad


def _blocks(path: Path, count: int) -> list[tuple[str, int, int]]:
    """Byte ranges that start and end at line boundaries (the header line excluded)."""
    size = path.stat().st_size
    with path.open("rb") as f:
        f.readline()
        cuts = [f.tell()]
        for i in range(1, count):
            f.seek(max(size * i // count, cuts[-1]))
            f.readline()
            cuts.append(f.tell())
    cuts.append(size)
    return [(str(path), a, b) for a, b in zip(cuts, cuts[1:])]


def all_cores(path: Path, schema: dict, header: list[str], workers: int) -> tuple[float, int, int]:
    with ProcessPoolExecutor(workers, initializer=_init, initargs=(schema, header)) as pool:
        list(pool.map(_work, [("", 0, 0)] * workers * 2))  # start every worker first
        start = time.perf_counter()
        total = bad = 0
        for rows, invalid in pool.map(_work, _blocks(path, workers * 16)):
            total, bad = total + rows, bad + invalid
        return time.perf_counter() - start, total, bad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--data", type=Path, default=ROOT / "bench" / "data",
                        help="where gen_bench_csv.py and bench_spec.json are")
    parser.add_argument("--sample", type=int, default=2_000, help="rows for stock Cerberus")
    parser.add_argument("--memory-rows", type=int, default=200_000,
                        help="rows held in memory for the check-only figures")
    args = parser.parse_args()

    spec = json.loads((args.data / "bench_spec.json").read_text())
    schema = translate_cqube_spec(spec)
    path = generate(args.data, args.rows)
    header, mem_rows = read_rows(path, min(args.memory_rows, args.rows))
    sample = mem_rows[: args.sample]
    results = []  # (label, rows/s, what)

    validator = IngestValidator(schema)
    secs, _ = time_rows(lambda r: not validator.validate(dict(zip(header, r))), sample)
    stock = rate(len(sample), secs)
    results.append(("Cerberus, coerce", stock, f"check only, {len(sample):,}-row sample"))

    plain = {f: {k: v for k, v in r.items() if k != "coerce"} for f, r in schema.items()}
    plain_validator = IngestValidator(plain)
    converted = [{h: (coerce_number(c) if "coerce" in schema[h] else c) for h, c in zip(header, r)}
                 for r in sample]
    secs, _ = time_rows(lambda d: not plain_validator.validate(d, normalize=False), converted)
    results.append(("Cerberus, normalize=False", rate(len(sample), secs),
                    f"check only, pre-converted, {len(sample):,}-row sample"))

    hand = hand_written(header)
    checker = compile_schema(schema).bind(header)
    check = checker.check
    secs, _ = time_rows(lambda r: not hand(r), mem_rows)
    hand_mem = rate(len(mem_rows), secs)
    results.append(("hand-written", hand_mem, f"check only, {len(mem_rows):,} rows in memory"))
    secs, _ = time_rows(check, mem_rows)
    comp_mem = rate(len(mem_rows), secs)
    results.append(("compiled", comp_mem, f"check only, {len(mem_rows):,} rows in memory"))
    del mem_rows, sample, converted

    def parse_and(fn):
        start, total, bad = time.perf_counter(), 0, 0
        with path.open(newline="") as f:
            reader = csv.reader(f)
            next(reader)
            for row in reader:
                total += 1
                if fn(row):
                    bad += 1
        return time.perf_counter() - start, total, bad

    secs, total, hand_bad = parse_and(lambda r: not hand(r))
    hand_full = rate(total, secs)
    results.append(("hand-written, 1 core", hand_full, f"parse+check, {total:,} rows"))
    secs, total, comp_bad = parse_and(check)
    comp_full = rate(total, secs)
    results.append(("compiled, 1 core", comp_full, f"parse+check, {total:,} rows"))
    workers = os.cpu_count() or 1
    secs, pool_total, pool_bad = all_cores(path, schema, header, workers)
    pool_rate = rate(pool_total, secs)
    results.append((f"compiled, {workers} workers", pool_rate,
                    f"read+parse+check in workers, {pool_total:,} rows"))

    print(f"{'engine':<28}{'rows/s':>12}  includes")
    for label, value, what in results:
        print(f"{label:<28}{value:>12,.0f}  {what}")
    print()
    print(f"compiled/stock Cerberus (check only):       {comp_mem / stock:8.1f}x  (target >= 100x)")
    print(f"compiled/hand-written (check only):          {comp_mem / hand_mem:8.2f}   (target >= 0.80)")
    print(f"compiled/hand-written (parse+check):         {comp_full / hand_full:8.2f}")
    print(f"all cores/1 core (parse+check):              {pool_rate / comp_full:8.2f}   (target >= 1.7)")
    print(f"invalid rows: compiled {comp_bad:,}, hand-written {hand_bad:,}, pool {pool_bad:,}; "
          f"valid (compiled) {total - comp_bad:,}")
    if args.rows == 1_000_000:
        ok = comp_bad == hand_bad == pool_bad == 10_000 and total == pool_total == 1_000_000
        print("counts 990,000 valid / 10,000 invalid:", "OK" if ok else "MISMATCH")


if __name__ == "__main__":
    main()
