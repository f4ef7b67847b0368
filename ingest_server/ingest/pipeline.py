"""One streaming pass over one CSV: bytes → row chunks → checked in workers → staged objects.

The caller gets the staged (unpublished) writers back and decides, for the upload as a whole,
whether to publish or abort them; nothing here makes an object visible.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any, AsyncIterator, Awaitable, Callable

from ..aio import uncancellable
from ..csvstream.checkers import CheckerRecipe, ensure_checker, get_checker
from ..csvstream.delimiter import NAMES, choose_delimiter, shown
from ..csvstream.shape import shape_header, shaped_checker
from ..csvstream.stream import open_csv_stream
from ..csvstream.worker import header_rows
from ..errors import FileRejected
from ..storage.base import Storage, abort_all
from .checker import build_checker
from .model import CsvOutcome, CsvTarget

HeaderCheck = Callable[[list[str]], Awaitable[None]]


async def stream_csv(source: AsyncIterator[bytes], target: CsvTarget, *, storage: Storage,
                     runner: Any, upload_id: str,
                     encoding: str | None, chunk_bytes: int, max_line_bytes: int,
                     sample_limit: int, check_header: HeaderCheck | None = None,
                     first_line: int = 1, delimiter: str | None = None) -> CsvOutcome:
    """Stream ``source`` through the checks into staged objects; abort them on any error.
    The row checker is built by ``checker.build_checker`` in each worker process (a
    module-level function: the recipe travels to the workers as a ``CheckerRecipe``).
    ``delimiter``: the file's, or None to find it from the header (``delimiter.py``);
    ``first_line``: the header's line number (a workbook sheet's header row)."""
    outcome = CsvOutcome()
    detected: list[str] = []

    def choose(raw: bytes) -> str:
        found, was_detected = choose_delimiter(raw, target.schema)
        if was_detected:
            detected.append(found)
        return found

    try:
        stream = await open_csv_stream(source, encoding=encoding, chunk_size=chunk_bytes,
                                       max_line_bytes=max_line_bytes, first_line=first_line,
                                       delimiter=delimiter or ",",
                                       choose_delimiter=None if delimiter else choose)
        if stream.chunker.header is None:
            raise FileRejected("the file is empty: no header row", code="empty_file")
        shape = shape_header(stream.header, target.schema, stream.chunker.delimiter)
        header = outcome.header = list(shape.names)
        if detected:
            outcome.warnings.append({
                "code": "delimiter_detected",
                "message": f"the file is separated by {NAMES[detected[0]]}s "
                           f"({shown(detected[0])}), not commas: read that way (send "
                           f"delimiter= to say so)",
                "details": {"delimiter": detected[0]}})
        outcome.warnings.extend(shape.warnings)
        undeclared = [c for c in header if c not in target.schema]
        if undeclared and target.allow_unknown:
            outcome.warnings.append({
                "code": "undeclared_columns",
                "message": f"column(s) not in the spec passed through unchecked: "
                           f"{', '.join(undeclared)}",
                "details": {"columns": undeclared}})
        outcome.warnings.extend(target.processing_warnings)
        spec = CheckerRecipe(build_checker, (target.plugins_dir, target.schema_key, target.schema,
                                             tuple(header), target.program_type,
                                             target.ingestion_name, target.program,
                                             target.allow_unknown),
                           {"processing": target.processing} if target.processing else {})
        output_format = target.layout.output_format(target.schema)
        if output_format is not None or not shape.trivial:
            spec = CheckerRecipe(shaped_checker, (shape, spec, output_format))
        ctx_key = hashlib.sha256(spec.key().encode()).hexdigest()
        # Compile and bind here too: a missing column is refused before any row is read.
        ensure_checker(ctx_key, spec)
        checker = get_checker(ctx_key)
        if check_header is not None:
            await check_header(header)
        output_format = getattr(checker, "output_format", None)
        if output_format is not None:
            valid_head, error_head = output_format.valid_head(), output_format.error_head(header)
        else:
            valid_head, error_head = header_rows(header, checker.output_header)

        # The checker's summary of the valid rows (the datasets' partial aggregates), merged here.
        summarise = getattr(checker, "summarise", None)
        summary = summarise.collector() if summarise is not None and not target.dry_run else None
        merging: asyncio.Future | None = None
        valid_writer = error_writer = None
        if not target.dry_run:
            valid_writer = await storage.open_writer(target.valid_key, upload_id=upload_id)
            outcome.writers.append(valid_writer)
            await valid_writer.write(valid_head)
        async for result in runner.map_ordered(stream, ctx_key, spec):
            outcome.total_rows += result.rows
            outcome.valid_rows += result.valid_rows
            outcome.invalid_rows += result.invalid_rows
            outcome.rewritten_rows += result.rewritten_rows
            room = sample_limit - len(outcome.errors_sample)
            if room > 0:
                outcome.errors_sample.extend(result.errors_sample[:room])
            if target.dry_run:
                continue
            if summary is not None and result.partials is not None:
                if merging is not None:  # one merge at a time, beside the writes
                    await merging
                merging = asyncio.ensure_future(asyncio.to_thread(summary.merge,
                                                                  result.partials))
            if result.valid_csv:
                await valid_writer.write(result.valid_csv)
            if result.errors_csv:
                if error_writer is None:
                    error_writer = await storage.open_writer(target.error_key, upload_id=upload_id)
                    outcome.writers.append(error_writer)
                    await error_writer.write(error_head)
                await error_writer.write(result.errors_csv)
        if outcome.rewritten_rows:
            n = outcome.rewritten_rows
            outcome.warnings.append({
                "code": "keys_rewritten",
                "message": f"{n} valid row(s) landed with a key written as its dimension stores "
                           "it, not as sent (matched but for blanks or case, "
                           "processing.key_match, or in cQube's '…' quotes)",
                "details": {"rows": n}})
        if outcome.total_rows == 0:
            # A header with nothing under it is a day with nothing to report (a template
            # uploaded empty): the header passed its checks, so it lands as 0 rows.
            outcome.warnings.append({
                "code": "no_rows",
                "message": "the file has a header but no data rows: nothing was written",
                "details": {"header": header}})
        if valid_writer is not None and outcome.valid_rows == 0:
            await valid_writer.abort()  # every row was rejected: no empty valid file
            outcome.writers.remove(valid_writer)
            valid_writer = None
        if merging is not None:
            await merging
        outcome.summary = summary
        outcome.valid_key = target.valid_key if valid_writer else None
        outcome.error_key = target.error_key if error_writer else None
        return outcome
    except BaseException:
        writers, outcome.writers = list(outcome.writers), []
        await uncancellable(abort_all(writers))
        raise
