"""Reading upload forms without holding the file: stream it, or spool it when fields come late.

Clients (Postman in particular) send the form fields in the order the user listed them. When the
fields that decide the processing arrive before the ``file`` part, the file streams straight into
the pipeline. Otherwise it is spooled to a temporary file within the size limit and processed after
the last part. A processing option that arrives after a file already streaming is refused (before
anything is published) rather than silently ignored.
"""

from __future__ import annotations

import functools
import unicodedata
from urllib.parse import unquote
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator

import aiohttp.multipart
from aiohttp import BodyPartReader, MultipartReader, hdrs, web
from aiohttp.helpers import parse_mimetype
from aiohttp.http_exceptions import BadHttpMessage
from aiohttp.multipart import BadContentDispositionHeader, BadContentDispositionParam

from ..errors import BadRequest, UploadTooLarge
from ..ingest.spool import READ_CHUNK, spool
from . import appkeys
from .body import within

# aiohttp parses each part's Content-Disposition twice or three times (MultipartReader.next,
# BodyPartReader.name, .filename), each time escaping 128 characters to build a pattern: ~45 us
# a call, ~0.4 ms of CPU for a 4-part upload form. The same few headers come in every upload, so
# the parsed form is kept (a fresh dict per call: callers may change it).
_parse_disposition = functools.lru_cache(maxsize=512)(aiohttp.multipart.parse_content_disposition)


def _content_disposition(header: str | None) -> tuple[str | None, dict[str, str]]:
    disposition, params = _parse_disposition(header)
    return disposition, dict(params)


aiohttp.multipart.parse_content_disposition = _content_disposition

MAX_FIELD_BYTES = 4096
MAX_PARTS = 64
FILE_FIELD = "file"


@dataclass
class Form:
    """The text fields of an upload form, and the file's name as the client gave it."""

    fields: dict[str, str] = field(default_factory=dict)
    filename: str = ""
    spooled: Path | None = None
    size: int = 0
    sha256: str | None = None  # of the spooled file, hashed while it was written

    def get(self, name: str, query: Any = None) -> str | None:
        """A field from the form or the query; 400 ``conflicting_field`` when they (or repeats
        of it in the query) disagree, rather than one of them winning silently."""
        value = self.fields.get(name)
        given = query.getall(name, []) if hasattr(query, "getall") else \
            ([query[name]] if query and name in query else [])
        if len({v.strip() for v in given} | ({value} if value is not None else set())) > 1:
            raise conflicting(name)
        if value is None and given:
            value = given[0]
        return value


def conflicting(name: str) -> BadRequest:
    return BadRequest(f"'{name}' is given more than once with different values: give it once",
                      code="conflicting_field", field=name)


def clean_filename(name: str | None) -> str:
    """The client's file name as metadata only (never a path): last segment, printable, bounded."""
    if not name:
        return "upload"
    name = unquote(name).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    return name.strip()[:255] or "upload"


async def _read_field(part: BodyPartReader, idle_s: float) -> str:
    data = bytearray()
    while chunk := await within(idle_s, part.read_chunk(MAX_FIELD_BYTES)):
        data += chunk
        if len(data) > MAX_FIELD_BYTES:
            raise BadRequest(f"form field '{part.name}' is longer than {MAX_FIELD_BYTES} bytes",
                             code="field_too_large", field=part.name)
    try:
        return data.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise BadRequest(f"form field '{part.name}' is not UTF-8 text", code="invalid_field",
                         field=part.name) from None


async def part_chunks(part: BodyPartReader, limit: int, idle_s: float) -> AsyncIterator[bytes]:
    total = 0
    while chunk := await within(idle_s, part.read_chunk(READ_CHUNK)):
        total += len(chunk)
        if total > limit:
            raise UploadTooLarge(f"the upload is larger than {limit} bytes", max_upload_bytes=limit)
        yield chunk


async def open_form(request: web.Request, limit: int) -> MultipartReader:
    if request.content_length is not None and request.content_length > limit + 1024 * 1024:
        raise UploadTooLarge(f"the upload is larger than {limit} bytes", max_upload_bytes=limit)
    # Not request.content_type: aiohttp parses it with the email package, about 160 us for a
    # header its cache has not seen, and a form's boundary makes every request's header new.
    mime = parse_mimetype(request.headers.get(hdrs.CONTENT_TYPE, ""))
    if (mime.type, mime.subtype) != ("multipart", "form-data"):
        raise BadRequest("the body must be multipart/form-data with a 'file' part",
                         code="not_multipart")
    try:
        return await request.multipart()
    except (ValueError, AssertionError) as e:
        raise BadRequest(f"malformed multipart body: {e}", code="bad_multipart") from None


