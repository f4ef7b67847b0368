"""``storage.layout = "cqube"``: cQube's keys and file format, on local storage and real S3.

Byte-for-byte expected output for a small file with quotes, commas, newlines, unicode and blanks;
every route (new_programs event/dimension/dataset, national_programs); same name same day
replaces; the native layout stays what it was (byte for byte).
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from datetime import datetime
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from conftest import make_settings, s3_settings
from ingest_helpers import register, upload
from ingest_server.web.appkeys import STORAGE
from testkit.stored import published

MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
SPEC = {"program": "schools", "input": {"type": "object", "properties": {
    "school_name": {"type": "string", "shouldnotnull": True},
    "district": {"type": "string"},
    "students": {"type": "number"},
    "ratio": {"type": "number"},
    "open": {"type": "boolean"}}, "required": ["school_name", "students"]}}
DATA = ("school_name,district,students,ratio,open,latitude\n"
        "\"Children's School\",\"Ranga Reddy, Hyd\",120,12.50,yes,17.38\n"
        "\"St. Mary's\nAnnex\",ಬೆಂಗಳೂರು,1e3,,no,\n"
        "Plain,,7, 0.5 ,TRUE,x\r\n"
        "\"  \",X,1,,,\n"
        "bad,X,abc,,,\n").encode()
VALID = ("school_name,district,students,ratio,open,latitude\n"
         "'Children''s School','Ranga Reddy, Hyd',120,12.50,true,'17.38'\n"
         "'St. Mary''s Annex','ಬೆಂಗಳೂರು',1000,,false,''\n"
         "'Plain','',7,0.5,true,'x'\n").encode()
ERRORS = ("school_name,district,students,ratio,open,latitude,error_description\r\n"
          "  ,X,1,,,,school_name: not_nullable: a value is required but the cell is blank\r\n"
          "bad,X,abc,,,,\"students: type_error: expected a number, got 'abc'\"\r\n").encode()
ROUTES = {  # program type -> (form fields, valid key, error key); {date} and {pid} filled later
    "event": ({"ingestion_type": "event", "ingestion_name": "schools",
               "program_name": "school-infra"},
              "process_input/school-infra/{date}/schools-event.data.csv",
              "ingestion_error/school-infra/{date}/school-infra_{pid}_errors.csv"),
    "dimension": ({"ingestion_type": "dimension", "ingestion_name": "schools"},
                  "process_input/dimensions/{date}/schools-dimension.data.csv",
                  "ingestion_error/schools/{date}/schools_{pid}_errors.csv"),
    "dataset": ({"ingestion_type": "dataset", "ingestion_name": "schools",
                 "program_name": "school-infra"},
                "process_input/datasets/{date}/schools-dataset.data.csv",
                "ingestion_error/school-infra/{date}/school-infra_{pid}_errors.csv"),
    "national": (None, "emission/{date}/schools.csv", "emission-error/{date}/schools_errors.csv"),
}


def cqube_settings(request, tmp_path, dsn, backend, layout="cqube"):
    storage = s3_settings(request.getfixturevalue("s3_server")) if backend == "s3" else {}
    return make_settings(tmp_path, dsn, storage={**storage, "layout": layout,
                                                 "timezone": "Asia/Kolkata"})


@pytest.fixture(params=["local", "s3"])
def settings(request, tmp_path, clean_db):
    return cqube_settings(request, tmp_path, clean_db, request.param)


def today() -> set[str]:
    """Today's DD-Mon-YYYY in Asia/Kolkata (two values just around midnight)."""
    out = set()
    for _ in range(2):
        now = datetime.now(ZoneInfo("Asia/Kolkata"))
        out.add(f"{now.day:02d}-{MONTHS[now.month - 1]}-{now.year}")
    return out


async def object_bytes(client, key: str) -> bytes:
    return b"".join([chunk async for chunk in client.app[STORAGE].read(key)])


