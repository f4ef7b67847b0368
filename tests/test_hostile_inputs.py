"""Hostile input through the real app: every case gets a clear 4xx with a stable code (or a 200
where the data must be kept as data), and nothing is left behind: no published object, no staged
object, no spool file, every row accounted for.

Small cases are files in tests/corpus/; large ones (a 100 MB line, 100k columns) are generated
here as streams. Hostile ZIPs are covered by tests/test_ingest_zip.py (HOSTILE).
"""

from __future__ import annotations

import asyncio
import csv
import gzip
import io
import random
import threading
from pathlib import Path

import aiohttp
import asyncpg
import psutil
import pytest

from ingest_helpers import SPEC, form, landed, read_object, register, staged_left, statuses, upload

CORPUS = Path(__file__).parent / "corpus"
UPLOAD_PATH = "/api/ingestion/new_programs"
HEADER = b"date,school_id,teachers_present,remarks,score\n"
FIELDS = {"ingestion_type": "event", "ingestion_name": "teacherspresent",
          "program_name": "school-attendance"}
RSS_BUDGET = 200 * 1024 * 1024

# file -> (status, code) for refusals, or (200, (total, valid, invalid)) for data kept as data
EXPECTED = {
    "binary_png.csv": (400, "not_text"),
    "binary_gzip.csv": (400, "not_text"),
    "binary_elf.csv": (400, "not_a_csv"),
    "binary_pdf.csv": (400, "not_text"),  # not UTF-8, and no encoding given (issue 25)
    "utf16_undeclared.csv": (200, (1, 1, 0)),  # its BOM decides the encoding (issue 25)
    "nul_in_header.csv": (400, "not_a_csv"),
    "nul_in_rows.csv": (200, (3, 1, 2)),
    "header_only.csv": (200, (0, 0, 0)),  # nothing to report today (issue 25): lands empty
    "header_only_crlf_no_newline.csv": (200, (0, 0, 0)),
    "lone_cr_header.csv": (200, (0, 0, 0)),
    "bom_only.csv": (400, "empty_file"),
    "bom_and_blank_lines.csv": (400, "empty_file"),
    "only_separators.csv": (400, "empty_header_name"),
    "csv_injection.csv": (200, (9, 9, 0)),
    "deeply_quoted.csv": (200, (4, 4, 0)),
    "unterminated_quote.csv": (200, (1, 0, 1)),
    "newline_mix.csv": (200, (5, 3, 2)),
}


def spool_dir(client) -> Path:
    from ingest_server.web.appkeys import SETTINGS

    settings = client.app[SETTINGS]
    return settings.path(settings.server.state_dir) / "spool"


async def assert_nothing_left(client, *, published: bool = False) -> None:
    if not published:
        assert await landed(client) == []
    assert await staged_left(client) == []
    spool = spool_dir(client)
    assert not spool.exists() or list(spool.iterdir()) == []


def parse(data: bytes) -> list[list[str]]:
    return [r for r in csv.reader(io.StringIO(data.decode("utf-8"), newline="")) if r]


def test_every_corpus_file_has_an_expectation():
    assert sorted(p.name for p in CORPUS.glob("*.csv")) == sorted(EXPECTED)


ON_S3 = {"binary_png.csv", "nul_in_rows.csv", "csv_injection.csv", "deeply_quoted.csv",
         "unterminated_quote.csv"}  # the rest exercises the reader, the same on both backends


@pytest.mark.parametrize("name, settings", [(n, "local") for n in sorted(EXPECTED)]
                         + [(n, "s3") for n in sorted(ON_S3)], indirect=["settings"])
