"""Reading a request body, the one way every route does it (multipart forms, JSON, tus PATCHes).

aiohttp has no body read timeout: without one, a client that stops sending (or trickles) would
hold the request, and for an upload its row and staged data. So every read of a body waits at
most ``limits.body_idle_timeout_s`` (408 ``body_timeout``); a body past its size limit is
refused at once (413, from the ``Content-Length`` when it says so), read no further; a peer gone
mid-body is a client error (400 ``connection_lost``), not a 500.
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Awaitable, Callable, TypeVar

from aiohttp import web

from .. import safejson
from ..errors import BadRequest, IngestError
from . import appkeys

T = TypeVar("T")
SMALL_BODY_BYTES = 1024 * 1024  # a JSON request that is not an upload (a spec, a list of names)
TooLarge = Callable[[int], IngestError]


def idle_s(request: web.Request) -> float:
    """``limits.body_idle_timeout_s``: the longest wait for the next bytes of a body."""
    return request.app[appkeys.SETTINGS].limits.body_idle_timeout_s


async def within(idle_s: float, pending: Awaitable[T]) -> T:
    """One read of the body, bounded by ``idle_s`` (408 ``body_timeout``)."""
    try:
        async with asyncio.timeout(idle_s):
            return await pending
    except TimeoutError:
        raise IngestError(f"no request body received for {idle_s:g} s",
                          code="body_timeout", body_idle_timeout_s=idle_s) from None


def body_too_large(limit: int) -> IngestError:
    return BadRequest(f"body is larger than {limit} bytes", code="body_too_large")


async def body_chunks(request: web.Request, limit: int | None = None,
                      too_large: TooLarge = body_too_large) -> AsyncIterator[bytes]:
    """The body in pieces as they arrive; past ``limit`` bytes, ``too_large(limit)``."""
    if limit is not None and request.content_length is not None \
            and request.content_length > limit:
        raise too_large(limit)
    wait_s, size = idle_s(request), 0
    while True:
        try:
            chunk = await within(wait_s, request.content.readany())
        except IngestError:
            raise
        except Exception as e:  # the peer went away mid-body (aiohttp's payload errors vary)
            raise IngestError("the connection was lost", code="connection_lost",
                              reason=e.__class__.__name__) from None
        if not chunk:
            return
        size += len(chunk)
        if limit is not None and size > limit:
            raise too_large(limit)
        yield chunk


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body (a small one: ``limit`` bytes at most)."""
    body = bytearray()
    async for chunk in body_chunks(request, limit):
        body += chunk
    return bytes(body)


async def read_json(request: web.Request, limit: int = SMALL_BODY_BYTES) -> Any:
    """The JSON body (``limit`` bytes at most), through ``safejson``: never plain
    ``json.loads`` on client input (depth, numbers and surrogates bounded)."""
    return safejson.loads(await read_body(request, limit))