async def pid_of(settings, upload_id: str) -> int:
    conn = await asyncpg.connect(settings.database.dsn)
    try:
        return await conn.fetchval("SELECT pid FROM uploads WHERE id = $1", upload_id)
    finally:
        await conn.close()


async def send(client, headers, program_type: str, data: bytes):
    form = ROUTES[program_type][0]
    if form is None:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("schools.csv", data)
        return await upload(client, headers, buf.getvalue(), fields={},
                            path="/api/ingestion/national_programs", filename="schools.zip",
                            content_type="application/zip")
    return await upload(client, headers, data, fields=form)


@pytest.mark.parametrize("program_type", sorted(ROUTES))
async def test_every_route_byte_for_byte(client, auth_headers, settings, program_type):
    kind = "event" if program_type == "national" else program_type
    await register(client, auth_headers, SPEC, kind=kind)
    status, body = await send(client, auth_headers, program_type, DATA)
    assert status == 200, body
    assert (body["valid_rows"], body["invalid_rows"]) == (3, 2)
    valid_key, error_key = body["objects"]["valid"], body["objects"]["errors"]
    if program_type == "national":
        [valid_key], [error_key] = valid_key, error_key
    pid = await pid_of(settings, body["upload_id"])
    _, valid_tpl, error_tpl = ROUTES[program_type]
    assert valid_key in {valid_tpl.format(date=d) for d in today()}
    assert error_key in {error_tpl.format(date=d, pid=pid) for d in today()}
    assert await published(client.app[STORAGE]) == sorted([valid_key, error_key])
    assert await object_bytes(client, valid_key) == VALID
    assert await object_bytes(client, error_key) == ERRORS
    # cQube's processing reads the valid file with ' as the quote character: the cells come
    # back as they were sent (line breaks as one space, numbers as plain numbers).
    rows = list(csv.reader(io.StringIO(VALID.decode(), newline=""), quotechar="'"))
    assert rows[1:] == [["Children's School", "Ranga Reddy, Hyd", "120", "12.50", "true", "17.38"],
                        ["St. Mary's Annex", "ಬೆಂಗಳೂರು", "1000", "", "false", ""],
                        ["Plain", "", "7", "0.5", "true", "x"]]
    assert [w["code"] for w in body["warnings"]] == ["undeclared_columns"]


async def test_same_name_same_day_replaces(client, auth_headers, settings):
    await register(client, auth_headers, SPEC)
    status, first = await send(client, auth_headers, "event", DATA)
    assert status == 200
    second_data = b"school_name,students\nOnly,1\nbad,x\n"
    status, second = await send(client, auth_headers, "event", second_data)
    assert status == 200 and second["objects"]["valid"] == first["objects"]["valid"]
    assert second["objects"]["errors"] != first["objects"]["errors"]  # one per upload (pid)
    assert await object_bytes(client, second["objects"]["valid"]) == \
        b"school_name,students\n'Only',1\n"
    assert sorted(await published(client.app[STORAGE])) == sorted(
        [second["objects"]["valid"], first["objects"]["errors"], second["objects"]["errors"]])


async def test_the_same_bytes_again_replace_a_later_upload(client, auth_headers, settings):
    """A, then B, then A again on one day: A is what lands (no "duplicate of" short cut)."""
    await register(client, auth_headers, SPEC)
    a, b = b"school_name,students\nA,1\n", b"school_name,students\nB,2\n"
    for data in (a, b, a):
        status, body = await send(client, auth_headers, "event", data)
        assert status == 200 and "duplicate_of" not in body["objects"], body
    assert await object_bytes(client, body["objects"]["valid"]) == \
        b"school_name,students\n'A',1\n"


async def test_fixed_cqube_error_file_lands_again(client, auth_headers, settings):
    await register(client, auth_headers, SPEC)
    fixed = ERRORS.replace(b"  ,X,1", b"Fixed,X,1").replace(b"bad,X,abc", b"Good,X,3")
    status, body = await send(client, auth_headers, "event", fixed)
    assert status == 200 and (body["valid_rows"], body["invalid_rows"]) == (2, 0), body
    assert body["warnings"][0]["code"] == "error_columns_dropped"
    assert body["warnings"][0]["details"] == {"columns": ["error_description"]}
    assert await object_bytes(client, body["objects"]["valid"]) == (
        b"school_name,district,students,ratio,open,latitude\n"
        b"'Fixed','X',1,,,''\n'Good','X',3,,,''\n")