async def test_corpus_file(client, auth_headers, settings, clean_db, name):
    await register(client, auth_headers)
    content = (CORPUS / name).read_bytes()
    status, body = await upload(client, auth_headers, content)
    want_status, want = EXPECTED[name]
    assert status == want_status, body
    if status != 200:
        assert set(body) == {"error"} and body["error"]["code"] == want, body
        assert await statuses(clean_db) == ["rejected"]
        await assert_nothing_left(client)
        return
    counts = (body["total_rows"], body["valid_rows"], body["invalid_rows"])
    assert counts == want, body
    assert await statuses(clean_db) == ["uploaded"]
    await assert_nothing_left(client, published=True)
    if not body["total_rows"]:  # a header with no rows: its no_rows warning, nothing written
        assert body["objects"] == {"valid": None, "errors": None} and await landed(client) == []
        assert [w["code"] for w in body["warnings"]] == ["no_rows"]
        return
    # Every row is accounted for, and kept as it was sent.
    valid = await read_object(client, body["objects"]["valid"]) if body["valid_rows"] else [[]]
    errors = await read_object(client, body["objects"]["errors"]) if body["invalid_rows"] else [[]]
    assert len(valid) - 1 + len(errors) - 1 == body["total_rows"]
    if not body["invalid_rows"]:
        if content.startswith(b"\xff\xfe"):  # UTF-16 with its BOM: read as such
            content = content.decode("utf-16").encode("utf-8")
        sent = parse(content.lstrip(b"\xef\xbb\xbf"))
        assert valid == sent  # CSV injection and quoting kept verbatim: data is data


async def test_csv_injection_values_land_verbatim(client, auth_headers):
    await register(client, auth_headers)
    status, body = await upload(client, auth_headers, (CORPUS / "csv_injection.csv").read_bytes())
    rows = await read_object(client, body["objects"]["valid"])
    remarks = [r[3] for r in rows[1:]]
    assert remarks[0] == "=cmd|' /C calc'!A0"
    assert remarks[5] == "\t=1+1" and remarks[6] == "\r=1+1" and remarks[8] == "=1,2"


async def test_line_numbers_with_mixed_line_endings(client, auth_headers):
    await register(client, auth_headers)
    status, body = await upload(client, auth_headers, (CORPUS / "newline_mix.csv").read_bytes())
    assert [(e["line"], e["code"]) for e in body["errors_sample"]] == [
        (3, "type_error"), (9, "type_error")]


async def test_random_binary_data(client, auth_headers, clean_db):
    await register(client, auth_headers)
    for seed in range(5):
        content = random.Random(seed).randbytes(256 * 1024)
        status, body = await upload(client, auth_headers, content)
        assert status == 400, body
        assert body["error"]["code"] in ("not_text", "not_a_csv", "line_too_long"), body
    await assert_nothing_left(client)
    assert set(await statuses(clean_db)) == {"rejected"}


def oracle(content: bytes) -> tuple[int, list[int]]:
    """csv.reader's view of a body (header excluded): the number of records, and the physical
    start line of those holding an undecodable byte."""
    text = content.decode("utf-8", "surrogateescape")
    reader = csv.reader(io.StringIO(text, newline=""))
    rows, bad, prev = 0, [], 0
    for i, row in enumerate(reader):
        start, prev = prev + 1, reader.line_num
        if i == 0 or not row:
            continue
        rows += 1
        if any("\udc80" <= ch <= "\udcff" for cell in row for ch in cell):
            bad.append(start)
    return rows, bad


async def test_invalid_utf8_at_every_offset(client, auth_headers):
    """An invalid byte anywhere in the header refuses the file; anywhere in a row makes exactly
    that record an ``encoding_error`` at its physical line, and every other row is kept (a byte
    before an opening quote makes the quote literal, as in csv.reader: the oracle)."""
    await register(client, auth_headers)
    body_rows = b"2024-01-01,S1,3,ok,1\n2024-01-02,S2,4,\"two\nlines\",2\n2024-01-03,S3,5,,\n"
    clean = HEADER + body_rows
    published = 0
    # every offset in the rows, every third in the header (all refused the same way)
    offsets = [*range(0, len(HEADER), 3), *range(len(HEADER), len(clean) + 1)]
    for offset in offsets:
        # invalid, truncated, surrogate: one per offset, rotating, keeps the test short
        for bad in [(b"\xff", b"\xc3", b"\xed\xa0\x80")[offset % 3]]:
            content = clean[:offset] + bad + clean[offset:]
            # encoding=utf-8 given: trusted, so a bad byte is a row error (without it the file
            # is refused with its likely encoding named: test_files.py)
            status, body = await upload(client, auth_headers, content,
                                        params={"encoding": "utf-8"})
            if offset < len(HEADER):
                assert (status, body["error"]["code"]) == (400, "not_text"), (offset, body)
                continue
            assert status == 200, (offset, body)
            published += 1
            rows, bad_lines = oracle(content)
            assert len(bad_lines) == 1
            assert body["total_rows"] == rows and body["valid_rows"] + body["invalid_rows"] == rows
            assert ("encoding_error", bad_lines[0]) in {
                (e["code"], e["line"]) for e in body["errors_sample"]}, (offset, body)
            assert all(e["code"] in ("encoding_error", "ragged_row")
                       for e in body["errors_sample"]), (offset, body)
    assert published > 0
    assert await staged_left(client) == []


