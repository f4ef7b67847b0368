#!/usr/bin/env python3
"""``make bench``: every benchmark in one run, then one table with the reference figures.

usage: bench_all.py [--quick] [--sweep] [--dsn DSN]

Runs, one after the other on the same machine (each prints its own details into
bench/out/all-<case>.log): bench_ingest.py (the 1M-row CSV, ZIP and, unless --quick, XLSX, with
the pipeline/engine ratio), bench_load.py --small (many small uploads, 32 in flight), bench_load.py --json (1,000-row
JSON bodies), bench_resumable.py and bench_validate.py. The table gives each case's figure,
its ratio line and the reference (cQube v5.0.5 on the same file and machine kind, the
small-upload floor of shared/bench/small_baseline.py, or the case's own target), with the
machine's load: on a shared machine compare figures of one run, never across runs.

``--sweep`` also measures rows/s against file size (10k, 100k, 1M rows) and uploads/s against
concurrency (1, 8, 32, 64 in flight), saves them to bench/out/sweep.json and draws the docs'
charts (docs/img/bench-*.svg, by bench_chart.py). ``--quick``: fewer uploads and one repeat.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
PY = sys.executable

# What each case is compared with (bench/data/README.md, shared/bench/README.md, issue 26).
REFERENCE = {
    "csv": "cQube 20,000-23,000 rows/s, 877-911 MB RSS",
    "zip": "cQube 18,000-24,000 rows/s, 795-842 MB RSS",
    "xlsx": "cQube takes no workbooks",
    "small": "floor (small_baseline.py) 224-312 uploads/s; goal 400/s, p99 <= 250 ms",
    "json": "no reference system figure (cQube's event route: JSON rows, same engine here)",
    "resumable": "target <= 1.5x the one-shot upload",
    "validate": "stock Cerberus ~1,300 rows/s; goal all cores >= 1.7x one core",
}


def run(name: str, args: list[str]) -> tuple[int, str]:
    """Run one benchmark script; its output goes to bench/out/all-<name>.log too."""
    print(f"== {name}: {' '.join(args)}  (load {os.getloadavg()[0]:.1f})", flush=True)
    proc = subprocess.run([PY, *args], cwd=HERE.parent, capture_output=True, text=True)
    text = proc.stdout + proc.stderr
    (OUT / f"all-{name}.log").write_text(text)
    if proc.returncode:
        print(text[-3000:])
    return proc.returncode, text


def newest(pattern: str, since: float) -> Path | None:
    files = [p for p in OUT.glob(pattern) if p.stat().st_mtime >= since]
    return max(files, key=lambda p: p.stat().st_mtime) if files else None


def ingest_rows(rows: int, repeat: int, skip_zip: bool, xlsx: bool = False) -> dict:
    """bench_ingest.py's saved figures (best run of each case), and its checks."""
    since = time.time()
    code, text = run(f"ingest-{rows}", ["bench/bench_ingest.py", "--rows", str(rows),
                                        "--repeat", str(repeat),
                                        *(["--skip-zip"] if skip_zip else []),
                                        *(["--xlsx"] if xlsx else [])])
    saved = newest("bench_ingest-*.json", since)
    data = json.loads(saved.read_text()) if saved else {"results": []}
    data["ok"] = code == 0 and "checks FAILED" not in text
    data["ratio_lines"] = [line for line in text.splitlines() if "pipeline/engine" in line]
    return data


def load(args: list[str], name: str) -> dict:
    path = OUT / f"all-{name}.json"
    code, _ = run(name, ["bench/bench_load.py", "--server-workers", "1", *args,
                         "--json-out", str(path)])
    report = json.loads(path.read_text())[0] if path.exists() else {}
    report["ok"] = code == 0
    return report


