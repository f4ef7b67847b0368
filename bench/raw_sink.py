#!/usr/bin/env python3
"""The raw-upload baseline: an aiohttp server that reads a multipart upload and discards it.

It reads the ``file`` part exactly as the product does (``request.multipart()`` and
``read_chunk(256 KiB)``) and nothing else, so the difference between its time and an ingest
upload's time is what validation and storage cost. It runs in its own process, like the real
server, so the client does not share a core with it.

usage: raw_sink.py PORT   (prints "ready" when listening)
"""

from __future__ import annotations

import sys

from aiohttp import web

READ_CHUNK = 256 * 1024


async def sink(request: web.Request) -> web.Response:
    reader = await request.multipart()
    total = parts = 0
    while (part := await reader.next()) is not None:
        parts += 1
        while chunk := await part.read_chunk(READ_CHUNK):
            if part.name == "file":  # the text fields are read too, not counted
                total += len(chunk)
    return web.json_response({"bytes": total, "parts": parts})


def main() -> None:
    port = int(sys.argv[1])
    app = web.Application()
    app.router.add_post("/sink", sink)
    web.run_app(app, host="127.0.0.1", port=port, print=lambda *_: print("ready", flush=True),
                access_log=None)


if __name__ == "__main__":
    main()