class RssPeak:
    """Samples this process's RSS (the in-process test server's) in a thread."""

    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.base = self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __enter__(self) -> "RssPeak":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def growth(self) -> int:
        return self.peak - self.base


def multipart_stream(parts_before: dict[str, str], file_pieces, *, boundary: str = "HoStIlE",
                     filename: str = "big.csv", parts_after: dict[str, str] | None = None):
    """A multipart body as an async generator, so a huge file never sits in the test's memory."""
    b = boundary.encode()

    def field(name: str, value: str) -> bytes:
        return (b"--" + b + b'\r\nContent-Disposition: form-data; name="' + name.encode()
                + b'"\r\n\r\n' + value.encode() + b"\r\n")

    async def gen():
        for k, v in parts_before.items():
            yield field(k, v)
        yield (b"--" + b + b'\r\nContent-Disposition: form-data; name="file"; filename="'
               + filename.encode() + b'"\r\nContent-Type: text/csv\r\n\r\n')
        for piece in file_pieces():
            yield piece
            await asyncio.sleep(0)
        yield b"\r\n"
        for k, v in (parts_after or {}).items():
            yield field(k, v)
        yield b"--" + b + b"--\r\n"

    return gen(), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


@pytest.mark.parametrize("where", ["header", "row", "row-spooled"])
async def test_100_mb_single_line_is_refused_with_flat_memory(client, auth_headers, clean_db,
                                                              where):
    await register(client, auth_headers)
    piece = b"x" * (1 << 20)
    size = 100 if where != "row-spooled" else 20  # spooled: written to disk before it is read

    def pieces():
        if where != "header":
            yield HEADER + b"2024-01-01,S1,3,"
        for _ in range(size):
            yield piece

    before, after = (FIELDS, None) if where != "row-spooled" else ({}, FIELDS)
    data, headers = multipart_stream(before, pieces, parts_after=after)
    with RssPeak() as rss:
        resp = await client.post(UPLOAD_PATH, data=data, headers={**auth_headers, **headers})
        body = await resp.json()
    assert resp.status == 400, body
    assert body["error"]["code"] == "line_too_long"
    assert body["error"]["details"]["line"] == (1 if where == "header" else 2)
    assert rss.growth < RSS_BUDGET, f"RSS grew by {rss.growth / 2**20:.0f} MiB"
    assert await statuses(clean_db) == ["rejected"]
    await assert_nothing_left(client)


async def test_100k_columns(client, auth_headers, clean_db):
    """A 100k-column header is refused as unknown columns; a 100k-cell row under a good header
    is one ragged row, fitted to the header in the error file. Memory stays bounded.
    (The spec says additionalProperties: false; an open spec would pass the columns through.)"""
    closed = {**SPEC, "input": {**SPEC["input"], "additionalProperties": False}}
    await register(client, auth_headers, closed)
    wide = HEADER.rstrip(b"\n") + b"," + ",".join(f"c{i}" for i in range(100_000)).encode()
    with RssPeak() as rss:
        status, body = await upload(client, auth_headers, wide + b"\n" + b"1," * 100_004 + b"1\n")
    assert (status, body["error"]["code"]) == (400, "unknown_column"), str(body)[:300]
    await assert_nothing_left(client)
    row = b"2024-01-01,S1,3," + b"v," * 99_997 + b"v\n"
    with RssPeak() as rss2:
        status, body = await upload(client, auth_headers, HEADER + b"2024-01-01,S0,1,,\n" + row)
    assert status == 200, str(body)[:300]
    assert (body["total_rows"], body["valid_rows"], body["invalid_rows"]) == (2, 1, 1)
    assert body["errors_sample"][0]["code"] == "ragged_row"
    errors = await read_object(client, body["objects"]["errors"])
    # fitted to the header (the error file stays a CSV under it), the cut cells in the message
    assert len(errors[1]) == len(errors[0]) and errors[1][-2] == "3"
    assert "cells past the header: 'v','v'," in errors[1][-1]
    assert max(rss.growth, rss2.growth) < RSS_BUDGET
    await assert_nothing_left(client, published=True)


