"""The CSV engine in one process: chunker, header, worker (the pool is in test_csvpool.py)."""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import csv_checkers
from ingest_server.csvstream import (
    CheckerRecipe,
    Chunk,
    RowChunker,
    header_rows,
    parse_header,
    process_chunk,
    register_checker_factory,
)
from ingest_server.csvstream import worker
from ingest_server.errors import BadRequest, FileRejected

_keys = itertools.count()


@dataclass
class Outcome:
    header: list[str]
    chunks: list[Chunk]
    rows: int = 0
    valid: int = 0
    invalid: int = 0
    valid_csv: bytes = b""
    errors_csv: bytes = b""
    sample: list[dict[str, Any]] = field(default_factory=list)
    partials: list[Any] = field(default_factory=list)  # each chunk's, when the checker summarises

    def valid_rows(self) -> list[list[str]]:
        return list(csv.reader(io.StringIO(self.valid_csv.decode(), newline="")))

    def error_rows(self) -> list[list[str]]:
        return list(csv.reader(io.StringIO(self.errors_csv.decode(), newline="")))


def feed(data: bytes, splits: Sequence[int] = (), **options: Any) -> RowChunker | list:
    """All chunks of ``data`` fed in pieces cut at ``splits``; returns (chunker, chunks)."""
    chunker = RowChunker(**options)
    chunks: list[Chunk] = []
    bounds = [0, *sorted(set(splits)), len(data)]
    for a, b in itertools.pairwise(bounds):
        chunks += chunker.feed(data[a:b])
    chunks += chunker.finish()
    return chunker, chunks


def run(data: bytes, make_spec: Callable[[list[str]], CheckerRecipe], splits: Sequence[int] = (),
        sample_limit: int = 10_000, **options: Any) -> Outcome:
    chunker, chunks = feed(data, splits, **options)
    assert [c.seq for c in chunks] == list(range(len(chunks)))
    key = f"test-{next(_keys)}"
    spec = make_spec(chunker.header)
    register_checker_factory(key, spec)
    out = Outcome(chunker.header, chunks)
    valid_head, error_head = header_rows(chunker.header, spec().output_header)
    out.valid_csv, out.errors_csv = valid_head, error_head
    line = chunker.header_lines + 1
    for chunk in chunks:
        assert chunk.first_line == line
        line += chunk.lines
        result = process_chunk(chunk, key, sample_limit=sample_limit)
        assert result.rows == result.valid_rows + result.invalid_rows
        assert result.last_line == chunk.first_line + chunk.lines - 1
        out.rows += result.rows
        out.valid += result.valid_rows
        out.invalid += result.invalid_rows
        out.valid_csv += result.valid_csv
        out.errors_csv += result.errors_csv
        out.sample += result.errors_sample
        out.partials.append(result.partials)
    return out


def ints(*columns: str, **kw: Any) -> Callable[[list[str]], CheckerRecipe]:
    return lambda header: CheckerRecipe(csv_checkers.int_checker, (header, columns), kw)


def reject_all(header: list[str]) -> CheckerRecipe:
    return CheckerRecipe(csv_checkers.reject_all, (header,))


def fit(cells: list[str], n: int) -> list[str]:
    """A row as the error file holds it: fitted to the header's ``n`` cells (a ragged row is
    padded with blanks or cut, so the file stays a valid CSV under its header)."""
    return cells[:n] + [""] * (n - len(cells))


def oracle(text: str) -> list[tuple[int, list[str]]]:
    """(first physical line, cells) of every non-blank data record, by csv.reader on the
    whole text, fitted to the header: what chunked processing must reproduce."""
    reader = csv.reader(io.StringIO(text, newline=""))
    out, prev = [], 0
    for row in reader:
        line, prev = prev + 1, reader.line_num
        if row:
            out.append((line, row))
    n = len(out[0][1]) if out else 0
    return [(line, fit(cells, n)) for line, cells in out[1:]]


def rejected(out: Outcome) -> list[tuple[int, list[str]]]:
    return [(int(r[-2]), r[:-2]) for r in out.error_rows()[1:]]


