"""A chunk's keys of a large dimension checked at once (``RowProcessing.unsure`` with numpy,
``csvstream.worker``) give exactly what the row-by-row check gives: the same valid rows (keys
landed as stored), error rows, lines, messages and count of rewritten rows."""

import pytest

from ingest_server.csvstream.checkers import register_checker_factory
from ingest_server.csvstream.chunker import Chunk
from ingest_server.csvstream.worker import process_chunk
from ingest_server.ingest.checker import build_checker
from ingest_server.processing.keys import KeyFiles, write_key_files
from ingest_server.processing.rowcheck import GOOD_SIZE, KeyCheck, ProcessingChecks

SCHOOLS = GOOD_SIZE + 2000  # large: checked a chunk at once
HEADER = ["date", "district_id", "school_id", "students"]


def key_files(tmp_path, name, keys):
    source = tmp_path / f"{name}.csv"
    source.write_text("".join(f'"{k}"\n' for k in keys))
    write_key_files(source, tmp_path / name, len(keys))
    return KeyFiles(base=str(tmp_path / name), dimension=name, column=f"{name}_id",
                    count=len(keys))


def lines(n):
    """Known keys, unknown ones, keys matched but for case, blanks or cQube's quotes, a key
    matching two stored keys but for case, a short row, a blank line, a bad date."""
    out = []
    for i in range(n):
        school = f"S{(i * 7919) % SCHOOLS:06d}"
        row = [f"{1 + i % 28:02d}/05/23", f"D{i % 5}", school, str(i % 60)]
        if i % 97 == 3:
            row[2] = f"X{i}"                       # unknown
        elif i % 89 == 5:
            row[2] = f" {school.lower()} "         # casefold: landed as stored
        elif i % 83 == 7:
            row[2] = f"'{school}'"                 # cQube's quotes
        elif i % 211 == 11:
            row[2] = "AB"                          # ambiguous (Ab, aB)
        elif i % 101 == 13:
            row[1] = "D9"                          # unknown small dimension key
        elif i % 307 == 17:
            row[0] = "31/13/23"                    # not a date
        elif i % 401 == 19:
            row = row[:3]                          # short
        out.append(",".join(row))
        if i % 499 == 23:
            out.append("")                         # blank line
    return ("\n".join(out) + "\n").encode()


@pytest.mark.parametrize("key_match", ["exact", "casefold"])
@pytest.mark.parametrize("quoted", [False, True], ids=["plain", "quoted-cell"])
def test_a_chunk_checked_at_once_equals_row_by_row(tmp_path, key_match, quoted):
    schools = [f"S{i:06d}" for i in range(SCHOOLS)] + ["Ab", "aB"]
    checks = ProcessingChecks(keys=(KeyCheck("district_id", key_files(
        tmp_path, "district", [f"D{i}" for i in range(5)])),
        KeyCheck("school_id", key_files(tmp_path, "school", schools))),
        key_match=key_match, date_column="date")
    schema = {h: {"type": "string", "required": True, "empty": False} for h in HEADER}
    schema["students"] = {"type": "integer", "required": True, "coerce": "integer"}

    def checker(at_once):
        made = build_checker(None, f"chunk-keys-{key_match}", schema, HEADER, "event",
                             "students", None, processing=checks)
        assert made.unsure is not None
        if not at_once:
            made.unsure = None
        return made

    key = f"{tmp_path.name}-{key_match}-{quoted}"
    register_checker_factory(key + "-at-once", lambda: checker(True))
    register_checker_factory(key + "-by-row", lambda: checker(False))
    data = lines(6000)
    if quoted:  # a quote in the chunk: records may span lines, checked row by row
        data += b'01/05/23,D1,S000001,"7"\n'
    chunk = Chunk(seq=0, first_line=2, data=data, lines=data.count(b"\n"))
    at_once = process_chunk(chunk, key + "-at-once")
    by_row = process_chunk(chunk, key + "-by-row")
    assert at_once == by_row
    assert at_once.invalid_rows > 100 and at_once.valid_rows > 5000
    assert at_once.rewritten_rows > 50  # quoted keys (and, with casefold, blanks and case)
    assert {e["code"] for e in at_once.errors_sample} >= {"unknown_reference"}


def test_keys_not_utf8_encodable_fall_back_to_row_by_row(tmp_path):
    files = key_files(tmp_path, "school", [f"S{i:06d}" for i in range(SCHOOLS)])
    from ingest_server.processing.rowcheck import RowProcessing
    check = RowProcessing(ProcessingChecks(keys=(KeyCheck("school_id", files),),
                                           key_match="exact", date_column=None),
                          ["school_id", "n"], done=lambda errs, row, state: (errs, row))
    assert check.unsure([["S000001", "1"], ["S\udc80", "2"]]) == [0, 1]
    assert check.unsure([["S000001", "1"], ["S999999", "2"], ["'S000002'", "3"]]) == [1, 2]