# --- multipart: the form itself is hostile ---------------------------------------------------

async def post_raw(client, headers, body: bytes, content_type: str):
    resp = await client.post(UPLOAD_PATH, data=io.BytesIO(body),
                             headers={**headers, "Content-Type": content_type})
    return resp.status, await resp.json()


def raw_form(parts: list[tuple[bytes, bytes]], boundary: bytes = b"b0undary") -> bytes:
    """``parts`` are (header block, body) pairs, sent as they are."""
    out = b"".join(b"--" + boundary + b"\r\n" + head + b"\r\n\r\n" + body + b"\r\n"
                   for head, body in parts)
    return out + b"--" + boundary + b"--\r\n"


def field_part(name: str, value: str) -> tuple[bytes, bytes]:
    return f'Content-Disposition: form-data; name="{name}"'.encode(), value.encode()


def file_part(content: bytes, filename: bytes = b"a.csv") -> tuple[bytes, bytes]:
    return (b'Content-Disposition: form-data; name="file"; filename="' + filename + b'"\r\n'
            b"Content-Type: text/csv", content)


GOOD_FILE = HEADER + b"2024-01-01,S1,3,,\n"
FIELD_PARTS = [field_part(k, v) for k, v in FIELDS.items()]
MULTIPART = "multipart/form-data; boundary=b0undary"


@pytest.mark.parametrize("content_type, body, status, code", [
    ("multipart/form-data", raw_form([*FIELD_PARTS, file_part(GOOD_FILE)]), 400,
     "bad_multipart"),                                                       # no boundary
    ("multipart/form-data; boundary=", raw_form([file_part(GOOD_FILE)]), 400, "bad_multipart"),
    ("multipart/form-data; boundary=other", raw_form([*FIELD_PARTS, file_part(GOOD_FILE)]), 400,
     "bad_multipart"),                                                       # wrong boundary
    (MULTIPART, b"", 400, "bad_multipart"),
    (MULTIPART, b"--b0undary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\""
                b"\r\n\r\n" + GOOD_FILE, 400, "bad_multipart"),              # never closed
    (MULTIPART, raw_form([field_part(f"f{i}", "x") for i in range(500)]), 400, "too_many_parts"),
    (MULTIPART, raw_form([*FIELD_PARTS, file_part(GOOD_FILE), file_part(GOOD_FILE)]), 400,
     "too_many_files"),
    (MULTIPART, raw_form(FIELD_PARTS), 400, "missing_file"),
    (MULTIPART, raw_form([file_part(GOOD_FILE)]), 400, "missing_field"),
    (MULTIPART, raw_form([field_part("ingestion_type", "x" * 10_000), file_part(GOOD_FILE)]),
     400, "field_too_large"),
    (MULTIPART, raw_form([(b'Content-Disposition: form-data; name="ingestion_type"',
                           b"\xff\xfe"), file_part(GOOD_FILE)]), 400, "invalid_field"),
    # refused after the file was spooled (file first): the spool file must go too
    (MULTIPART, raw_form([file_part(GOOD_FILE), *[field_part(f"f{i}", "x") for i in range(80)]]),
     400, "too_many_parts"),
    (MULTIPART, raw_form([file_part(GOOD_FILE), file_part(GOOD_FILE)]), 400, "too_many_files"),
    (MULTIPART, raw_form([file_part(GOOD_FILE), field_part("remarks", "x" * 10_000)]), 400,
     "field_too_large"),
    (MULTIPART, raw_form([file_part(GOOD_FILE), (b'Content-Disposition: form-data; name="a"; '
                                                 b'filename="x\x00y"', b"")]), 400,
     "bad_multipart"),
    ("text/csv", GOOD_FILE, 415, "not_multipart"),
    ("multipart/mixed; boundary=b0undary", raw_form([*FIELD_PARTS, file_part(GOOD_FILE)]), 415,
     "not_multipart"),
])
async def test_malformed_multipart(client, auth_headers, clean_db, content_type, body, status,
                                   code):
    await register(client, auth_headers)
    got_status, got = await post_raw(client, auth_headers, body, content_type)
    assert (got_status, got["error"]["code"]) == (status, code), got
    await assert_nothing_left(client)