# --- line numbers, quoting, line endings ---------------------------------------------------

QUOTED = (
    b'id,name,n\n'                          # 1
    b'1,"multi\nline, with comma",5\n'      # 2-3
    b'2,plain,x\n'                          # 4  bad n
    b'3,"a ""quoted""\r\nvalue",7\r\n'      # 5-6
    b'4,"three\n\nlines",y\r'               # 7-9 bad n, CR ending
    b'5,last,9'                             # 10 no terminator
)


@pytest.mark.parametrize("chunk_size", [1, 7, 1 << 20])
def test_exact_physical_lines_with_quoted_newlines(chunk_size: int) -> None:
    out = run(QUOTED, ints("n"), chunk_size=chunk_size, max_line_bytes=1 << 20)
    assert (out.rows, out.valid, out.invalid) == (5, 3, 2)
    assert [(s["line"], s["column"], s["value"], s["code"]) for s in out.sample] == [
        (4, "n", "x", "type_error"), (7, "n", "y", "type_error")]
    errors = out.error_rows()
    assert errors[0] == ["id", "name", "n", "_line", "_errors"]
    assert errors[2] == ["4", "three\n\nlines", "y", "7", "n: type_error: must be an integer"]
    assert out.valid_rows() == [["id", "name", "n"], ["1", "multi\nline, with comma", "5"],
                                ["3", 'a "quoted"\r\nvalue', "7"], ["5", "last", "9"]]
    assert out.valid_csv.endswith(b"5,last,9\r\n")


def test_crlf_cr_lf_mix_and_blank_lines() -> None:
    data = b"a,b\r\n1,2\r3,x\n\n\r\n4,5\r\n6,y\r"
    out = run(data, ints("b"), chunk_size=3, max_line_bytes=64)
    assert rejected(out) == [(3, ["3", "x"]), (7, ["6", "y"])]
    assert (out.rows, out.valid) == (4, 2)  # blank lines 4 and 5 are not rows


def test_chunks_are_whole_records_and_line_counts_add_up() -> None:
    _, chunks = feed(QUOTED * 1, chunk_size=12, max_line_bytes=1 << 10)
    assert b"".join(c.data for c in chunks) == QUOTED.split(b"\n", 1)[1]
    assert chunks[-1].first_line + chunks[-1].lines - 1 == 10
    assert all(c.data.count(b'"') % 2 == 0 for c in chunks)


def test_stray_quote_in_unquoted_field_is_literal_like_csv_reader() -> None:
    data = b"h,w\n" + b"".join(b"p%d,5'10\"\n" % i for i in range(200))
    out = run(data, reject_all, chunk_size=64, max_line_bytes=256)
    assert rejected(out) == oracle(data.decode())
    assert len(out.chunks) > 10 and out.rows == 200


def test_bom_is_stripped_even_when_split() -> None:
    data = b"\xef\xbb\xbfid,n\n1,2\n"
    for splits in ([], [1], [1, 2], [2, 3, 4]):
        out = run(data, ints("n"), splits=splits)
        assert out.header == ["id", "n"] and out.valid == 1


# --- arbitrary splits: the output never depends on how bytes arrive ------------------------

BODY = ("k,v\n1,\"é€\n,\"\"x\"\"\"\r\n2,ü\r3,\"\"\n\n4,\"a\rb\",5\n" * 3).encode()


def test_byte_by_byte_equals_whole() -> None:
    whole = run(BODY, reject_all)
    one = run(BODY, reject_all, splits=range(len(BODY)), chunk_size=5, max_line_bytes=64)
    assert (one.valid_csv, one.errors_csv, one.sample) == (
        whole.valid_csv, whole.errors_csv, whole.sample)
    assert rejected(whole) == oracle(BODY.decode())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(splits=st.lists(st.integers(0, len(BODY)), max_size=12),
       chunk_size=st.integers(1, 40))
