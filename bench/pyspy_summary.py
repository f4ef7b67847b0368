#!/usr/bin/env python3
"""Where the time goes, from a ``py-spy record --subprocesses --format raw`` file.

usage: pyspy_summary.py PROFILE.txt [--top N] [--where]
Prints samples per process (the server's event loop vs the validation workers), then per process
the functions with the most self time and the most inclusive time. ``--where`` instead splits the
server process's samples by what an upload spends them on (``WHERE``: the first group a sample's
stack matches), as docs/benchmarks.md shows them. Samples are of non-idle
threads only (py-spy's default), so a process's share is its CPU use, not its wall time.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter, defaultdict

_PROC = re.compile(r'^process \d+:"')


def split_stack(stack: str) -> tuple[list[str], list[str]]:
    """(process command lines, code frames). A command line may itself hold ';'."""
    procs: list[str] = []
    code: list[str] = []
    parts = iter(stack.split(";"))
    for fr in parts:
        if _PROC.match(fr):
            while not fr.endswith('"'):
                fr += ";" + next(parts, '"')
            procs.append(fr)
        else:
            code.append(fr)
    return procs, code


# (group, frames any of which puts a sample in it), tried in order; the last takes the rest.
WHERE = [("validation: CSV parse, checks, CSV out", ("InlineRunner.map_ordered",)),
         ("database (asyncpg)", ("asyncpg/",)),
         ("disk threads (stage, fsync, rename)", ("concurrent/futures/thread.py",)),
         ("form reading (multipart)", ("open_upload_form", "until_file", "file_chunks",
                                       "part_chunks")),
         ("auth (JWT)", ("TokenService.verify",)),
         ("answer (JSON, write)", ("json_response", "write_eof")),
         ("upload bookkeeping (lifecycle, keys, conclude)", ("Lifecycle.", "conclude", "layout",
                                                             "CsvPass.run", "stream_csv",
                                                             "ingest_csv")),
         ("HTTP server (aiohttp, asyncio, outside the handler)", ("",))]


def where(code: list[str]) -> str:
    stack = ";".join(code)
    return next(name for name, frames in WHERE if any(f in stack for f in frames))


def kind(cmdline: str) -> str:
    if "multiprocessing" in cmdline or "csvstream.workermain" in cmdline:
        return "resource_tracker" if "resource_tracker" in cmdline else "worker"
    return "server"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("profile")
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--where", action="store_true", help="the server's samples by group")
    args = ap.parse_args()
    groups: Counter[str] = Counter()
    per_proc: Counter[str] = Counter()
    self_time: dict[str, Counter[str]] = defaultdict(Counter)
    incl_time: dict[str, Counter[str]] = defaultdict(Counter)
    with open(args.profile) as f:
        for line in f:
            stack, _, n = line.rstrip("\n").rpartition(" ")
            count = int(n)
            procs, code = split_stack(stack)
            who = kind(procs[-1]) if procs else "?"
            per_proc[who] += count
            if code:
                self_time[who][code[-1]] += count
                if who == "server":
                    groups[where(code)] += count
            for fr in set(code):
                incl_time[who][fr] += count
    total = sum(per_proc.values())
    if args.where:
        n = sum(groups.values())
        print(f"{n} server samples")
        for name, c in groups.most_common():
            print(f"{c / n:6.1%}  {name}")
        return
    print(f"{total} samples: " + ", ".join(f"{k} {v} ({v / total:.0%})"
                                           for k, v in per_proc.most_common()))
    for who, n in per_proc.most_common():
        print(f"\n== {who}: self time")
        for fr, c in self_time[who].most_common(args.top):
            print(f"{c / n:6.1%}  {fr}")
        print(f"== {who}: inclusive time")
        for fr, c in incl_time[who].most_common(args.top + 10):
            print(f"{c / n:6.1%}  {fr}")


if __name__ == "__main__":
    main()