@pytest.mark.parametrize("size", [16 * 1024, 1024 * 1024])
async def test_huge_part_headers(client, auth_headers, size):
    """A part header block far over any sane size: refused, not buffered without bound."""
    await register(client, auth_headers)
    head = b'Content-Disposition: form-data; name="file"; filename="a.csv"\r\nX-Pad: ' \
        + b"p" * size
    with RssPeak() as rss:
        status, body = await post_raw(client, auth_headers,
                                      raw_form([*FIELD_PARTS, (head, GOOD_FILE)]), MULTIPART)
    assert 400 <= status < 500, body
    assert body["error"]["code"] == "bad_multipart", body
    assert rss.growth < RSS_BUDGET
    await assert_nothing_left(client)


async def test_a_nul_in_a_part_header_is_refused(client, auth_headers):
    await register(client, auth_headers)
    status, body = await post_raw(client, auth_headers,
                                  raw_form([*FIELD_PARTS, file_part(GOOD_FILE, b"a\x00b.csv")]),
                                  MULTIPART)
    assert (status, body["error"]["code"]) == (400, "bad_multipart"), body
    await assert_nothing_left(client)


@pytest.mark.parametrize("filename, shown", [
    (b"../../../../etc/passwd.csv", "passwd.csv"),
    (b"..\\..\\windows\\system32\\x.csv", "....windowssystem32x.csv"),  # quoted-string escapes
    (b"%2e%2e%2f%2e%2e%2fescape.csv", "escape.csv"),
    (b"nul%00.csv", "nul.csv"),
    (b"/absolute/path.csv", "path.csv"),
    (b"\xe2\x80\xae.vsc.csv", ".vsc.csv"),         # right-to-left override is dropped
    (b"x" * 5000 + b".csv", "x" * 255),
    (b"", "upload"),
])
async def test_file_names_are_metadata_never_paths(client, auth_headers, tmp_path, filename,
                                                   shown):
    await register(client, auth_headers)
    before = {p for p in tmp_path.parent.rglob("*")}
    status, body = await post_raw(client, auth_headers,
                                  raw_form([*FIELD_PARTS, file_part(GOOD_FILE, filename)]),
                                  MULTIPART)
    assert status == 200, body
    assert body["filename"] == shown
    keys = await landed(client)
    assert keys == [body["objects"]["valid"]]
    assert keys[0].startswith("process_input/school-attendance/")
    assert body["upload_id"] in keys[0] and "passwd" not in keys[0] and ".." not in keys[0]
    new = {p for p in tmp_path.parent.rglob("*")} - before
    assert all(tmp_path in p.parents for p in new), new  # nothing written outside the test dir
    await assert_nothing_left(client, published=True)


HOSTILE_NAMES = ["x'; DROP TABLE uploads;--", "a/../../b", "../etc", "a\x00b", "a b", "%2e%2e",
                 "a\\b", "$(rm -rf /)", "`id`", "a;b", ".hidden", "-rf", "名前", "a" * 201,
                 "..", "a..b", "CON/../x", "a\nb"]


@pytest.mark.parametrize("field", ["program_name", "ingestion_name"])
async def test_program_names_with_sql_and_path_characters(client, auth_headers, clean_db, field):
    await register(client, auth_headers)
    for name in HOSTILE_NAMES:
        parts = [field_part(k, name if k == field else v) for k, v in FIELDS.items()]
        status, body = await post_raw(client, auth_headers, raw_form([*parts,
                                                                      file_part(GOOD_FILE)]),
                                      MULTIPART)
        assert (status, body["error"]["code"]) == (400, "invalid_name"), (name, body)
        assert body["error"]["details"]["field"] == field
    await assert_nothing_left(client)
    conn = await asyncpg.connect(clean_db)
    try:  # the tables are still there, untouched
        assert await conn.fetchval("SELECT count(*) FROM uploads") == 0
        assert await conn.fetchval("SELECT count(*) FROM specs") == 1
    finally:
        await conn.close()


async def test_spec_program_names_with_sql_and_path_characters(client, auth_headers, clean_db):
    for name in HOSTILE_NAMES:
        resp = await client.post("/api/spec/event", headers=auth_headers,
                                 json=dict(SPEC, program=name))
        body = await resp.json()
        assert resp.status == 400 and body["error"]["code"] in ("invalid_name", "invalid_spec"), \
            (name, body)
    for name in ("x'; DROP TABLE specs;--", "../etc"):
        resp = await client.get(f"/api/specs/event/{name}", headers=auth_headers)
        assert resp.status in (400, 404), await resp.text()
        assert (await resp.json())["error"]["code"] in ("invalid_name", "spec_not_found",
                                                        "not_found")
    conn = await asyncpg.connect(clean_db)
    try:
        assert await conn.fetchval("SELECT count(*) FROM specs") == 0
    finally:
        await conn.close()


