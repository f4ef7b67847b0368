"""What an upload's bytes are, decided from the bytes themselves before the CSV pass.

``prepared_source`` looks at the first bytes of a file on its way into ``CsvPass.run``:

* a workbook (``.xlsx``/``.xlsm``/``.xlsb``/``.ods`` ZIP container, ``.xls`` OLE2 file),
  whatever its name: spooled to disk, and its sheet read as a CSV feed (``workbook.sheet``:
  ``.xlsx`` streamed; the other formats unless they hold more than ``max_workbook_cells``
  cells, 413 ``workbook_too_large``);
  another ZIP is refused with what to do instead;
* text: a UTF-8/UTF-16/UTF-32 byte-order mark decides the encoding by itself; with no BOM and
  no ``encoding`` given, a first sample that is not UTF-8 refuses the file, naming the likely
  encoding and the exact option (``encoding=cp1252``). With ``encoding`` given, the client is
  trusted (bytes that do not decode are row errors).
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Mapping

from ..csvstream.boundary import count_lines
from ..csvstream.guess import guess_encoding
from ..errors import FileRejected
from ..workbook.sniff import HEAD_BYTES, sniff, zip_kind
from .spool import spool

SAMPLE_BYTES = 64 * 1024
# NUL and the C0 controls no text file holds (tab, LF, CR and the like are fine).
_CONTROL = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f]")
# Longest first: the UTF-32-LE mark starts with the UTF-16-LE one.
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
         (codecs.BOM_UTF16_BE, "utf-16"))


@dataclass
class Prepared:
    """The bytes for the CSV pass and how to read them."""

    pieces: AsyncIterator[bytes]
    encoding: str | None
    first_line: int = 1  # the header's line (a sheet's header row)
    delimiter_fixed: bool = False  # a workbook's feed is always comma-separated
    warnings: list[dict[str, Any]] = field(default_factory=list)


async def _chain(head: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if head:
        yield head
    async for piece in rest:
        yield piece


async def _read_head(source: AsyncIterator[bytes], want: int) -> bytes:
    head = bytearray()
    while len(head) < want:
        try:
            head += await anext(source)
        except StopAsyncIteration:
            break
    return bytes(head)


def bom_encoding(head: bytes) -> str | None:
    for bom, name in _BOMS:
        if head.startswith(bom):
            return name
    return None


def check_utf8(sample: bytes, complete: bool) -> None:
    """Refuse a sample that is not UTF-8 (a multi-byte character cut at its end is fine)."""
    try:
        sample.decode("utf-8")
        return
    except UnicodeDecodeError as exc:
        if not complete and exc.reason == "unexpected end of data" and \
                exc.end == len(sample):
            return
        position = exc.start
    if _CONTROL.search(sample):
        return  # binary data, not text in another encoding: the CSV reader refuses it
    guess = guess_encoding(sample)
    line = count_lines(sample, 0, position + 1)
    where = f"the file is not UTF-8 text (byte 0x{sample[position]:02X} on line {line})"
    if guess is None:
        raise FileRejected(f"{where}: if it is text, upload it again with its encoding, e.g. "
                           f"encoding=cp1252 (Excel's \"ANSI\" in Western Europe)",
                           code="not_text", line=line, encoding="utf-8")
    raise FileRejected(f"{where}; it looks like {guess}: upload it again with "
                       f"encoding={guess}", code="not_text", line=line, encoding="utf-8",
                       likely_encoding=guess, option=f"encoding={guess}")


@contextlib.asynccontextmanager
async def prepared_source(source: AsyncIterator[bytes], *, encoding: str | None,
                          sheet: str | None, spool_dir: Path, schema: Mapping[str, Any],
                          coercers: Mapping[str, Callable[[Any], Any]] | None = None,
                          max_workbook_cells: int = 0) -> AsyncIterator[Prepared]:
    """The upload's bytes made ready for the CSV pass (see the module's docstring)."""
    head = await _read_head(source, HEAD_BYTES)
    container = sniff(head)
    if container is None:
        yield await _text(head, source, encoding)
        return
    spooled = await spool(_chain(head, source), spool_dir)
    try:
        kind = "xls" if container == "ole2" else await asyncio.to_thread(zip_kind, spooled.path)
        if kind is None:
            raise FileRejected("this is a ZIP archive, not a CSV file or a workbook: national "
                               "programme ZIPs go to /api/ingestion/national_programs; for a "
                               "state programme, upload the CSV (or workbook) inside it",
                               code="not_a_csv")
        from ..workbook.sheet import SheetCsv  # noqa: PLC0415 - the Rust reader, when needed

        book = await asyncio.to_thread(SheetCsv.open, spooled.path, kind, sheet, schema,
                                       coercers, max_workbook_cells)
        try:
            info = {"code": "read_from_workbook",
                    "message": f"read sheet {book.sheet_name!r} of the {kind} workbook (header "
                               f"on row {book.header_line}); row numbers are the sheet's",
                    "details": {"workbook": kind, "sheet": book.sheet_name,
                                "header_row": book.header_line}}
            yield Prepared(_sheet_pieces(book), encoding="utf-8", first_line=book.header_line,
                           delimiter_fixed=True, warnings=[info])
        finally:
            await asyncio.to_thread(book.close)
    finally:
        await asyncio.to_thread(spooled.path.unlink, missing_ok=True)


async def _sheet_pieces(book: Any) -> AsyncIterator[bytes]:
    pieces = book.pieces()
    while (piece := await asyncio.to_thread(next, pieces, None)) is not None:
        yield piece


def _family(encoding: str) -> str:
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        return encoding  # refused with a clear message where the encoding is resolved
    return name[:6] if name.startswith(("utf-16", "utf-32")) else name.removesuffix("-sig")


async def _text(head: bytes, source: AsyncIterator[bytes], encoding: str | None) -> Prepared:
    warnings: list[dict[str, Any]] = []
    head += await _read_head(source, 4 - len(head)) if len(head) < 4 else b""
    from_bom = bom_encoding(head)
    if from_bom is not None:
        if encoding and _family(encoding) != _family(from_bom):
            warnings.append({"code": "encoding_from_bom",
                             "message": f"the file starts with a {from_bom} byte-order mark: "
                                        f"read as {from_bom}, not {encoding}",
                             "details": {"encoding": from_bom, "given": encoding}})
        if from_bom != "utf-8-sig":
            encoding = from_bom
    elif not encoding:
        sample = head + await _read_head(source, SAMPLE_BYTES - len(head))
        check_utf8(sample, complete=len(sample) < SAMPLE_BYTES)
        head = sample
    return Prepared(_chain(head, source), encoding=encoding, warnings=warnings)