def test_random_splits_equal_whole(splits: list[int], chunk_size: int) -> None:
    whole = run(BODY, ints("k"))
    split = run(BODY, ints("k"), splits=splits, chunk_size=chunk_size, max_line_bytes=1 << 10)
    assert (split.valid_csv, split.errors_csv, split.sample) == (
        whole.valid_csv, whole.errors_csv, whole.sample)


# random text from the characters that matter, compared with csv.reader on the whole text
_ALPHABET = st.sampled_from(['a', 'b', ',', '"', '\n', '\r', '\r\n', 'é', '€', ' '])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.lists(_ALPHABET, max_size=80).map("".join),
       splits=st.lists(st.integers(0, 400), max_size=8), chunk_size=st.integers(1, 16))
def test_any_text_parses_like_csv_reader(body: str, splits: list[int], chunk_size: int) -> None:
    text = "x,y\n" + body
    out = run(text.encode(), reject_all, splits=splits, chunk_size=chunk_size,
              max_line_bytes=1 << 10)
    assert rejected(out) == oracle(text)


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(st.lists(st.sampled_from(["a", "1", " ", "é", "\x0b", "\x1c", "\u2028",
                                                ",", ";", "\t", "'"]), max_size=12).map("".join),
                      max_size=20),
       delimiter=st.sampled_from([",", ";", "\t", "|"]))
def test_plain_lines_split_like_csv_reader(lines: list[str], delimiter: str) -> None:
    """A plain chunk's lines (no quote, CR, LF or NUL) are split at the delimiter instead of
    parsed by csv.reader: the same records, blank lines included (other line breaks of
    ``str.splitlines`` are cells' text to both)."""
    assert list(worker._split(lines, delimiter)) == list(csv.reader(lines, delimiter=delimiter))


# --- valid rows written as they arrived ----------------------------------------------------

def as_sent(*columns: str, **kw: Any) -> Callable[[list[str]], CheckerRecipe]:
    return lambda header: CheckerRecipe(csv_checkers.as_sent_checker, (header, columns), kw)


# Ragged rows, blank lines, lone CRs, CRLF and non-ASCII text: chunks that take the path and
# chunks that do not. With quotes: records over several lines, stray quotes, quoted commas.
_PLAIN_ALPHABET = st.sampled_from(["1", "2", "a", ",", ",", "\n", "\n", "\r", "\r\n", "é",
                                   " ", "\n\n"])
_QUOTED_ALPHABET = st.sampled_from(["1", "a", ",", ",", "\n", "\n", "\r\n", "é", '"', '""',
                                    '"a,b"', '"x\ny"', '"\r\n"', '"1"'])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.one_of(st.lists(_PLAIN_ALPHABET, max_size=120),
                      st.lists(_QUOTED_ALPHABET, max_size=120)).map("".join),
       splits=st.lists(st.integers(0, 400), max_size=6), chunk_size=st.integers(1, 64),
       upper=st.booleans())
def test_rows_written_as_sent_equal_the_rows_serialised(body: str, splits: list[int],
                                                        chunk_size: int, upper: bool) -> None:
    data = ("k,v,w\n" + body).encode()
    kw: dict[str, Any] = {"upper": "v"} if upper else {}
    options = {"splits": splits, "chunk_size": chunk_size, "max_line_bytes": 1 << 10}
    sent, serialised = run(data, as_sent("k", **kw), **options), run(data, ints("k", **kw),
                                                                      **options)
    assert (sent.rows, sent.valid, sent.invalid) == (
        serialised.rows, serialised.valid, serialised.invalid)
    assert (sent.valid_csv, sent.errors_csv, sent.sample) == (
        serialised.valid_csv, serialised.errors_csv, serialised.sample)


