"""``POST /api/ingestion/getRawData`` (cQube's route) and the signed local download links.

Both profiles. See :mod:`ingest_server.rawdata` for what is offered and how links are signed.
"""

from __future__ import annotations

import contextlib

from aiohttp import web
from yarl import URL

from ...errors import BadRequest
from ...rawdata import URL_TTL_S, sign, verify
from ...stores.rawdata import emission_keys
from ...storage.base import validate_key
from .. import appkeys
from ..middleware import requires
from ..body import read_json
from ..handler import profile_handler
from ..public_url import base_url

RAW_PATH = "/api/ingestion/raw"
MAX_PROGRAMS = 100


def _program_names(body) -> list[str]:
    names = body.get("program_names") if isinstance(body, dict) else None
    if not isinstance(names, list) or not names or len(names) > MAX_PROGRAMS or \
            not all(isinstance(n, str) and n for n in names):
        raise BadRequest(f"program_names must be a list of 1-{MAX_PROGRAMS} programme names",
                         code="invalid_field", field="program_names")
    return list(dict.fromkeys(names))


async def _url(request: web.Request, key: str) -> str:
    presigned = await request.app[appkeys.STORAGE].presigned_url(key, URL_TTL_S)
    if presigned is not None:
        return presigned
    base = base_url(request, request.app[appkeys.SETTINGS].server.public_url)
    return str(URL(base + RAW_PATH).with_query(sign(_link_key(request.app), key)))


async def raw_data_links(request: web.Request) -> web.Response:
    """Download links for today's emission files of each named programme."""
    names = _program_names(await read_json(request))
    found = await emission_keys(request.app[appkeys.POOL], names,
                                request.app[appkeys.SETTINGS].storage.timezone)
    data = [{"program_name": name, "urls": [await _url(request, k) for k in found[name]]}
            for name in names]
    return web.json_response({"code": 200, "data": data})


@requires("rawdata")
async def get_raw_data(request: web.Request) -> web.Response:
    """The ``rawdata`` grant, given to a client explicitly: the one exception to per-client
    isolation (a state instance pulls every client's national data). The cqube profile answers
    with ``read`` instead (``web/cqube/rawdata_answers.py``)."""
    return await raw_data_links(request)


@requires(None)
async def get_raw(request: web.Request) -> web.StreamResponse:
    """One file behind a signed link (local storage): the signature is the authorisation."""
    q = request.query
    key, expires, signature = q.get("key", ""), q.get("expires", ""), q.get("signature", "")
    verify(_link_key(request.app), key, expires, signature)
    validate_key(key)
    chunks = request.app[appkeys.STORAGE].read(key)
    async with contextlib.aclosing(chunks):
        first = await anext(chunks, b"")  # a missing object fails here, before any header
        resp = web.StreamResponse(headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{key.rsplit("/", 1)[-1]}"'})
        await resp.prepare(request)
        await resp.write(first)
        async for chunk in chunks:
            await resp.write(chunk)
    await resp.write_eof()
    return resp


def _link_key(app: web.Application) -> bytes:
    # Derived on use: with no configured secret the signing key is loaded when the app starts.
    return app[appkeys.TOKENS].derive_key("raw-url")


def setup(app: web.Application) -> None:
    app.router.add_post("/api/ingestion/getRawData", profile_handler(app, get_raw_data))
    app.router.add_get(RAW_PATH, get_raw)