GOOD = (b"date,school_id,teachers_present,remarks,score\n"
        b"2024-01-01,S1,10,ok,1.5\n2024-01-02,S3,3,,\n")


async def test_a_nul_in_an_error_detail_is_recorded(client, auth_headers, clean_db):
    """``encoding=utf-8<NUL>`` is refused with 400 and recorded as such (was: the NUL could not
    be stored in jsonb, so the upload stayed ``receiving`` and its key answered 409)."""
    await register(client, auth_headers)
    key = {"Idempotency-Key": "nul-1"}
    fields = dict(FIELDS, encoding="utf-8\x00")
    status, body = await upload(client, auth_headers, GOOD, fields=fields, extra_headers=key)
    assert status == 400 and body["error"]["code"] == "unknown_encoding", body
    assert await statuses(clean_db) == ["rejected"]
    status, again = await upload(client, auth_headers, GOOD, fields=fields, extra_headers=key)
    assert status == 400 and again["error"]["details"]["idempotent_replay"] is True
    resp = await client.get(f"/api/ingestion/uploads/{body['error']['details']['upload_id']}",
                            headers=auth_headers)
    record = await resp.json()
    assert record["error"]["details"]["encoding"] == "utf-8\\x00"


@pytest.mark.parametrize("body", [
    b'{"program": "x", "input": {"type": "object", "properties": {"a": {"type": "number", '
    b'"maximum": NaN}}}}',
    b'{"program": "x", "input": {"type": "object", "properties": {"a": {"type": "number", '
    b'"maximum": Infinity}}}}',
    b'{"program": "x", "input": {"type": "object", "properties": {"a": {"type": "number", '
    b'"maximum": 1e400}}}}',
    b'{"program": "x", "input": ' + b'{"a": ' * 100_000 + b'1' + b'}' * 100_001,
    b'[' * 100_000 + b']' * 100_000,
    b'{"program": "x", "n": ' + b'9' * 5000 + b'}',
], ids=["nan", "infinity", "1e400", "nested-object", "nested-array", "huge-int"])
async def test_hostile_json_specs_are_400(client, auth_headers, clean_db, body):
    resp = await client.post("/api/spec/event", data=body, headers=dict(
        auth_headers, **{"Content-Type": "application/json"}))
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["error"]["code"] == "invalid_json"


@pytest.mark.parametrize("path", [
    "/api/ingestion/file-status?filename=a%00b",
    "/api/specs/event/evil%00",
    "/api/ingestion/uploads?status=uploaded%00",
    "/api/ingestion/uploads/x%00y",
])
async def test_a_nul_in_the_path_or_query_is_400(client, auth_headers, path):
    resp = await client.get(path, headers=auth_headers)
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["error"]["code"] == "nul_character"


async def test_a_nul_in_an_upload_query_parameter_is_400(client, auth_headers, clean_db):
    await register(client, auth_headers)
    status, body = await upload(client, auth_headers, GOOD, params={"encoding": "utf-8\x00"})
    assert status == 400 and body["error"]["code"] == "nul_character"
    assert await statuses(clean_db) == []


async def test_a_compressed_request_body_is_415(client, auth_headers, clean_db):
    """aiohttp would inflate it with no ratio limit, outside the upload budget."""
    await register(client, auth_headers)
    data = gzip.compress(b"x" * 1_000_000)
    resp = await client.post("/api/ingestion/new_programs", data=data, headers=dict(
        auth_headers, **{"Content-Encoding": "gzip", "Content-Type": "multipart/form-data; "
                         "boundary=b"}))
    assert resp.status == 415, await resp.text()
    assert (await resp.json())["error"]["code"] == "unsupported_content_encoding"
    assert await statuses(clean_db) == []