def figures(text: str, pattern: str) -> list[str]:
    return re.findall(pattern, text)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer uploads, one repeat each")
    ap.add_argument("--sweep", action="store_true",
                    help="also rows/s by file size and uploads/s by concurrency, and the charts")
    ap.add_argument("--dsn", default=os.environ.get("INGEST_TEST_DSN", ""))
    args = ap.parse_args()
    if args.dsn:
        os.environ["INGEST_TEST_DSN"] = args.dsn
    OUT.mkdir(exist_ok=True)
    repeat, small, bodies = (1, 300, 60) if args.quick else (2, 2000, 200)
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    load_before = os.getloadavg()

    big = ingest_rows(1_000_000, repeat, skip_zip=False, xlsx=not args.quick)
    small_run = load(["--small", str(small), "--concurrency", "32"], "small")
    json_run = load(["--json", str(bodies), "--json-rows", "1000", "--concurrency", "8"], "json")
    code, resumable = run("resumable", ["bench/bench_resumable.py", "--repeat", "1"])
    resumable_ok = code == 0
    code, validate = run("validate", ["bench/bench_validate.py"])
    validate_ok = code == 0 and "MISMATCH" not in validate

    rows = []
    for r in big.get("results", []):
        best = min(x["seconds"] for x in r["ingest"])
        pss = max(x["pss_peak_mb"] for x in r["ingest"])
        rss = max(x["tree_peak_mb"] for x in r["ingest"])
        ratio = next((line.split(":", 1)[1].strip() for line in big["ratio_lines"]
                      if line.startswith(r["case"] + ":")), "")
        rows.append((f"big {r['case'].upper()}, {r['rows']:,} rows",
                     f"{r['rows'] / best:,.0f} rows/s; PSS {pss:.0f} MB (RSS {rss:.0f})",
                     ratio, REFERENCE.get(r["case"], ""), big["ok"]))
    if small_run:
        rows.append(("small uploads, 10-1,000 rows, 32 in flight",
                     f"{small_run.get('uploads_per_s', 0):,.0f} uploads/s; p50 "
                     f"{small_run.get('p50_ms', 0):.0f} / p99 {small_run.get('p99_ms', 0):.0f} ms; "
                     f"PSS {small_run.get('pss_peak_mb', 0):.0f} MB (RSS "
                     f"{small_run.get('rss_peak_mb', 0):.0f})",
                     f"CPU ms/upload server {small_run.get('server_cpu_ms', 0):.1f}, PostgreSQL "
                     f"{small_run.get('db_cpu_ms', 0):.1f}, client {small_run.get('client_cpu_ms', 0):.1f}",
                     REFERENCE["small"], small_run["ok"]))
    if json_run:
        rows.append(("JSON rows, 1,000-row bodies, 8 in flight",
                     f"{json_run.get('rows_per_s', 0):,.0f} rows/s; p99 "
                     f"{json_run.get('p99_ms', 0):.0f} ms; PSS {json_run.get('pss_peak_mb', 0):.0f} MB",
                     f"{json_run.get('uploads_per_s', 0):,.1f} bodies/s; CPU ms/body server "
                     f"{json_run.get('server_cpu_ms', 0):.1f}", REFERENCE["json"], json_run["ok"]))
    ratios = figures(resumable, r"ratio (\d+\.\d+)x")
    rows.append(("resumable (tus), 1M rows, one dropped connection",
                 ", ".join(figures(resumable, r"resumable with one dropped connection "
                                              r"\(resumed at [\d.]+ MB\) ([\d.]+ s)")) or "?",
                 f"{', '.join(ratios)}x the one-shot upload" if ratios else "",
                 REFERENCE["resumable"], resumable_ok))
    one = figures(validate, r"compiled, 1 core\s+([\d,]+)")
    pool = figures(validate, r"compiled, \d+ workers\s+([\d,]+)")
    rows.append(("validate: the engine alone",
                 f"{one[0] if one else '?'} rows/s on 1 core, {pool[0] if pool else '?'} on all",
                 " ".join(figures(validate, r"all cores/1 core \(parse\+check\):\s+([\d.]+)"))
                 + "x all cores / one", REFERENCE["validate"], validate_ok))

    print(f"\nmake bench, {started} UTC, {os.cpu_count()} CPUs; load at start "
          f"{load_before[0]:.1f}, at end {os.getloadavg()[0]:.1f} (figures of this run compare "
          "with each other; details in bench/out/all-*.log)")
    width = max(len(r[0]) for r in rows)
    for case, figure, ratio, ref, ok in rows:
        print(f"{case:<{width}}  {figure}")
        print(f"{'':<{width}}    ratio: {ratio or '-'}")
        print(f"{'':<{width}}    reference: {ref}; checks {'OK' if ok else 'FAILED'}")
    failed = not all(r[4] for r in rows)

    if args.sweep:
        sweep = {"when": started, "sizes": [], "concurrency": []}
        for n in (10_000, 100_000, 1_000_000):
            data = ingest_rows(n, 1, skip_zip=True)
            for r in data.get("results", []):
                sweep["sizes"].append({"rows": n, "mb": r["mbytes"],
                                       "rows_per_s": n / min(x["seconds"] for x in r["ingest"])})
        for c in (1, 8, 32, 64):
            report = load(["--small", str(max(100, small // 4)), "--concurrency", str(c)],
                          f"sweep-c{c}")
            sweep["concurrency"].append({"concurrency": c, **report})
        (OUT / "sweep.json").write_text(json.dumps(sweep, indent=1))
        subprocess.run([PY, str(HERE / "bench_chart.py"), str(OUT / "sweep.json")], check=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
