"""National-programme ZIPs: every ``<name>.csv`` member through the same CSV pass as state files.

The archive is checked from its central directory before any member is read; members are then
streamed one after the other (decompressed in a thread, counted against the real-byte budget)
into the shared pipeline. All members' objects are published together, or none.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import SpecNotFound
from ..ziparchive import ByteBudget, ZipLimits, aiter_member, inspect_zip
from .service import Context, MemberOutcome

if TYPE_CHECKING:
    from .service import IngestService, UploadRequest


def zip_limits(settings: Any) -> ZipLimits:
    lim = settings.limits
    return ZipLimits(max_entries=lim.zip_max_entries,
                     max_uncompressed_bytes=lim.zip_max_uncompressed_bytes,
                     max_ratio=lim.zip_max_ratio)


async def ingest_zip(service: IngestService, req: UploadRequest, path: Path,
                     source: Any) -> dict[str, Any]:
    limits = zip_limits(service.settings)

    async def work(ctx: Context) -> None:
        async for _ in ctx.source:  # hashes and counts the archive as received
            pass
        members = await asyncio.to_thread(inspect_zip, path, limits)
        budget = ByteBudget(limits.max_uncompressed_bytes)
        for member in members:
            outcome = MemberOutcome(name=member.stem)
            ctx.members.append(outcome)
            if member.kind != "csv":
                outcome.error = {"code": "not_csv", "message": f"{member.name}: not a .csv "
                                 "file, skipped"}
                continue
            try:
                spec = await service.specs.latest(req.program_type.spec_kind, member.stem)
            except SpecNotFound as e:
                outcome.error = {"code": e.code, "message": f"{member.name}: {e.message}"}
                continue
            outcome.spec_version = spec.version
            outcome.csv = await service.run_csv(
                ctx, aiter_member(path, member, limits, budget), spec, name=member.stem,
                program=member.stem, req=req, expected_bytes=member.file_size)

    return await service.run(req, source, work)
