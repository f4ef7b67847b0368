"""Glue for callers: bytes arriving from the network -> header first, then chunks.

The checker depends on the header (``compile_schema(schema).bind(header)``), so the caller
needs the header before it can start ``map_ordered``; ``open_csv_stream`` reads just enough
pieces for that and hands back the rest as a lazy chunk iterator (back-pressure preserved).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

from ingest_server.csvstream.chunker import Chunk, RowChunker


class CsvStream:
    """``header`` plus an async iterator over the remaining ``Chunk``s (iterate once)."""

    def __init__(self, chunker: RowChunker, ready: list[Chunk],
                 pieces: AsyncIterator[bytes] | None) -> None:
        self.chunker = chunker
        self.header: list[str] = chunker.header or []
        self._ready = ready
        self._pieces = pieces

    @property
    def header_lines(self) -> int:
        return self.chunker.header_lines

    async def __aiter__(self) -> AsyncIterator[Chunk]:
        ready, self._ready = self._ready, []
        for chunk in ready:
            yield chunk
        if self._pieces is None:
            return
        pieces, self._pieces = self._pieces, None
        try:
            async for piece in pieces:
                for chunk in self.chunker.feed(piece):
                    yield chunk
        finally:
            aclose = getattr(pieces, "aclose", None)
            if aclose is not None:
                await aclose()
        for chunk in self.chunker.finish():
            yield chunk


async def open_csv_stream(pieces: AsyncIterable[bytes], **chunker_options: object
                          ) -> CsvStream:
    """Read ``pieces`` until the header is parsed (``FileRejected`` if it is bad).

    ``chunker_options`` go to ``RowChunker`` (``encoding``, ``chunk_size``, ``max_line_bytes``).
    """
    chunker = RowChunker(**chunker_options)  # type: ignore[arg-type]
    source = aiter(pieces)
    ready: list[Chunk] = []
    while chunker.header is None:
        try:
            piece = await anext(source)
        except StopAsyncIteration:
            ready += chunker.finish()
            return CsvStream(chunker, ready, None)
        ready += chunker.feed(piece)
    return CsvStream(chunker, ready, source)