@pytest.mark.parametrize("name", ["evil%0A", "evil%0D%0A", "evil%0A%0A"])
async def test_names_with_a_trailing_newline_are_refused(client, auth_headers, clean_db, name):
    resp = await client.put(f"/api/specs/dataset/{name}", headers=auth_headers,
                            json={"cerberus": {"a": {"type": "string"}}})
    assert resp.status == 400, await resp.text()  # was: 201
    assert (await resp.json())["error"]["code"] == "invalid_name"
    await register(client, auth_headers)
    status, body = await upload(client, auth_headers, GOOD, params={"program_name": "p\n"},
                                fields={"ingestion_type": "event",
                                        "ingestion_name": "teacherspresent"})
    assert status == 400 and body["error"]["code"] == "invalid_name"


@pytest.mark.parametrize("program", ["dimensions", "datasets", "Datasets"])
async def test_shared_folders_are_reserved_program_names(client, auth_headers, program):
    await register(client, auth_headers)
    status, body = await upload(client, auth_headers, GOOD, fields=dict(FIELDS,
                                                                        program_name=program))
    assert status == 400 and body["error"]["code"] == "reserved_name", body
    assert await landed(client) == []


@pytest.mark.parametrize("where", ["query-and-form", "form-twice", "query-twice"])
async def test_conflicting_options_are_400_naming_the_field(client, auth_headers, where):
    await register(client, auth_headers)
    if where == "query-and-form":
        status, body = await upload(client, auth_headers, GOOD, params={"dry_run": "true"},
                                    fields=dict(FIELDS, dry_run="false"))
    elif where == "query-twice":
        status, body = await upload(client, auth_headers, GOOD,
                                    params=[("dry_run", "true"), ("dry_run", "false")])
    else:
        data = aiohttp.FormData()
        for k, v in [*FIELDS.items(), ("dry_run", "true"), ("dry_run", "false")]:
            data.add_field(k, v)
        data.add_field("file", GOOD, filename="a.csv", content_type="text/csv")
        resp = await client.post("/api/ingestion/new_programs", data=data, headers=auth_headers)
        status, body = resp.status, await resp.json()
    assert status == 400, body
    assert body["error"]["code"] == "conflicting_field"
    assert body["error"]["details"]["field"] == "dry_run"
    assert await landed(client) == []
    # The same value twice is no conflict.
    status, body = await upload(client, auth_headers, GOOD, params={"dry_run": "true"},
                                fields=dict(FIELDS, dry_run="true"))
    assert status == 200 and body["dry_run"] is True


async def test_oversized_error_details_are_cut_in_answers_storage_and_listings(
        client, auth_headers, clean_db):
    """A 3 MB header name gave a 6 MB answer, stored as is; 1 MB cells went into errors_sample
    and every listing. Now answers and records are cut (the error file keeps every byte)."""
    await register(client, auth_headers)
    huge = "h" * 3_000_000
    content = f"date,school_id,teachers_present,{huge}\n2024-01-01,S1,1,x\n".encode()
    resp = await client.post("/api/ingestion/new_programs", data=form(content),
                             headers=auth_headers)
    text = await resp.text()
    # An undeclared column passes through (cQube's meaning) and is named in a warning: cut too.
    assert resp.status == 200 and len(text) < 20_000, len(text)
    body = await resp.json()
    assert body["warnings"][0]["code"] == "undeclared_columns"
    assert "3,000,000 characters" in str(body["warnings"][0]["details"]["columns"])
    conn = await asyncpg.connect(clean_db)
    try:
        stored = await conn.fetchval("SELECT length(warnings::text) FROM uploads")
    finally:
        await conn.close()
    assert stored < 20_000

    cell = "v" * 1_000_000
    rows = "".join(f"2024-01-01,S{i},{cell},,\n" for i in range(20))
    content = ("date,school_id,teachers_present,remarks,score\n" + rows).encode()
    resp = await client.post("/api/ingestion/new_programs", data=form(content),
                             headers=auth_headers)
    assert resp.status == 200
    assert len(await resp.read()) < 200_000
    body = await resp.json()
    assert body["invalid_rows"] == 20 and len(body["errors_sample"]) == 20
    assert all(len(e["value"]) < 1100 for e in body["errors_sample"])
    errors = await read_object(client, body["objects"]["errors"])
    assert errors[1][2] == cell  # the error file is exact
    resp = await client.get("/api/ingestion/uploads", headers=auth_headers)
    listing = await resp.json()
    assert len(await resp.read()) < 20_000
    assert all("errors_sample" not in u for u in listing["uploads"])
    resp = await client.get(f"/api/ingestion/uploads/{body['upload_id']}", headers=auth_headers)
    assert len((await resp.json())["errors_sample"]) == 20
