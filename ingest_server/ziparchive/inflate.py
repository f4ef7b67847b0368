"""Decompressing one member while counting what really comes out.

The decompression is our own loop rather than ``ZipFile.open``: zipfile silently cuts a member
at its declared size and then reports a CRC error, so an archive whose headers understate the
size looks merely corrupt. Here the decompressor is asked for at most one byte more than
declared, which shows the lie (``zip_size_mismatch``) while inflating almost nothing of it.
"""

from __future__ import annotations

import bz2
import os
import re
import struct
import zipfile
import zlib
from collections.abc import Iterator
from typing import BinaryIO

from ingest_server.errors import ZipRejected

from .directory import ZipMember, check_entry, open_archive
from .limits import ByteBudget, ZipLimits
from .names import name_key

CHUNK_SIZE = 256 * 1024

_LOCAL_HEADER = struct.Struct("<4s5H3L2H")
_FLAG_ENCRYPTED = 0x1
_FLAG_DATA_DESCRIPTOR = 0x8
_FLAG_UTF8 = 0x800
_ZIP64_SIZE = 0xFFFFFFFF

# Leading bytes of archives and compressed streams, whatever the member is called.
_ARCHIVE_MAGIC = re.compile(
    rb"PK\x03\x04|PK\x05\x06|PK\x07\x08|\x1f\x8b|7z\xbc\xaf\x27\x1c|Rar!\x1a\x07"
    rb"|\xfd7zXZ\x00|\x28\xb5\x2f\xfd|BZh[1-9](?:1AY&SY|\x17rE8P\x90)")
_TAR_MAGIC_AT, _TAR_MAGIC = 257, b"ustar"
_MAGIC_WINDOW = _TAR_MAGIC_AT + len(_TAR_MAGIC)


