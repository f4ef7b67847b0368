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

from ingest_server.errors import BadRequest, FileRejected

_PASS_THROUGH = {"utf-8", "utf-8-sig"}
_ERRORS = "ingest-csvstream-escape"
# The encodings data files come in (canonical codec names). Python registers many more text
# codecs, some of which are not file encodings at all (punycode, idna, undefined, the escape
# codecs) or decode to text UTF-8 cannot hold (utf-7's lone surrogates): a 500 each, before.
ALLOWED_ENCODINGS = frozenset({
    "utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le",
    "utf-32-be", "ascii",
    *(f"iso8859-{n}" for n in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16)),
    *(f"cp{n}" for n in (437, 850, 852, 855, 866, 874, 932, 949, 950, 1250, 1251, 1252, 1253,
                         1254, 1255, 1256, 1257, 1258)),
    "koi8-r", "koi8-u", "mac-roman", "gb2312", "gbk", "gb18030", "big5", "big5hkscs",
    "shift_jis", "euc_jp", "euc_kr", "iso2022_jp", "tis-620",
})


def _escape_undecodable(exc: UnicodeError) -> tuple[str, int]:
    """Like ``surrogateescape`` but total: ``surrogateescape`` refuses bytes below 0x80, which
    UTF-16/32 produce (e.g. an unpaired surrogate ``00 D8``). Those get their high bit set, so
    the displayed value is approximate for them; bytes >= 0x80 round-trip exactly."""
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    bad = exc.object[exc.start:exc.end]
    return "".join(chr(0xDC80 | b) for b in bad), exc.end


def _error_handler() -> str:
    """The name of the escaping error handler, registered on first use (not at import)."""
    try:
        codecs.lookup_error(_ERRORS)
    except LookupError:
        codecs.register_error(_ERRORS, _escape_undecodable)
    return _ERRORS


def resolve_encoding(encoding: str | None) -> str:
    """The codec's canonical name; ``unknown_encoding`` for names that are not text codecs."""
    if not encoding:
        return "utf-8"
    try:
        info = codecs.lookup(encoding)
    except (LookupError, TypeError, ValueError):
        raise BadRequest(f"unknown encoding {encoding!r}", code="unknown_encoding",
                         encoding=encoding) from None
    if info.name not in ALLOWED_ENCODINGS:
        raise BadRequest(f"encoding {encoding!r} is not accepted for data files (use one of "
                         "utf-8, utf-16, latin-1, cp1252, ... listed in error.details.accepted)",
                         code="unknown_encoding", encoding=encoding,
                         accepted=sorted(ALLOWED_ENCODINGS))
    return info.name


class Utf8Transcoder:
    """Incremental ``encoding`` -> UTF-8; identity for UTF-8 input."""

    def __init__(self, encoding: str | None = "utf-8") -> None:
        self.encoding = resolve_encoding(encoding)
        self._decoder = None
        if self.encoding not in _PASS_THROUGH:
            self._decoder = codecs.getincrementaldecoder(self.encoding)(_error_handler())

    def feed(self, data: bytes) -> bytes:
        if self._decoder is None:
            return data
        return self._decode(data, False)

    def finish(self) -> bytes:
        if self._decoder is None:
            return b""
        return self._decode(b"", True)

    def _decode(self, data: bytes, final: bool) -> bytes:
        try:
            text = self._decoder.decode(data, final=final)
            return text.encode("utf-8", "surrogateescape")
        except UnicodeError as e:  # not a decode error: e.g. UTF-16 without its BOM
            raise FileRejected(f"the file is not {self.encoding} text: {e}", code="not_text",
                               encoding=self.encoding) from None
