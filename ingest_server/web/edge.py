"""What is refused at the edge, before any handler: NUL in the path or query, and compressed
request bodies.

A NUL can never be a legitimate name or option, and PostgreSQL text refuses it (a 500 further
in). aiohttp inflates ``Content-Encoding: gzip|deflate|br`` request bodies by itself with no
ratio limit (243 KB became 100 MB in storage), outside the byte budget uploads are counted
against: such bodies are refused (415) rather than inflated. Compress inside a ZIP instead.
"""

from __future__ import annotations

from urllib.parse import unquote

from aiohttp import web

from ..errors import BadRequest, UnsupportedMedia
from .middleware import Handler

IDENTITY = frozenset({"", "identity"})


@web.middleware
async def edge_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    raw = request.raw_path
    if "\x00" in unquote(raw) or "\x00" in request.path:
        raise BadRequest("the request path or query holds a NUL character", code="nul_character")
    encoding = request.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in IDENTITY:
        raise UnsupportedMedia(f"Content-Encoding {encoding!r} is not accepted: send the body "
                               "uncompressed (or a ZIP to national_programs)",
                               code="unsupported_content_encoding", content_encoding=encoding)
    return await handler(request)