def test_rows_written_as_sent_are_the_bytes_that_arrived() -> None:
    data = b"k,v\n1,keep\n2,x\r\n\nbad,y\n3,\xc3\xa9\n4,x,,\n5,x"
    out = run(data, as_sent("k", lie_on="x"))
    # A checker that says it changes no row in place is taken at its word: the valid rows of
    # a quote-free chunk are its lines (CRLF), less the rejected and blank ones. A fitted row
    # (trailing blank cells) is written as fitted.
    assert out.valid_csv == "k,v\r\n1,keep\r\n2,x\r\n3,é\r\n4,changed\r\n5,x\r\n".encode()
    assert rejected(out) == [(5, ["bad", "y"])] and (out.rows, out.valid) == (6, 5)
    # In a chunk with quotes, a record that holds a quote (or spans lines) is written by
    # csv.writer from the row as checked; the one-line records without one still as sent.
    quoted = run((data + b"\n").replace(b"keep", b'"x"'), as_sent("k", lie_on="x"))
    assert quoted.valid_rows()[1:] == [["1", "changed"], ["2", "x"], ["3", "é"],
                                       ["4", "changed"], ["5", "x"]]


@pytest.mark.parametrize("summarise", [True, "from_csv"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.lists(_PLAIN_ALPHABET, max_size=120).map("".join),
       splits=st.lists(st.integers(0, 400), max_size=6), chunk_size=st.integers(1, 64))
def test_rows_written_as_sent_are_summarised_as_checked(summarise: bool | str, body: str,
                                                       splits: list[int],
                                                       chunk_size: int) -> None:
    """A checker that also summarises the valid rows (the datasets' partial aggregates) gets
    them as checked, rows changed on the way included (ragged rows, fitted), while the chunk is
    still written as sent; a summary that reads the valid output's bytes (``from_csv``) reads
    exactly those rows. (Not with ``lie_on``: a row a checker changes in place while saying it
    does not is written as sent, so its summary and its file would rightly differ.)"""
    data = ("k,v,w\n" + body).encode()
    options = {"splits": splits, "chunk_size": chunk_size, "max_line_bytes": 1 << 10}
    out = run(data, as_sent("k", summarise=summarise), **options)
    plain = run(data, as_sent("k"), **options)
    assert (out.valid_csv, out.errors_csv) == (plain.valid_csv, plain.errors_csv)
    summarised = [row for p in out.partials if p for row in p]
    assert summarised == out.valid_rows()[1:]


# --- row-level problems --------------------------------------------------------------------

def test_ragged_rows() -> None:
    out = run(b"a,b,c\n1,2,3\n1,2\n1,2,3,4\n1,2,3,,\t,\n", ints())
    assert out.valid == 2  # trailing blank cells past the header are not columns
    assert [(s["line"], s["column"], s["value"], s["code"], s["message"])
            for s in out.sample] == [
        (3, None, "1,2", "ragged_row", "expected 3 cells, got 2"),
        (4, None, "1,2,3,4", "ragged_row",
         "expected 3 cells, got 4; cells past the header: '4'")]
    # The error file stays a CSV under its header: every row has the header's cells.
    assert out.error_rows() == [
        ["a", "b", "c", "_line", "_errors"],
        ["1", "2", "", "3", "(row): ragged_row: expected 3 cells, got 2"],
        ["1", "2", "3", "4", "(row): ragged_row: expected 3 cells, got 4; cells past the "
                             "header: '4'"]]
    assert out.valid_rows() == [["a", "b", "c"], ["1", "2", "3"], ["1", "2", "3"]]


def test_excel_trailing_empty_columns() -> None:
    data = b"a,b,c,,,\n1,2,3,,,\n4,5,6\n7,8,9,,\n1,2,3,,,,,,\n1,2,3,,x,\n1,2\n1,2,3,,,,y\n"
    chunker, _ = feed(data)
    assert chunker.header == ["a", "b", "c", "", "", ""]  # shape.py drops the empty names
    from ingest_server.csvstream.shape import shape_header, shaped_checker  # noqa: PLC0415
    shape = shape_header(chunker.header)
    assert shape.names == ("a", "b", "c") and shape.width == 6
    assert shape.warnings[0]["code"] == "trailing_empty_columns"
    assert shape.warnings[0]["details"] == {"count": 3, "positions": [4, 5, 6]}
    out = run(data, lambda header: CheckerRecipe(
        shaped_checker,
        (shape, CheckerRecipe(csv_checkers.int_checker, (list(shape.names), ("a",))))))
    assert out.valid == 4 and out.invalid == 3
    assert [(s["line"], s["code"], s["message"]) for s in out.sample] == [
        (6, "value_in_unnamed_column", "column 5 has no name but holds 'x'"),
        (7, "ragged_row", "expected 3 (plus 3 dropped) cells, got 2"),
        (8, "ragged_row", "expected 3 (plus 3 dropped) cells, got 7; cells past the header: "
                          "'','','','y'")]


def test_invalid_utf8_is_an_error_on_exactly_its_line() -> None:
    data = b"id,name\n1,ok\n2,caf\xe9\n3,\"multi\nline \xff\"\n4,fine \xc3\xa9\n"
    out = run(data, ints("id"), chunk_size=1 << 20)
    assert out.valid_rows()[1:] == [["1", "ok"], ["4", "fine é"]]
    assert [(s["line"], s["column"], s["value"], s["code"]) for s in out.sample] == [
        (3, "name", "caf\\xe9", "encoding_error"),
        (4, "name", "multi\nline \\xff", "encoding_error")]
    assert out.errors_csv.decode("utf-8")  # the error file stays valid UTF-8


def test_nul_bytes_are_row_errors() -> None:
    out = run(b"id,name\n1,a\x00b\n2,ok\n", ints("id"))
    assert out.valid == 1 and out.invalid == 1
    assert out.sample == [{"line": 2, "column": "name", "value": "a\\x00b", "code": "nul_byte",
                           "message": "the value contains a NUL byte"}]


def test_csv_injection_values_are_kept_verbatim() -> None:
    evil = "=cmd|' /C calc'!A0"
    data = f'id,formula\n1,{evil}\n2,"+SUM(1,2)"\n3,@x\n'.encode()
    out = run(data, ints("id"))
    assert out.valid_rows()[1:] == [["1", evil], ["2", "+SUM(1,2)"], ["3", "@x"]]


def test_transform_and_output_header() -> None:
    out = run(b"id,name\n1,ann\nx,bob\n", ints("id", upper="name"))
    assert out.valid_rows() == [["id", "name", "checked"], ["1", "ANN", "yes"]]
    # rejected rows keep their original cells
    assert out.error_rows()[1] == ["x", "bob", "3", "id: type_error: must be an integer"]


def test_sample_limit_per_chunk() -> None:
    data = b"n\n" + b"x\n" * 50
    out = run(data, ints("n"), sample_limit=7)
    assert out.invalid == 50 and len(out.sample) == 7
    assert len(out.error_rows()) == 51


def test_error_file_reparses_with_correct_lines() -> None:
    rows = [[str(i), "x" if i % 3 == 0 else str(i), f"t\n{i}"] for i in range(1, 300)]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([["a", "b", "c"], *rows])
    out = run(buf.getvalue().encode(), ints("b"), chunk_size=100, max_line_bytes=1 << 10)
    assert out.rows == out.valid + out.invalid == 299
    for cells in out.error_rows()[1:]:
        i = int(cells[0])
        assert int(cells[-2]) == 2 * i  # each record spans two physical lines
        assert cells[:3] == rows[i - 1]


# --- header --------------------------------------------------------------------------------

@pytest.mark.parametrize("data, code", [
    (b"", "empty_file"),
    (b"\xef\xbb\xbf", "empty_file"),
    (b"  \r\n", "empty_file"),
    (b"id,caf\xe9\n1,2\n", "not_text"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "not_text"),
    (b"PK\x03\x04\x14\x00\x08\x00", "not_a_csv"),
    (b"a,b\x00,c\n", "not_a_csv"),
    (b"a,b,a,c,b\n", "duplicate_header"),
    (b"a, ,c\n", "empty_header_name"),
    (b"a,,c\n", "empty_header_name"),
])
def test_header_rejections(data: bytes, code: str) -> None:
    with pytest.raises(FileRejected) as info:
        feed(data, splits=range(len(data)))
    assert info.value.code == code and info.value.status == 400
    assert info.value.details["line"] == 1


def test_header_details_and_stripping() -> None:
    with pytest.raises(FileRejected) as info:
        parse_header(b"a,b, a ,c,b\r\n", "utf-8")
    assert info.value.details["duplicates"] == ["a", "b"]
    assert parse_header(b'\xef\xbb\xbf id ,"na,me"\r\n', "utf-8") == ["id", "na,me"]
    assert parse_header("é,ü\n".encode("latin-1"), "latin-1") == ["é", "ü"]


def test_header_only_file_has_no_rows() -> None:
    for data in (b"a,b\n", b"a,b"):
        out = run(data, ints())
        assert out.header == ["a", "b"] and out.rows == 0 and out.chunks == []


# --- limits --------------------------------------------------------------------------------

def test_line_too_long_is_rejected_without_buffering_the_rest() -> None:
    chunker = RowChunker(chunk_size=64, max_line_bytes=256)
    chunker.feed(b"a,b\n1,2\n3,4\n")
    with pytest.raises(FileRejected) as info:
        for _ in range(100):  # an endless line: must fail long before 100 * 64 bytes
            chunker.feed(b"x" * 64)
    assert info.value.code == "line_too_long" and info.value.details["line"] == 4
    assert len(chunker._buf) <= 256 + 2 * 64  # what it holds back stayed bounded


def test_line_too_long_in_header_and_at_end() -> None:
    with pytest.raises(FileRejected) as info:
        feed(b"a" * 300 + b"\n", splits=range(0, 300, 10), chunk_size=64, max_line_bytes=256)
    assert info.value.details["line"] == 1
    with pytest.raises(FileRejected) as info:  # complete but too long, arriving at once
        feed(b"a\n1\n\"" + b"x\n" * 200 + b"\"\n", chunk_size=64, max_line_bytes=256)
    assert info.value.details["line"] == 3


def test_long_records_up_to_the_limit_are_fine() -> None:
    long = "y" * 200
    out = run(f"a,b\n1,{long}\n2,z\n".encode(), ints("a"), splits=range(0, 210, 3),
              chunk_size=16, max_line_bytes=256)
    assert out.valid_rows()[1:] == [["1", long], ["2", "z"]]


# --- encodings -----------------------------------------------------------------------------

def test_latin1_input() -> None:
    data = "id,nom\n1,café\n2,garçon\nx,Noël\n".encode("latin-1")
    out = run(data, ints("id"), splits=[9, 15], encoding="latin-1")
    assert out.valid_rows()[1:] == [["1", "café"], ["2", "garçon"]]
    assert out.sample[0]["line"] == 4 and out.sample[0]["value"] == "x"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_utf16_and_utf32_input_split_anywhere(encoding: str) -> None:
    text = "id,名前\r\n1,\"東京\n大阪\"\r\n2,x€\r\nz,ok\r\n"
    data = text.encode(encoding)
    out = run(data, ints("id"), splits=range(0, len(data), 3), encoding=encoding,
              chunk_size=8, max_line_bytes=1 << 10)
    assert out.header == ["id", "名前"]
    assert out.valid_rows()[1:] == [["1", "東京\n大阪"], ["2", "x€"]]
    assert [s["line"] for s in out.sample] == [5]


def test_undecodable_bytes_in_a_declared_encoding_are_row_errors() -> None:
    out = run(b"id,v\n1,ok\n2,bad\x81\n", ints("id"), encoding="cp1252")
    assert out.valid == 1
    assert out.sample[0]["line"] == 3 and out.sample[0]["value"] == "bad\\x81"
    broken = b"\xff\xfe" + "id,v\n1,".encode("utf-16-le") + b"\x00\xd8" + "\n".encode(
        "utf-16-le")
    out = run(broken, ints("id"), encoding="utf-16")
    assert out.sample[0]["code"] == "encoding_error" and out.sample[0]["line"] == 2


@pytest.mark.parametrize("name", ["klingon", "base64", "rot13x", ""])
def test_unknown_encoding(name: str) -> None:
    if not name:
        assert RowChunker(encoding=name).encoding == "utf-8"
        return
    with pytest.raises(BadRequest) as info:
        RowChunker(encoding=name)
    assert info.value.code == "unknown_encoding"