async def test_native_layout_is_unchanged(aiohttp_client, request, tmp_path, clean_db):
    """The same file in the native layout: RFC 4180 bytes, upload id in the keys."""
    from ingest_server.web.app import create_app  # noqa: PLC0415

    client = await aiohttp_client(create_app(cqube_settings(request, tmp_path, clean_db,
                                                            "local", layout="native")))
    resp = await client.get("/api/ingestion/generatejwt", headers=_basic())
    headers = {"Authorization": f"Bearer {(await resp.json())['token']}"}
    await register(client, headers, SPEC)
    status, body = await send(client, headers, "event", DATA)
    assert status == 200, body
    uid = body["upload_id"]
    assert re.fullmatch(rf"process_input/school-infra/\d{{4}}-\d\d-\d\d/schools-event\.{uid}"
                        r"\.data\.csv", body["objects"]["valid"])
    assert await object_bytes(client, body["objects"]["valid"]) == (
        "school_name,district,students,ratio,open,latitude\r\n"
        "Children's School,\"Ranga Reddy, Hyd\",120,12.50,yes,17.38\r\n"
        "\"St. Mary's\nAnnex\",ಬೆಂಗಳೂರು,1e3,,no,\r\n"
        "Plain,,7, 0.5 ,TRUE,x\r\n").encode()
    assert await object_bytes(client, body["objects"]["errors"]) == (
        "school_name,district,students,ratio,open,latitude,_line,_errors\r\n"
        "  ,X,1,,,,6,school_name: not_nullable: a value is required but the cell is blank\r\n"
        "bad,X,abc,,,,7,\"students: type_error: expected a number, got 'abc'\"\r\n").encode()


def _basic() -> dict[str, str]:
    from conftest import TEST_CLIENT, basic  # noqa: PLC0415

    return basic(*TEST_CLIENT, json=True)


def test_date_folders_in_the_configured_time_zone():
    from datetime import timezone  # noqa: PLC0415

    from ingest_server.ingest.cqube_keys import cqube_date  # noqa: PLC0415

    evening = datetime(2024, 9, 5, 20, 0, tzinfo=timezone.utc)
    assert cqube_date(evening, "UTC") == "05-Sep-2024"  # "Sep", not "Sept"
    assert cqube_date(evening, "Asia/Kolkata") == "06-Sep-2024"  # already the next day there
    assert cqube_date(datetime(2024, 2, 5, tzinfo=timezone.utc), "UTC") == "05-Feb-2024"


def test_generated_writer_equals_the_general_one():
    from hypothesis import given, settings  # noqa: PLC0415
    from hypothesis import strategies as st  # noqa: PLC0415

    from ingest_server.csvstream.cqube_format import CqubeFormat  # noqa: PLC0415
    from ingest_server.validation import translate_cqube_spec  # noqa: PLC0415

    schema = translate_cqube_spec(SPEC)
    fmt = CqubeFormat(["school_name", "students", "open", "ratio", "extra"], schema)
    text = st.text(st.characters(blacklist_characters="'\"\r\n", blacklist_categories=["Cs"]),
                   max_size=5)
    number = st.sampled_from(["7", "12.50", "-3", "1e3", " 5 ", "+1", "", "01", "0.0", "1.5E2"])
    boolean = st.sampled_from(["yes", "no", "TRUE", "0", ""])

    @settings(max_examples=200, deadline=None, database=None)
    @given(st.lists(st.tuples(text, number, boolean, number, text).map(list), min_size=1))
    def check(rows):
        assert fmt.valid_bytes(rows, True) == fmt.valid_bytes(rows, False)

    check()
