"""National-programme ZIPs: every ``<name>.csv`` member through the same CSV pass as state files.

The archive is checked from its central directory before any member is read; members are then
streamed one after the other (decompressed in a thread, counted against the real-byte budget)
into the shared pipeline. All members' objects are published together, or none.

What is per member and what sinks the whole upload:

- a CSV member with no event spec of its name is reported on that member (``spec_not_found``)
  and skipped: the archive may carry programmes this server does not take yet;
- a non-CSV member is reported and skipped, or refuses the archive (``limits.zip_non_csv``);
- a member over ``max_error_rate`` rejects the upload (the error names every such member);
- a file-level problem in a member (missing column, empty file, ...) or a hostile member found
  while decompressing rejects the upload, naming the member: publishing the other members would
  make a half-landed programme set that the client cannot tell from a complete one.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from ..errors import FileRejected, SpecNotFound, ZipRejected
from ..ziparchive import ByteBudget, ZipLimits, ZipMember, aiter_member, inspect_zip
from .csv_route import CsvRoute
from .model import Context, MemberOutcome, StreamStats, UploadRequest


def zip_limits(settings: Any) -> ZipLimits:
    lim = settings.limits
    return ZipLimits(max_entries=lim.zip_max_entries,
                     max_uncompressed_bytes=lim.zip_max_uncompressed_bytes,
                     max_ratio=lim.zip_max_ratio)


def refuse_non_csv(members: list[ZipMember], policy: str) -> None:
    """Under ``zip_non_csv = "reject"``, any member that is not a CSV refuses the archive."""
    others = [m.name for m in members if m.kind != "csv"]
    if others and policy == "reject":
        raise ZipRejected("the archive holds files that are not .csv", code="zip_non_csv_member",
                          names=others[:20])


async def ingest_zip(route: CsvRoute, req: UploadRequest, path: Path,
                     read: StreamStats) -> dict[str, Any]:
    """Validate and land every CSV member of the archive at ``path`` (``read``: its size and
    SHA-256, taken while it was spooled)."""
    limits = zip_limits(route.settings)

    async def work(ctx: Context) -> None:
        members = await asyncio.to_thread(inspect_zip, path, limits)
        refuse_non_csv(members, route.settings.limits.zip_non_csv)
        budget = ByteBudget(limits.max_uncompressed_bytes)
        for member in members:
            if member.kind != "csv":
                # The full name: "readme.txt" must not pass for a member called "readme".
                ctx.members.append(MemberOutcome(name=member.name, error={
                    "code": "not_csv", "message": f"{member.name}: not a .csv file, skipped"}))
                continue
            outcome = MemberOutcome(name=member.stem)
            ctx.members.append(outcome)
            try:
                spec = await route.specs.latest(req.program_type.spec_kind, member.stem)
            except SpecNotFound as e:
                outcome.error = {"code": e.code, "message": f"{member.name}: {e.message}"}
                continue
            outcome.spec_version = spec.version
            outcome.csv = await _ingest_member(route, ctx, req, path, member, spec, limits,
                                               budget)

    return await route.lifecycle.run(req, read, work)


async def _ingest_member(route: CsvRoute, ctx: Context, req: UploadRequest, path: Path,
                         member: ZipMember, spec: Any, limits: ZipLimits, budget: ByteBudget):
    # aclosing: when the pipeline stops early (a missing column, a refused row stream), the
    # reader thread is told to stop now rather than whenever the generator is collected.
    try:
        # A member with an event grammar gets its checks, keys included, as a state file does
        # (the grammar found by the member's name; a ZIP names no programme).
        checks, warnings = await route.processing_checks(req, member.stem, req.program)
        async with contextlib.aclosing(aiter_member(path, member, limits, budget)) as chunks:
            return await route.run_csv(ctx, chunks, spec, name=member.stem,
                                         program=member.stem, req=req,
                                         expected_bytes=member.file_size, processing=checks,
                                         processing_warnings=warnings)
    except FileRejected as e:
        raise FileRejected(f"{member.name}: {e.message}", code=e.code, status=e.status,
                           **{**e.details, "member": member.stem}) from e
