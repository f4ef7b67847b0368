"""The formula-safe transform: any CSV, cut anywhere, reads back as the same cells with a ``'``
before each cell that starts with = + - @ tab or CR (compared with the csv module)."""

from __future__ import annotations

import csv
import io

from hypothesis import given, settings, strategies as st

from ingest_server.formula_safe import FormulaEscaper, formula_safe

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
cells = st.text(alphabet=st.sampled_from(list('ab=+-@\t\r\n",; é')), max_size=8)


def _csv(rows: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue()


def _expected(rows):
    return [[("'" + c) if c.startswith(TRIGGERS) else c for c in row] for row in rows]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(cells, min_size=2, max_size=5), min_size=1, max_size=6),
       st.integers(min_value=1, max_value=9))
def test_any_csv_cut_anywhere_reads_back_escaped(rows, piece):
    text = _csv(rows)
    escaper = FormulaEscaper()
    out = "".join(escaper.feed(text[i:i + piece]) for i in range(0, len(text), piece))
    assert list(csv.reader(io.StringIO(out, newline=""))) == _expected(rows)


async def test_stream_of_bytes_split_inside_a_utf8_character():
    data = _csv([["é=", "=é"], ["-1", "ok"]]).encode()

    async def chunks():
        for i in range(len(data)):
            yield data[i:i + 1]

    out = b"".join([c async for c in formula_safe(chunks())]).decode()
    assert list(csv.reader(io.StringIO(out, newline=""))) == [["é=", "'=é"], ["'-1", "ok"]]
