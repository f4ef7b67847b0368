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
from typing import Any, Awaitable, Callable

from ..errors import FileRejected, SpecNotFound, ZipRejected
from ..stores.specs import Spec, SpecStore
from ..ziparchive import ByteBudget, ZipLimits, ZipMember, aiter_member, inspect_zip
from .csv_pass import CsvPass
from .model import CsvOutcome, MemberOutcome, Upload, UploadRequest


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


# (request, member name) -> a cQube grammar's row checks for the member and their warnings
ChecksFor = Callable[[UploadRequest, str], Awaitable[tuple[Any, tuple]]]


async def land_members(upload: Upload, req: UploadRequest, path: Path, *, specs: SpecStore,
                       csv: CsvPass, limits: ZipLimits, non_csv: str,
                       checks_for: ChecksFor | None = None) -> None:
    """Every member of the archive at ``path`` into ``upload``: a ``MemberOutcome`` each, the
    CSVs through ``csv`` (``non_csv``: ``limits.zip_non_csv``; ``checks_for``: a member's
    grammar checks, keys included, as a state file gets them)."""
    members = await asyncio.to_thread(inspect_zip, path, limits)
    refuse_non_csv(members, non_csv)
    budget = ByteBudget(limits.max_uncompressed_bytes)
    for member in members:
        if member.kind != "csv":
            # The full name: "readme.txt" must not pass for a member called "readme".
            upload.members.append(MemberOutcome(name=member.name, error={
                "code": "not_csv", "message": f"{member.name}: not a .csv file, skipped"}))
            continue
        outcome = MemberOutcome(name=member.stem)
        upload.members.append(outcome)
        try:
            spec = await specs.latest(req.program_type.spec_kind, member.stem)
        except SpecNotFound as e:
            outcome.error = {"code": e.code, "message": f"{member.name}: {e.message}"}
            continue
        outcome.spec_version = spec.version
        outcome.csv = await _land_member(csv, upload, req, path, member, spec, limits, budget,
                                         checks_for)


async def _land_member(csv: CsvPass, upload: Upload, req: UploadRequest, path: Path,
                       member: ZipMember, spec: Spec, limits: ZipLimits,
                       budget: ByteBudget, checks_for: ChecksFor | None) -> CsvOutcome:
    # aclosing: when the pipeline stops early (a missing column, a refused row stream), the
    # reader thread is told to stop now rather than whenever the generator is collected.
    try:
        checks, warnings = (await checks_for(req, member.stem)) if checks_for else (None, ())
        async with contextlib.aclosing(aiter_member(path, member, limits, budget)) as chunks:
            return await csv.run(upload, chunks, spec, req=req, name=member.stem,
                                 program=member.stem, expected_bytes=member.file_size,
                                 processing=checks, processing_warnings=warnings)
    except FileRejected as e:
        raise FileRejected(f"{member.name}: {e.message}", code=e.code, status=e.status,
                           **{**e.details, "member": member.stem}) from e
