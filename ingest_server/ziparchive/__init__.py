"""Safe reading of uploaded ZIP archives (national-programme uploads).

``inspect_zip`` refuses a hostile or broken archive from its central directory alone (not a
zip, too many entries, too large, zip bombs, paths outside the root, nested archives,
encryption, symlinks, duplicate or unusable names); ``iter_member`` / ``aiter_member`` then
stream one member, counting the bytes really produced. Every refusal is a ``ZipRejected`` with
a stable ``code``. Blocking functions are meant for a thread; ``aiter_member`` runs one.
"""

from .aio import aiter_member
from .directory import ZipMember, inspect_zip
from .inflate import CHUNK_SIZE, iter_member
from .limits import ByteBudget, ZipLimits
from .names import MAX_STEM_CHARS, NESTED_ARCHIVE_SUFFIXES

__all__ = [
    "CHUNK_SIZE", "MAX_STEM_CHARS", "NESTED_ARCHIVE_SUFFIXES", "ByteBudget", "ZipLimits",
    "ZipMember", "aiter_member", "inspect_zip", "iter_member",
]
