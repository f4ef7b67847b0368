"""``ingest processing import`` of a real cQube VSK grammar subset, and ``processing status``,
against a live app on the real PostgreSQL."""

import asyncio
import json

import pytest
from click.testing import CliRunner

from conftest import TEST_CLIENT
from ingest_server.cli.main import cli
from testkit.sql import fetch
from processing_helpers import VSK, proc_settings  # noqa: F401


@pytest.fixture
async def pclient(aiohttp_client, proc_settings):  # noqa: F811
    from ingest_server.web.app import create_app
    return await aiohttp_client(create_app(proc_settings))


@pytest.fixture
def env(pclient, tmp_path):
    return {"INGEST_URL": str(pclient.make_url("/")), "INGEST_CLIENT_ID": TEST_CLIENT[0],
            "INGEST_CLIENT_SECRET": TEST_CLIENT[1], "INGEST_TOKEN": None,
            "INGEST_CLI_CONFIG": None, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}


async def ingest(env, *args):
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args), env=env,
                                   catch_exceptions=False)


DIMENSIONS = ["academicyear", "block", "cluster", "district", "exam", "programstatusnishtha",
              "school", "schoolcategory", "schoolmanagement", "state", "statecategory"]


async def test_import_vsk_subset(env, clean_db):
    result = await ingest(env, "processing", "import", str(VSK), "--data")
    # Every dimension grammar registers and its table exists; every data file loads.
    tables = await fetch(clean_db, "SELECT table_name FROM information_schema.tables WHERE "
                         "table_schema = 'dimensions' ORDER BY 1")
    assert [t["table_name"] for t in tables] == DIMENSIONS
    for dim in DIMENSIONS:
        assert f"{dim}-dimension.data.csv: " in result.stdout
        data = (VSK / "dimensions" / f"{dim}-dimension.data.csv").read_bytes()
        count = await fetch(clean_db, f"SELECT count(*) AS n FROM dimensions.{dim}")
        assert count[0]["n"] == data.count(b"\n") - 1, dim
    rows = await fetch(clean_db, "SELECT district_id, district_name, latitude FROM "
                       "dimensions.district ORDER BY 1")
    assert [tuple(r) for r in rows] == [("101", "Anantapur", 14.68),
                                        ("102", "Chittoor, South", 13.2)]
    # Leading zeros, commas, " and ' survive; cQube's '…' quoting is read as cQube reads it.
    rows = await fetch(clean_db, "SELECT school_id, udise_code, school_name, cluster_id "
                       "FROM dimensions.school ORDER BY 1")
    assert [tuple(r) for r in rows] == [
        ("28010100101", "028010100101", "Z.P.H.S., Gooty", "010101"),
        ("28010100102", "028010100102", "St. Ann's", "010101")]
    rows = await fetch(clean_db, "SELECT block_id, block_name FROM dimensions.block ORDER BY 1")
    assert [tuple(r) for r in rows] == [("0101", 'Gooty "East"'), ("0102", "Tadipatri")]
    rows = await fetch(clean_db, "SELECT cluster_name FROM dimensions.cluster")
    assert [r[0] for r in rows] == ["O'Brien Cluster"]
    rows = await fetch(clean_db, "SELECT academicyear_id, academicyear FROM "
                       "dimensions.academicyear ORDER BY 1")
    assert [tuple(r) for r in rows] == [("2022-23", "2022-23"), ("2023-24", "2023, 2024")]
    grammar_rows = await fetch(clean_db, 'SELECT name FROM spec."DimensionGrammar" ORDER BY 1')
    assert [r["name"] for r in grammar_rows] == DIMENSIONS
    programme = await fetch(clean_db, "SELECT body FROM processing_grammars WHERE kind = "
                            "'program' AND name = 'school-attendance'")
    assert json.loads(programme[0]["body"]) == {"namespace": "sch_att", "whitelisted": []}
    # The two real event grammars do not match these real dimension grammars: each is refused
    # naming its row and cell, and the command fails (exit 1) after trying every file.
    assert result.exit_code == 1, result.output
    errors = result.stderr.splitlines()
    marked = next(e for e in errors if "teachersmarked" in e)
    assert ("invalid_grammar: row 2, column 7: 'schoolmanagement_name' is not unique in "
            "dimension 'schoolmanagement'") in marked
    present = next(e for e in errors if "teacherspresent" in e)
    assert ("row 2, column 6: 'schoolcategory' is not a column of dimension 'schoolcategory'"
            in present)
    assert errors[-1] == "ingest: processing import: 2 file(s) failed"
    assert "programs/telemetry: not in config.json, skipped" in result.stdout
    assert "district-dimension.data.csv: " in result.stdout
    # Sending the folder again changes nothing.
    again = await ingest(env, "processing", "import", str(VSK))
    assert again.stdout.count("unchanged (version 1)") == 12  # 11 dimensions + the programme
    status = await ingest(env, "processing", "status")
    assert status.exit_code == 0, status.output
    assert "dimension district: 2 rows, key district_id, last load " in status.stdout
    assert "dimension school: 2 rows, key school_id, last load " in status.stdout


async def test_status_of_an_upload_groups_unknown_keys(env, pclient, clean_db):
    from processing_helpers import put_dimension, put_event
    from ingest_helpers import form
    from conftest import basic
    resp = await pclient.get("/api/ingestion/generatejwt", headers=basic(*TEST_CLIENT, json=True))
    headers = {"Authorization": f"Bearer {(await resp.json())['token']}"}
    await put_dimension(pclient, headers, "district", "Index\nstring\ndistrict_id\n")
    await put_event(pclient, headers, "p", "counts", ",district,\n,district_id,\n"
                    "date,string,integer\ndate,district_id,n\ntimeDimension,dimension,metric\n")
    resp = await pclient.post("/api/ingestion/new_programs", headers=headers, data=form(
        b"district_id\r\nD1\r\n", fields={"ingestion_type": "dimension",
                                         "ingestion_name": "district"}))
    assert resp.status == 200
    resp = await pclient.post("/api/ingestion/new_programs", headers=headers, data=form(
        b"date,district_id,n\r\n01/05/23,D1,1\r\n01/05/23,D2,1\r\n01/05/23,D2,1\r\n"
        b"01/05/23,D3,1\r\n", fields={"ingestion_type": "event", "ingestion_name": "counts",
                                      "program_name": "p"}))
    body = await resp.json()
    result = await ingest(env, "processing", "status", body["upload_id"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == ("district (district_id): 3 rows, 2 distinct unknown keys, "
                                     "e.g. 'D2', 'D3'")
