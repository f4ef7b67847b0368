"""Checks made from the central directory, before any member is decompressed."""

from __future__ import annotations

import os
import stat
import struct
import zipfile
from dataclasses import dataclass
from typing import BinaryIO

from ingest_server.errors import ZipRejected

from .limits import ZipLimits
from .names import Kind, classify, name_key

SUPPORTED_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2})

_LOCAL_SIG = b"PK\x03\x04"
_EOCD = struct.Struct("<4s4H2LH")
_EOCD_SIG = b"PK\x05\x06"
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_LOCATOR_SIG = b"PK\x06\x07"
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")
_ZIP64_EOCD_SIG = b"PK\x06\x06"
_FLAG_ENCRYPTED = 0x1
_FLAG_STRONG_ENCRYPTION = 0x40


@dataclass(frozen=True)
class ZipMember:
    """One member worth reading. ``stem`` is the file name without directory and extension."""

    name: str
    stem: str
    kind: Kind
    compressed_size: int
    file_size: int


def inspect_zip(path: str | os.PathLike[str], limits: ZipLimits) -> list[ZipMember]:
    """Every check the central directory allows; blocking. Raises ZipRejected.

    Returns the members to read (CSVs and other files), without directories and macOS
    metadata. Sizes are the declared ones: ``iter_member`` holds the archive to them.
    """
    with open(path, "rb") as fp, open_archive(fp, limits) as zf:
        infos = zf.infolist()
    members: list[ZipMember] = []
    names: set[str] = set()
    stems: set[str] = set()
    total = 0
    for info in infos:
        member = check_entry(info, limits)
        if member is None:
            continue
        key = name_key(member.name)
        stem_key = member.stem.casefold() if member.kind == "csv" else None
        # Two CSVs with one stem would land in the same object key and the same spec.
        if key in names or stem_key in stems:
            raise ZipRejected("the archive holds two members with the same name",
                              code="zip_duplicate_member", name=member.name)
        names.add(key)
        if stem_key is not None:
            stems.add(stem_key)
        total += member.file_size
        members.append(member)
    if total > limits.max_uncompressed_bytes:
        raise ZipRejected("the archive decompresses to more than the allowed total size",
                          code="zip_too_large", status=413,
                          limit=limits.max_uncompressed_bytes, declared=total)
    if not any(m.kind == "csv" for m in members):
        raise ZipRejected("the archive holds no CSV file", code="zip_empty")
    return members


def open_archive(fp: BinaryIO, limits: ZipLimits) -> zipfile.ZipFile:
    """Open ``fp`` as a zip, refusing non-zips and too many entries before zipfile parses them.

    Only archives that start with a zip record are accepted: zipfile would also read a zip
    behind any prefix (self-extractors, a CSV with a zip appended), and then what the client
    sent would depend on who reads it.
    """
    if fp.read(4) not in (_LOCAL_SIG, _EOCD_SIG):
        raise ZipRejected("the file is not a zip archive", code="not_a_zip")
    declared = _declared_entry_count(fp)
    if declared is None:
        raise ZipRejected("the zip archive is truncated (no end of central directory)",
                          code="zip_truncated")
    if declared > limits.max_entries:
        raise _too_many(declared, limits)
    fp.seek(0)
    try:
        zf = zipfile.ZipFile(fp)
    except UnicodeDecodeError as exc:
        raise ZipRejected("a member name is not valid UTF-8",
                          code="zip_bad_member_name") from exc
    except EOFError as exc:
        raise ZipRejected("the zip archive is truncated", code="zip_truncated") from exc
    except (zipfile.BadZipFile, ValueError, struct.error) as exc:
        raise ZipRejected("the zip archive is corrupt: %s" % exc, code="zip_corrupt") from exc
    # The count in the end record is only a claim; the directory itself is what gets read.
    if len(zf.filelist) > limits.max_entries:
        zf.close()
        raise _too_many(len(zf.filelist), limits)
    return zf


def check_entry(info: zipfile.ZipInfo, limits: ZipLimits) -> ZipMember | None:
    """The per-entry checks; ``None`` for an entry that is skipped (directory, macOS files)."""
    name = info.orig_filename
    classified = classify(name)
    mode = info.external_attr >> 16
    if classified is None or stat.S_ISDIR(mode):
        return None
    kind, stem = classified
    if stat.S_ISLNK(mode):
        raise ZipRejected("symbolic links are not accepted", code="zip_symlink", name=name)
    if info.flag_bits & (_FLAG_ENCRYPTED | _FLAG_STRONG_ENCRYPTION):
        raise ZipRejected("encrypted members are not accepted", code="zip_encrypted", name=name)
    if info.compress_type not in SUPPORTED_METHODS:
        raise ZipRejected("unsupported compression method (use deflate)",
                          code="zip_unsupported_compression", name=name,
                          method=info.compress_type)
    if info.compress_type == zipfile.ZIP_STORED and info.compress_size != info.file_size:
        raise ZipRejected("a stored member's sizes disagree", code="zip_size_mismatch",
                          name=name)
    if info.file_size > limits.max_uncompressed_bytes:
        raise ZipRejected("a member is larger than the allowed total size",
                          code="zip_too_large", status=413, name=name,
                          limit=limits.max_uncompressed_bytes, declared=info.file_size)
    if (info.file_size > limits.ratio_grace_bytes
            and info.file_size > info.compress_size * limits.max_ratio):
        raise ZipRejected("a member's compression ratio is too high (zip bomb)",
                          code="zip_bomb", name=name, max_ratio=limits.max_ratio,
                          ratio=round(info.file_size / max(info.compress_size, 1), 1))
    return ZipMember(name=info.filename, stem=stem, kind=kind,
                     compressed_size=info.compress_size, file_size=info.file_size)


def _declared_entry_count(fp: BinaryIO) -> int | None:
    """Entries announced by the end record (zip64 aware), or None when there is no end record.

    zipfile builds one object per directory entry on open; an archive of a million empty
    entries must be refused before that, not after.
    """
    size = fp.seek(0, os.SEEK_END)
    start = max(0, size - _EOCD.size - 0xFFFF)  # the record, then up to 64 KiB of comment
    fp.seek(start)
    tail = fp.read()
    pos = tail.rfind(_EOCD_SIG)
    if pos < 0 or len(tail) - pos < _EOCD.size:
        return None
    count = _EOCD.unpack_from(tail, pos)[4]
    locator = pos - _ZIP64_LOCATOR.size
    if locator >= 0 and tail[locator:locator + 4] == _ZIP64_LOCATOR_SIG:
        offset = _ZIP64_LOCATOR.unpack_from(tail, locator)[2]
        fp.seek(offset)
        record = fp.read(_ZIP64_EOCD.size)
        if len(record) == _ZIP64_EOCD.size and record[:4] == _ZIP64_EOCD_SIG:
            count = _ZIP64_EOCD.unpack(record)[7]  # zipfile too trusts it over 0xFFFF
    return count


def _too_many(count: int, limits: ZipLimits) -> ZipRejected:
    return ZipRejected("the archive holds too many entries", code="zip_too_many_entries",
                       limit=limits.max_entries, entries=count)