def iter_member(path: str | os.PathLike[str], member: ZipMember, limits: ZipLimits,
                chunk_size: int = CHUNK_SIZE, budget: ByteBudget | None = None,
                ) -> Iterator[bytes]:
    """Decompressed bytes of ``member``; blocking. Raises ZipRejected.

    Output never goes past the declared size, and every byte is charged to ``budget`` (a new
    one from ``limits`` if none is shared). The declared ratio was checked against the
    compressed size actually read, so real output within the declared size is within the
    ratio too. A CRC or short-output error can only show at the end: treat a stream that
    raised as void, even though its earlier chunks were yielded.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")  # 0 would mean "no limit" to zlib
    if budget is None:
        budget = ByteBudget(limits.max_uncompressed_bytes)
    with open(path, "rb") as fp:
        with open_archive(fp, limits) as zf:
            info = zf.getinfo(member.name)
        if check_entry(info, limits) is None:
            raise ValueError("%r is not a member to read" % member.name)
        _seek_to_data(fp, info)
        chunks = _inflate(fp, info, budget, chunk_size)
        yield from _refuse_nested(chunks, info.orig_filename, chunk_size)


def _seek_to_data(fp: BinaryIO, info: zipfile.ZipInfo) -> None:
    """Check the local header against the central directory and move to the member's data.

    Extractors trust one header or the other; where they disagree, the archive shows one
    thing to the checks and another to whoever unpacks it.
    """
    fp.seek(info.header_offset)
    raw = fp.read(_LOCAL_HEADER.size)
    if len(raw) < _LOCAL_HEADER.size:
        raise _corrupt("truncated local header", info, code="zip_truncated")
    sig, _, flags, method, _, _, _, csize, usize, name_len, extra_len = _LOCAL_HEADER.unpack(raw)
    if sig != b"PK\x03\x04":
        raise _corrupt("bad local header", info)
    encoding = "utf-8" if flags & _FLAG_UTF8 else "cp437"
    try:
        local_name = fp.read(name_len).decode(encoding)
    except UnicodeDecodeError:
        local_name = None
    if local_name is None or name_key(local_name) != name_key(info.orig_filename):
        raise _corrupt("local header names another file", info)
    if flags & _FLAG_ENCRYPTED:
        raise ZipRejected("encrypted members are not accepted", code="zip_encrypted",
                          name=info.orig_filename)
    if method != info.compress_type:
        raise _corrupt("local header names another compression method", info)
    sizes_here = not flags & _FLAG_DATA_DESCRIPTOR and _ZIP64_SIZE not in (csize, usize)
    if sizes_here and (csize, usize) != (info.compress_size, info.file_size):
        raise ZipRejected("the member's headers declare different sizes",
                          code="zip_size_mismatch", name=info.orig_filename)
    fp.seek(info.header_offset + _LOCAL_HEADER.size + name_len + extra_len)


def _inflate(fp: BinaryIO, info: zipfile.ZipInfo, budget: ByteBudget,
             chunk_size: int) -> Iterator[bytes]:
    decoder = _Stored() if info.compress_type == zipfile.ZIP_STORED else (
        _Deflate() if info.compress_type == zipfile.ZIP_DEFLATED else _Bzip2())
    declared, left, produced, crc = info.file_size, info.compress_size, 0, 0
    while not decoder.eof:
        data = b""
        if decoder.wants_input and left > 0:
            data = fp.read(min(chunk_size, left))
            if not data:
                raise _corrupt("the member's data is cut short", info, code="zip_truncated")
            left -= len(data)
        try:
            # One byte over the declared size is enough to prove the header wrong.
            out = decoder.pull(data, min(chunk_size, declared - produced + 1))
        except (zlib.error, OSError, EOFError, ValueError) as exc:
            raise _corrupt("the member's compressed data is invalid", info) from exc
        if out:
            produced += len(out)
            if produced > declared:
                raise ZipRejected("the member decompresses to more than its declared size",
                                  code="zip_size_mismatch", name=info.orig_filename,
                                  declared=declared)
            budget.take(len(out))
            crc = zlib.crc32(out, crc)
            yield out
        elif not data and left == 0:
            if isinstance(decoder, _Stored):
                break
            raise _corrupt("the member's compressed data ends early", info,
                           code="zip_truncated")
    if produced != declared:
        raise ZipRejected("the member decompresses to less than its declared size",
                          code="zip_size_mismatch", name=info.orig_filename,
                          declared=declared, actual=produced)
    if crc != info.CRC:
        raise _corrupt("CRC mismatch", info)


def _refuse_nested(chunks: Iterator[bytes], name: str, chunk_size: int) -> Iterator[bytes]:
    """Look at the first bytes before passing anything on: a CSV may be an archive in disguise."""
    head = b""
    for chunk in chunks:
        head += chunk
        if len(head) >= _MAGIC_WINDOW:
            break
    if _ARCHIVE_MAGIC.match(head) or head[_TAR_MAGIC_AT:_MAGIC_WINDOW] == _TAR_MAGIC:
        raise ZipRejected(f"nested archives are not accepted: {name} is an archive (an .xlsx "
                          f"or .ods workbook is one too); a national programme ZIP holds CSV "
                          f"files: save the sheet as CSV, or upload the workbook by itself to "
                          f"/api/ingestion/new_programs", code="zip_nested_archive", name=name)
    for start in range(0, len(head), chunk_size):
        yield head[start:start + chunk_size]
    yield from chunks


class _Stored:
    eof = False
    wants_input = True

    def pull(self, data: bytes, room: int) -> bytes:
        return data  # stored sizes were checked equal, so data never exceeds the room


class _Deflate:
    def __init__(self) -> None:
        self._z = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate, as zip stores it

    @property
    def eof(self) -> bool:
        return self._z.eof

    @property
    def wants_input(self) -> bool:
        return not self._z.unconsumed_tail

    def pull(self, data: bytes, room: int) -> bytes:
        return self._z.decompress(self._z.unconsumed_tail + data, room)


class _Bzip2:
    def __init__(self) -> None:
        self._d = bz2.BZ2Decompressor()

    @property
    def eof(self) -> bool:
        return self._d.eof

    @property
    def wants_input(self) -> bool:
        return self._d.needs_input

    def pull(self, data: bytes, room: int) -> bytes:
        return self._d.decompress(data, room)


def _corrupt(why: str, info: zipfile.ZipInfo, code: str = "zip_corrupt") -> ZipRejected:
    return ZipRejected("the zip archive is corrupt: %s" % why, code=code,
                       name=info.orig_filename)
