"""A multipart/form-data body streamed from a file on disk, with a known length.

httpx can stream files too, but it reads them in 64 KiB pieces and hides the reads; here the
chunk size suits the server (it reads 256 KiB at a time) and every chunk passes through
``on_chunk`` so a progress bar sees exactly what was sent. The option fields come before the file
so the server can validate while the body arrives instead of spooling it first.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Callable, Iterator, Mapping

from .failures import CliError

CHUNK_BYTES = 256 * 1024


def _quote(value: str) -> str:
    # The HTML form encoding of names in Content-Disposition (what browsers and httpx send).
    return value.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


class MultipartFile:
    """``fields`` then one ``file`` part read from ``path``; iterate it to get the body."""

    def __init__(self, path: Path, fields: Mapping[str, str], *, content_type: str,
                 file_field: str = "file", on_chunk: Callable[[int], None] | None = None,
                 chunk_bytes: int = CHUNK_BYTES) -> None:
        self.path = path
        self.size = os.stat(path).st_size
        self.boundary = secrets.token_hex(16)
        self.on_chunk = on_chunk
        self.chunk_bytes = chunk_bytes
        b = self.boundary
        head = [f'--{b}\r\nContent-Disposition: form-data; name="{_quote(k)}"\r\n\r\n{v}\r\n'
                for k, v in fields.items()]
        head.append(f'--{b}\r\nContent-Disposition: form-data; name="{_quote(file_field)}"; '
                    f'filename="{_quote(path.name)}"\r\nContent-Type: {content_type}\r\n\r\n')
        self.head = "".join(head).encode("utf-8")
        self.tail = f"\r\n--{b}--\r\n".encode("ascii")

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return len(self.head) + self.size + len(self.tail)

    def __iter__(self) -> Iterator[bytes]:
        yield self.head
        sent = 0
        with open(self.path, "rb") as f:
            while chunk := f.read(self.chunk_bytes):
                sent += len(chunk)
                if sent > self.size:
                    break
                if self.on_chunk is not None:
                    self.on_chunk(len(chunk))
                yield chunk
        # The Content-Length was announced from the size at the start: a file that grew or
        # shrank meanwhile would send a body that does not match it.
        if sent != self.size:
            raise CliError(f"{self.path} changed while it was being uploaded "
                           f"({self.size} bytes expected, {sent} read)")
        yield self.tail
