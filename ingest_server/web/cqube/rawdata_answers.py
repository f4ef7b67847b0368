"""``POST /api/ingestion/getRawData`` in the cqube profile: the same links, another grant."""

from __future__ import annotations

from aiohttp import web

from ..middleware import requires
from ..views.rawdata import raw_data_links


@requires("read")
async def get_raw_data(request: web.Request) -> web.Response:
    """getRawData as cQube guards it: with the same JwtGuard as its file-status (``read``)."""
    return await raw_data_links(request)
