"""Input encodings: everything downstream sees UTF-8 bytes.

UTF-8 input passes through untouched (invalid sequences are found per row by the workers).
Any other Python text codec is transcoded to UTF-8 here, incrementally, piece by piece, so
memory stays flat and multi-byte characters split across network pieces are handled by the
codec's own incremental decoder. Bytes the codec cannot decode become invalid UTF-8 bytes
(``_escape_undecodable``), so the worker reports exactly those rows as ``encoding_error``
instead of the whole upload failing or the data being silently replaced. A UTF-8 BOM (or a
BOM the codec decoded to U+FEFF) at the start of the file is dropped by the chunker.
"""

from __future__ import annotations

import codecs

from ingest_server.errors import BadRequest

_PASS_THROUGH = {"utf-8", "utf-8-sig"}
_ERRORS = "ingest-csvstream-escape"


def _escape_undecodable(exc: UnicodeError) -> tuple[str, int]:
    """Like ``surrogateescape`` but total: ``surrogateescape`` refuses bytes below 0x80, which
    UTF-16/32 produce (e.g. an unpaired surrogate ``00 D8``). Those get their high bit set, so
    the displayed value is approximate for them; bytes >= 0x80 round-trip exactly."""
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    bad = exc.object[exc.start:exc.end]
    return "".join(chr(0xDC80 | b) for b in bad), exc.end


codecs.register_error(_ERRORS, _escape_undecodable)


def resolve_encoding(encoding: str | None) -> str:
    """The codec's canonical name; ``unknown_encoding`` for names that are not text codecs."""
    if not encoding:
        return "utf-8"
    try:
        info = codecs.lookup(encoding)
    except (LookupError, TypeError, ValueError):
        raise BadRequest(f"unknown encoding {encoding!r}", code="unknown_encoding",
                         encoding=encoding) from None
    # bytes-to-bytes codecs (base64, zlib, ...) are registered too but are not text encodings
    if not getattr(info, "_is_text_encoding", True):
        raise BadRequest(f"{encoding!r} is not a text encoding", code="unknown_encoding",
                         encoding=encoding)
    return info.name


class Utf8Transcoder:
    """Incremental ``encoding`` -> UTF-8; identity for UTF-8 input."""

    def __init__(self, encoding: str | None = "utf-8") -> None:
        self.encoding = resolve_encoding(encoding)
        self._decoder = None
        if self.encoding not in _PASS_THROUGH:
            self._decoder = codecs.getincrementaldecoder(self.encoding)(_ERRORS)

    def feed(self, data: bytes) -> bytes:
        if self._decoder is None:
            return data
        return self._decoder.decode(data).encode("utf-8", "surrogateescape")

    def finish(self) -> bytes:
        if self._decoder is None:
            return b""
        return self._decoder.decode(b"", final=True).encode("utf-8", "surrogateescape")