async def next_part(reader: MultipartReader, count: list[int],
                    idle_s: float) -> BodyPartReader | None:
    count[0] += 1
    if count[0] > MAX_PARTS:
        raise BadRequest(f"more than {MAX_PARTS} form parts", code="too_many_parts")
    try:
        part = await within(idle_s, reader.next())
    except (ValueError, AssertionError, RuntimeError, BadHttpMessage,
            BadContentDispositionHeader, BadContentDispositionParam) as e:
        # BadHttpMessage: a part's headers too long (LineTooLong) or invalid (a NUL, ...);
        # the BadContentDisposition* warnings arrive here where warnings are errors (the tests)
        raise BadRequest(f"malformed multipart body: {e}", code="bad_multipart") from None
    if part is not None and not isinstance(part, BodyPartReader):
        raise BadRequest("nested multipart bodies are not accepted", code="bad_multipart")
    return part


async def open_upload_form(request: web.Request, *,
                           late_options: frozenset[str] = frozenset()) -> UploadForm:
    """The request's upload form with the configured limits: ``limits.max_upload_bytes``, the
    idle timeout of every read (``body.py``), the spool folder."""
    settings = request.app[appkeys.SETTINGS]
    limit = settings.limits.max_upload_bytes
    reader = await open_form(request, limit)
    return UploadForm(reader, limit=limit, late_options=late_options,
                      spool_dir=settings.path(settings.server.state_dir) / "spool",
                      idle_s=settings.limits.body_idle_timeout_s)


class UploadForm:
    """An upload's multipart body, read in order with no callback: ``until_file()`` reads the
    fields up to the file part; then either ``file_chunks()`` streams the file (and checks the
    parts after it), or ``spool_rest()`` spools it and reads the rest. Used as an async context
    manager, which removes the spooled file at the end whatever happened."""

    def __init__(self, reader: MultipartReader, *, limit: int, spool_dir: Path,
                 late_options: frozenset[str], idle_s: float) -> None:
        self.form = Form()
        self._reader, self._limit, self._spool_dir = reader, limit, spool_dir
        self._late, self._idle_s = late_options, idle_s
        self._count = [0]
        self._file: BodyPartReader | None = None

    async def __aenter__(self) -> UploadForm:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.form.spooled is not None:
            self.form.spooled.unlink(missing_ok=True)

    async def until_file(self) -> Form:
        """The fields before the file part (the file's name included); 400 without one."""
        form = self.form
        while (part := await next_part(self._reader, self._count, self._idle_s)) is not None:
            if part.name == FILE_FIELD:
                form.filename = clean_filename(part.filename)
                self._file = part
                return form
            await self._add_field(part)
        raise BadRequest("the form has no 'file' part", code="missing_file")

    def file_chunks(self) -> AsyncIterator[bytes]:
        """The file's bytes; then, before the end is signalled, the parts after it."""
        assert self._file is not None, "until_file() first"
        return _then_trailing(self._file, self._reader, self.form, self._limit, self._count,
                              self._late, self._idle_s)

    async def spool_rest(self) -> Form:
        """Spool the file to ``form.spooled`` (with its size and SHA-256), then read every part
        after it: the form complete."""
        assert self._file is not None, "until_file() first"
        form = self.form
        spooled = await spool(part_chunks(self._file, self._limit, self._idle_s), self._spool_dir)
        form.spooled, form.size, form.sha256 = spooled.path, spooled.size, spooled.sha256
        while (part := await next_part(self._reader, self._count, self._idle_s)) is not None:
            if part.name == FILE_FIELD:
                raise BadRequest("more than one 'file' part", code="too_many_files")
            await self._add_field(part)
        return form

    async def _add_field(self, part: BodyPartReader) -> None:
        value = await _read_field(part, self._idle_s)
        if part.name and self.form.fields.setdefault(part.name, value) != value:
            raise conflicting(part.name)


async def _then_trailing(part: BodyPartReader, reader: MultipartReader, form: Form, limit: int,
                         count: list[int], late_options: frozenset[str],
                         idle_s: float) -> AsyncIterator[bytes]:
    """The file's bytes; then, before the end is signalled, the parts after it."""
    async for chunk in part_chunks(part, limit, idle_s):
        form.size += len(chunk)
        yield chunk
    while (late := await next_part(reader, count, idle_s)) is not None:
        if late.name == FILE_FIELD:
            raise BadRequest("more than one 'file' part", code="too_many_files")
        value = await _read_field(late, idle_s)
        if late.name in late_options and form.fields.get(late.name) != value:
            raise BadRequest(f"form field '{late.name}' came after the file part, too late to "
                             "apply; send it before the file or as a query parameter",
                             code="option_after_file", field=late.name)
