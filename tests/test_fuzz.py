"""Property-based fuzzing (hypothesis) of the three parsers hostile input meets first:

* the CSV reader (``RowChunker`` + ``process_chunk``) on arbitrary *bytes* (invalid UTF-8, NULs,
  lone CRs, stray quotes), split anywhere, against ``csv.reader`` as the oracle;
* the spec translator: whatever JSON comes in, only ``InvalidSpec`` comes out, and what it
  returns always passes ``check_cerberus_schema``;
* multipart handling through the real app: random part layouts, orders, sizes and truncations
  never get a 5xx, always a 200 upload answer or the JSON error shape, and leave no spool file.
"""

from __future__ import annotations

import csv
import io
import itertools
import json

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ingest_helpers import SPEC, register, staged_left
import csv_checkers
from ingest_server.csvstream import (CheckerRecipe, RowChunker, process_chunk,
                                     register_checker_factory)
from ingest_server.errors import FileRejected, IngestError, InvalidSpec
from ingest_server.validation import check_cerberus_schema, translate_cqube_spec

_keys = itertools.count()
HEADER = b"a,b,c\n"

# --- the CSV reader on arbitrary bytes --------------------------------------------------------

# Bytes that matter to a CSV reader, plus anything at all.
CSV_BYTES = st.lists(st.one_of(
    st.sampled_from([b",", b'"', b"\n", b"\r", b"\r\n", b"\x00", b"\xff", b"\xc3", b"\xc3\xa9",
                     b"\xed\xa0\x80", b"\xef\xbb\xbf", b"x", b"1", b" ", b'""']),
    st.binary(max_size=4)), max_size=60).map(b"".join)


def oracle(body: bytes) -> list[tuple[int, list[str]]]:
    """(physical start line, cells) of every non-blank record after the header, by csv.reader on
    the whole text (undecodable bytes kept as surrogates, as the worker does)."""
    text = (HEADER + body).decode("utf-8", "surrogateescape")
    reader = csv.reader(io.StringIO(text, newline=""))
    out, prev = [], 0
    for i, row in enumerate(reader):
        line, prev = prev + 1, reader.line_num
        if i and row:
            out.append((line, row))
    return out


def shown(cell: str) -> str:
    return cell.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def run_reader(data: bytes, splits: list[int], chunk_size: int):
    chunker = RowChunker(chunk_size=chunk_size, max_line_bytes=max(chunk_size, 1 << 16))
    chunks = []
    bounds = [0, *sorted(set(s % (len(data) + 1) for s in splits)), len(data)]
    for a, b in itertools.pairwise(bounds):
        chunks += chunker.feed(data[a:b])
    chunks += chunker.finish()
    key = f"fuzz-{next(_keys)}"
    register_checker_factory(key, CheckerRecipe(csv_checkers.reject_all, (chunker.header,)))
    results = [process_chunk(c, key, sample_limit=10_000) for c in chunks]
    return chunker, results


@given(body=CSV_BYTES, splits=st.lists(st.integers(0, 500), max_size=6),
       chunk_size=st.sampled_from([1, 3, 16, 1 << 16]))
@settings(max_examples=300, deadline=None, database=None)
def test_reader_matches_csv_reader_on_any_bytes(body, splits, chunk_size):
    data = HEADER + body
    try:
        chunker, results = run_reader(data, splits, chunk_size)
    except FileRejected as e:
        # csv.reader itself fails on such text (a NUL inside quotes, ...): not_a_csv, never a crash
        assert e.code == "not_a_csv", e.code
        return
    assert chunker.header == ["a", "b", "c"]
    want = oracle(body)
    rows = sum(r.rows for r in results)
    assert rows == len(want) == sum(r.invalid_rows for r in results)
    got = [row for r in results
           for row in csv.reader(io.StringIO(r.errors_csv.decode("utf-8"), newline=""))]
    # ragged rows are fitted to the header's 3 cells in the error file
    assert [(int(r[-2]), r[:-2]) for r in got] == [
        (line, ([shown(c) for c in cells] + ["", "", ""])[:3]) for line, cells in want]
    for (line, cells), r in zip(want, got):  # each record's reason is the right one
        reason = r[-1]
        if any("\udc80" <= ch <= "\udcff" for c in cells for ch in c):
            assert "encoding_error" in reason
        elif any("\x00" in c for c in cells):
            assert "nul_byte" in reason
        elif len(cells) < 3 or any(c.strip() for c in cells[3:]):
            assert "ragged_row" in reason
        else:
            assert reason == "a: rejected: always"


@given(first=st.binary(max_size=200))
@settings(max_examples=300, deadline=None, database=None)
def test_any_header_bytes_are_a_header_or_a_file_rejection(first):
    chunker = RowChunker(chunk_size=64, max_line_bytes=1024)
    try:
        chunker.feed(first)
        chunker.finish()
    except FileRejected as e:
        assert e.status == 400 and e.code in {"not_text", "not_a_csv", "empty_file",
                                              "empty_header_name", "duplicate_header",
                                              "line_too_long"}, e.code
        return
    if chunker.header is not None:
        names = list(chunker.header)
        while names and not names[-1]:  # Excel's trailing empty columns, dropped by shape.py
            names.pop()
        assert names and all(name and name == name.strip() for name in names)
        assert len(set(chunker.header)) == len(chunker.header)


# --- the spec translator ----------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20)
NAMES = st.one_of(st.sampled_from(["id", "date", "school_id", "x y", "", "é", "$where", "a.b",
                                   "__proto__", "type", "required"]), st.text(max_size=6))
