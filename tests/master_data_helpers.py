"""Master data at upload: the dimension and event grammars of the examples, an app with processing
on (``pclient``/``headers``, options through ``processing_options``), and uploads of dimension
and event files."""

from __future__ import annotations

import csv
import io

import pytest

from ingest_helpers import form
from processing_helpers import put_dimension, put_event


SCHOOL = "PK,,,\nstring,string,string,number\nschool_id,school_name,district_id,enrolment\n"


DISTRICT = "Index,\nstring,string\ndistrict_id,district_name\n"


EVENT = (",district,school,\n,district_id,school_id,\ndate,string,string,integer\n"
         "date,district_id,school_id,students\ntimeDimension,dimension,dimension,metric\n")


def settings_with(proc_settings, workers=None, **processing):  # noqa: F811
    from ingest_server.config import replace
    sections = {"processing": processing} if processing else {}
    if workers:  # validation in worker processes (the checks travel to them pickled)
        sections["ingest"] = {"workers": workers, "parallel_min_bytes": 0, "chunk_bytes": 65536}
    return replace(proc_settings, **sections) if sections else proc_settings


@pytest.fixture
def processing_options():
    return {}


@pytest.fixture
async def pclient(aiohttp_client, proc_settings, processing_options):  # noqa: F811
    from ingest_server.web.app import create_app
    return await aiohttp_client(create_app(settings_with(proc_settings, **processing_options)))


@pytest.fixture
async def headers(pclient):
    from conftest import TEST_CLIENT, basic
    resp = await pclient.get("/api/ingestion/generatejwt", headers=basic(*TEST_CLIENT, json=True))
    return {"Authorization": f"Bearer {(await resp.json())['token']}"}


async def upload(client, headers, kind, name, content: bytes, program="school-attendance"):
    fields = {"ingestion_type": kind, "ingestion_name": name}
    if kind == "event":
        fields["program_name"] = program
    resp = await client.post("/api/ingestion/new_programs", data=form(content, fields=fields),
                             headers=headers)
    return resp.status, await resp.json()


def rows_csv(header, rows) -> bytes:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(header)
    w.writerows(rows)
    return out.getvalue().encode()


async def load(client, headers, name, header, rows):
    status, body = await upload(client, headers, "dimension", name, rows_csv(header, rows))
    assert status == 200 and body["processing"]["status"] == "loaded", body


async def setup_event(client, headers, schools):
    await put_dimension(client, headers, "district", DISTRICT)
    await put_dimension(client, headers, "school", SCHOOL)
    status, body = await put_event(client, headers, "school-attendance", "students", EVENT)
    assert status == 201, body
    await load(client, headers, "district", ["district_id", "district_name"],
               [["D1", "One"], ["D2", "Two"]])
    await load(client, headers, "school", ["school_id", "school_name", "district_id",
                                           "enrolment"],
               [[s, f"School {s}", "D1", "1"] for s in schools])
