"""Member names: which we accept, and what each one is (a CSV, another file, or ignored).

Names are never used as paths here, but a name that would escape the root when extracted, or a
stem that cannot serve as an object key or spec name, marks a hostile or broken archive. Such
names are refused, not cleaned: cleaning could merge two names, or give a CSV a stem its author
never chose.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

from ingest_server.errors import ZipRejected

Kind = Literal["csv", "other"]

MAX_STEM_CHARS = 200

# Extensions of archives and compressed files. A CSV inside one would escape every check here.
NESTED_ARCHIVE_SUFFIXES = frozenset({
    ".zip", ".zipx", ".jar", ".war", ".ear", ".apk", ".gz", ".tgz", ".gzip", ".bz2", ".tbz",
    ".tbz2", ".xz", ".txz", ".lz", ".lzma", ".zst", ".z", ".tar", ".7z", ".rar", ".cab",
    ".arj", ".lzh", ".cpio", ".iso",
})

# A stem must not start with a dot: ".", ".." and hidden files are not programme names.
_STEM = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,%d}" % (MAX_STEM_CHARS - 1))
_DRIVE = re.compile(r"[A-Za-z]:")
# Categories that hide or reorder what a reader sees: controls, format marks (bidi overrides,
# zero-width characters), line and paragraph separators.
_INVISIBLE = frozenset({"Cc", "Cf", "Zl", "Zp"})


def classify(name: str) -> tuple[Kind, str] | None:
    """``(kind, stem)`` for a member name, ``None`` for entries to ignore; raises ZipRejected.

    ``name`` must be the raw name (``ZipInfo.orig_filename``): zipfile cuts ``filename`` at the
    first NUL, which is exactly the trick to catch.
    """
    if any(unicodedata.category(ch) in _INVISIBLE for ch in name):
        raise ZipRejected("a member name contains NUL or control characters",
                          code="zip_bad_member_name", name=name)
    # Windows tools treat a backslash as a separator, so it must not smuggle ".." past us.
    path = name.replace("\\", "/")
    parts = path.split("/")
    if path.startswith("/") or _DRIVE.match(path) or any(_is_parent(p) for p in parts):
        raise ZipRejected("a member name points outside the archive",
                          code="zip_slip", name=name)
    base = parts[-1]
    if not base or "__MACOSX" in parts or base == ".DS_Store" or base.startswith("._"):
        return None  # a directory, or macOS Finder metadata
    lower = base.lower()
    if lower.endswith(".csv"):
        stem = base[:-4]
        if not _STEM.fullmatch(stem):
            raise ZipRejected(
                "a CSV member name must be 1 to %d letters, digits, '_', '-' or '.' "
                "(not starting with '.') before .csv" % MAX_STEM_CHARS,
                code="zip_bad_member_name", name=name)
        return "csv", stem
    dot = lower.rfind(".")
    if dot > 0 and lower[dot:] in NESTED_ARCHIVE_SUFFIXES:
        raise ZipRejected("nested archives are not accepted",
                          code="zip_nested_archive", name=name)
    return "other", base[:dot] if dot > 0 else base


def name_key(name: str) -> str:
    """The form under which two names count as the same member."""
    return name.replace("\\", "/")


def _is_parent(part: str) -> bool:
    # "..", and what Windows turns into it by dropping trailing dots and spaces ("...", ".. ").
    return part not in ("", ".") and not part.strip(". ")
