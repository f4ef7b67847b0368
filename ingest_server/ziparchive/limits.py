"""The numbers that bound one archive: configured limits and the shared byte budget."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from ingest_server.errors import ZipRejected


@dataclass(frozen=True)
class ZipLimits:
    """``[limits] zip_*`` from the configuration.

    ``ratio_grace_bytes``: the ratio rule only applies to members larger than this. Small text
    files compress absurdly well (a 200 KB CSV of repeated codes easily reaches 200:1), and a
    member this small cannot hurt anyone; the total size limit still counts them.
    """

    max_entries: int
    max_uncompressed_bytes: int
    max_ratio: float
    ratio_grace_bytes: int = 1 << 20


class ByteBudget:
    """Decompressed bytes allowed for one upload, shared by all its members (and threads).

    Declared sizes are checked up front, but they are only claims; this counts what the
    decompressor really produced, so an archive whose headers lie still stops at the limit.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._used = 0
        self._lock = threading.Lock()

    @property
    def used(self) -> int:
        return self._used

    @property
    def remaining(self) -> int:
        return self.limit - self._used

    def take(self, n: int) -> None:
        """Charge ``n`` bytes, or raise ``zip_too_large`` (413) without charging them."""
        with self._lock:
            if self._used + n > self.limit:
                raise ZipRejected(
                    "the archive decompresses to more than the allowed total size",
                    code="zip_too_large", status=413, limit=self.limit)
            self._used += n