FIELD = st.dictionaries(
    st.sampled_from(["type", "shouldnotnull", "shouldNotNull", "unique", "format", "minimum",
                     "enum", "pattern"]),
    st.one_of(st.sampled_from(["string", "number", "integer", "boolean", "date", "date-time",
                               "object", "array", "null"]), st.booleans(), JSON),
    max_size=5)
SPEC_LIKE = st.fixed_dictionaries(
    {"program": st.one_of(NAMES, JSON),
     "input": st.one_of(st.fixed_dictionaries(
         {"type": st.sampled_from(["object", "array", 1]),
          "properties": st.one_of(st.dictionaries(NAMES, st.one_of(FIELD, JSON), max_size=5),
                                  JSON)},
         optional={"required": st.one_of(st.lists(NAMES, max_size=4), JSON),
                   "additionalProperties": st.booleans()}), JSON)},
    optional={"extra": JSON})


@given(body=st.one_of(SPEC_LIKE, JSON))
@settings(max_examples=250, deadline=None, database=None)
def test_translator_raises_only_invalid_spec_and_returns_valid_schemas(body):
    try:
        schema = translate_cqube_spec(body)
    except InvalidSpec as e:
        assert e.status == 400 and e.code == "invalid_spec"
        assert set(e.details) == {"keyword", "field"}
        json.dumps(e.to_json())  # the error shape is JSON, whatever the input
        return
    check_cerberus_schema(schema)
    assert json.loads(json.dumps(schema)) == schema  # storable as jsonb as it is
    assert set(schema) >= set(body["input"]["properties"])


def test_the_sample_spec_still_translates():
    check_cerberus_schema(translate_cqube_spec(SPEC))


# --- multipart handling through the real app ---------------------------------------------------

GOOD_ROWS = b"date,school_id,teachers_present\n2024-01-01,S1,3\n2024-01-01,S2,x\n"
PART = st.one_of(
    st.tuples(st.just("field"), st.sampled_from(["ingestion_type", "ingestion_name",
                                                 "program_name", "dry_run", "max_error_rate",
                                                 "encoding", "other", ""]),
              st.sampled_from(["event", "teacherspresent", "school-attendance", "true", "0.5",
                               "latin-1", "", "../x", "x" * 5000])),
    st.tuples(st.just("file"), st.sampled_from(["file", "file", "other", ""]),
              st.one_of(st.just(GOOD_ROWS), st.binary(max_size=300),
                        st.integers(0, 300_000).map(lambda n: GOOD_ROWS + b"2024,S,1\n" * n))),
)
FIELD_ORDER = ["ingestion_type", "ingestion_name", "program_name"]


def build(parts, boundary: bytes, filename: bytes) -> bytes:
    out = bytearray()
    for kind, name, value in parts:
        out += b"--" + boundary + b"\r\n"
        disposition = b'Content-Disposition: form-data; name="' + name.encode() + b'"'
        if kind == "file":
            out += disposition + b'; filename="' + filename + b'"\r\nContent-Type: text/csv'
            out += b"\r\n\r\n" + value + b"\r\n"
        else:
            out += disposition + b"\r\n\r\n" + value.encode() + b"\r\n"
    return bytes(out + b"--" + boundary + b"--\r\n")


@given(parts=st.lists(PART, max_size=8), fields_first=st.booleans(),
       boundary=st.sampled_from([b"b", b"----WebKitFormBoundary7MA4YWxkTrZu0gW", b"a'b()+_,-./:=?",
                                 b"x" * 70]),
       filename=st.sampled_from([b"a.csv", b"../a.csv", b"a.zip", b"", b"a\xc3\xa9.csv"]),
       cut=st.one_of(st.none(), st.integers(0, 2000)),
       content_type=st.sampled_from(["multipart/form-data; boundary={b}",
                                     'multipart/form-data; boundary="{b}"',
                                     "multipart/form-data", "multipart/form-data; boundary=zz"]),
       route=st.sampled_from(["new_programs", "national_programs"]))
@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
async def test_random_multipart_never_5xx(client, auth_headers, parts, fields_first, boundary,
                                          filename, cut, content_type, route):
    if fields_first:
        good = [("field", n, v) for n, v in zip(FIELD_ORDER, ["event", "teacherspresent",
                                                              "school-attendance"])]
        parts = good + parts
    body = build(parts, boundary, filename)
    if cut is not None:
        body = body[:cut]
    headers = dict(auth_headers, **{"Content-Type": content_type.format(b=boundary.decode())})
    resp = await client.post(f"/api/ingestion/{route}", data=io.BytesIO(body), headers=headers)
    answer = await resp.json()
    assert resp.status < 500, answer
    if resp.status == 200:
        assert {"upload_id", "status", "total_rows", "valid_rows", "invalid_rows"} <= set(answer)
        assert answer["total_rows"] == answer["valid_rows"] + answer["invalid_rows"]
    else:
        assert set(answer) == {"error"} and set(answer["error"]) == {"code", "message", "details"}
        assert answer["error"]["code"].replace("_", "").isalpha()
    assert await staged_left(client) == []
    from ingest_server.web.appkeys import SETTINGS

    cfg = client.app[SETTINGS]
    spool = cfg.path(cfg.server.state_dir) / "spool"
    assert not spool.exists() or list(spool.iterdir()) == []


@pytest.fixture
async def auth_headers(client, token):
    """The shared fixture's headers, with the spec registered once for all examples."""
    headers = {"Authorization": f"Bearer {token}"}
    await register(client, headers)
    await register(client, headers, dict(SPEC, program="data"))
    return headers
