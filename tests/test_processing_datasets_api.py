"""Datasets through the service (issue 24), real PostgreSQL and storage: a landed event upload is
in its dataset tables when the answer comes, with cQube's spec rows; processing state in
uploads/{id}; retraction takes the contribution out; a rebuild gives the same tables."""

from __future__ import annotations

import asyncio
import datetime
import json

import pytest

from ingest_server.ingest.model import UploadRequest
from ingest_server.web import appkeys
from testkit.sql import fetch
from processing_helpers import headers, pclient, proc_settings, put_dimension, put_event  # noqa: F401
from master_data_helpers import DISTRICT, EVENT, SCHOOL, load, rows_csv, upload

HEADER = ["date", "district_id", "school_id", "students"]
D = datetime.date


async def setup(client, headers):
    await put_dimension(client, headers, "district", DISTRICT)
    await put_dimension(client, headers, "school", SCHOOL)
    resp = await client.put("/api/processing/programs/school-attendance", headers=headers,
                            json={"namespace": "sch_att", "whitelisted": ["district,school"]})
    assert resp.status == 201, await resp.json()
    status, body = await put_event(client, headers, "school-attendance", "students", EVENT)
    assert status == 201, body
    compound = "datasets.sch_att_students_" + \
        "dAxfXWB3YmwXHQYQFwcX".lower()  # H("sch_att_students_Daily_district0school")
    assert len(body["datasets"]) == 12 and body["datasets"][:2] == [
        "datasets.sch_att_students_daily_district", "datasets.sch_att_students_weekly_district"]
    assert body["datasets"][8] == compound
    await load(client, headers, "district", ["district_id", "district_name"],
               [["D1", "One"], ["D2", "Two"]])
    await load(client, headers, "school", ["school_id", "school_name", "district_id",
                                           "enrolment"],
               [["S1", "A", "D1", "1"], ["S2", "B", "D1", "1"], ["S3", "C", "D2", "1"]])


async def district_daily(dsn):
    return {(r["date"], r["district_id"]): (r["count"], r["sum"], r["avg"])
            for r in await fetch(dsn, "SELECT * FROM datasets.sch_att_students_daily_district")}


async def test_upload_processed_visible_retracted_rebuilt(pclient, headers, clean_db):
    await setup(pclient, headers)
    rows = [["01/05/23", "D1", "S1", "4"], ["01/05/23", "D1", "S2", "3"],
            ["08/05/2023", "D2", "S3", "5"], ["2023-05-08", "D2", "S3", "7"]]
    status, first = await upload(pclient, headers, "event", "students", rows_csv(HEADER, rows))
    assert status == 200, first
    p = first["processing"]
    assert (p["status"], p["tables"], p["error"]) == ("done", 12, None) and p["finished_at"]
    assert await district_daily(clean_db) == {(D(2023, 5, 1), "D1"): (2, 7, 3.5),
                                             (D(2023, 5, 8), "D2"): (2, 12, 6)}
    # the compound table, found by query-builder through spec."DatasetGrammar"
    grammar = await fetch(clean_db, 'SELECT "tableName", "tableNameExpanded", "isCompound", '
                          '"timeDimension" FROM spec."DatasetGrammar" WHERE program = $1 '
                          'AND "isCompound"', "sch_att")
    # timeDimension is a JSONB *string* holding JSON text, as cQube's JSON.stringify stores it
    by_name = {r["tableNameExpanded"]: tuple(r)[:3] + (json.loads(r["timeDimension"]),)
               for r in grammar}
    assert len(by_name) == 4
    assert by_name["sch_att_students_Daily_district0school"] == (
        "sch_att_students_dAxfXWB3YmwXHQYQFwcX", "sch_att_students_Daily_district0school", True,
        '{"key":"date","type":"Daily"}')
    compound = await fetch(clean_db, "SELECT date, district_id, school_id, count, sum FROM "
                           "datasets.sch_att_students_daxfxwb3ymwxhqyqfwcx ORDER BY 1, 2, 3")
    assert [tuple(r) for r in compound] == [(D(2023, 5, 1), "D1", "S1", 1, 4),
                                            (D(2023, 5, 1), "D1", "S2", 1, 3),
                                            (D(2023, 5, 8), "D2", "S3", 2, 12)]
    events = await fetch(clean_db, 'SELECT name FROM spec."EventGrammar" ORDER BY name')
    assert [r["name"] for r in events] == ["sch_att_students_district_district_id",
                                           "sch_att_students_school_school_id"]
    resp = await pclient.get(f"/api/ingestion/uploads/{first['upload_id']}", headers=headers)
    assert (await resp.json())["processing"]["status"] == "done"

    second_rows = [["01/05/23", "D1", "S1", "10"]]
    status, second = await upload(pclient, headers, "event", "students",
                                  rows_csv(HEADER, second_rows))
    assert second["processing"]["status"] == "done"
    assert await district_daily(clean_db) == {(D(2023, 5, 1), "D1"): (3, 17, 17 / 3),
                                             (D(2023, 5, 8), "D2"): (2, 12, 6)}
    # cQube's native file-status carries the processing state too
    resp = await pclient.get("/api/ingestion/file-status", headers=headers,
                             params={"filename": "data.csv", "ingestion_type": "event"})
    status_body = await resp.json()
    assert resp.status == 200 and status_body["upload_id"] == second["upload_id"]
    assert status_body["processing"]["status"] == "done"
    # one row: one group in each of the 12 tables
    assert status_body["processing"]["groups"] == second["processing"]["groups"] == 12
    # the same bytes again: a duplicate lands nothing new, so nothing is added
    status, dup = await upload(pclient, headers, "event", "students",
                               rows_csv(HEADER, second_rows))
    assert dup["objects"]["duplicate_of"] == second["upload_id"] and "processing" not in dup
    assert await district_daily(clean_db) == {(D(2023, 5, 1), "D1"): (3, 17, 17 / 3),
                                             (D(2023, 5, 8), "D2"): (2, 12, 6)}
    resp = await pclient.get("/api/processing/programs/school-attendance", headers=headers)
    info = (await resp.json())["datasets"]
    counts = {t["table"]: t["rows"] for t in info["tables"]}
    assert counts["datasets.sch_att_students_daily_district"] == 2
    assert counts["datasets.sch_att_students_yearly_school"] == 3
    assert info["last_processed_at"] is not None

    resp = await pclient.delete(f"/api/ingestion/uploads/{first['upload_id']}", headers=headers)
    assert resp.status == 200, await resp.json()
    assert await district_daily(clean_db) == {(D(2023, 5, 1), "D1"): (1, 10, 10)}

    before = {t: await fetch(clean_db, f"SELECT * FROM {t} ORDER BY 2, 3, 4")
              for t in counts}
    resp = await pclient.post("/api/processing/programs/school-attendance/rebuild",
                              headers=headers)
    assert resp.status == 200, await resp.json()
    for t, rows_before in before.items():
        after = await fetch(clean_db, f"SELECT * FROM {t} ORDER BY 2, 3, 4")
        strip = lambda rs: [tuple(r)[1:] for r in rs]  # noqa: E731  (ids are new)
        assert strip(after) == strip(rows_before), t


async def test_zip_members_are_checked_without_dataset_partials(pclient, headers, clean_db):
    """A ZIP's member gets its grammar's row checks but not the datasets' partial aggregates
    (no datasets job is started for a ZIP: the workers would compute them for nothing)."""
    await setup(pclient, headers)
    service = pclient.app[appkeys.INGEST]
    req = UploadRequest(program_type=pclient.app[appkeys.REGISTRY].program_type("event"),
                        ingestion_name="students", program="school-attendance",
                        filename="national.zip", client=None)
    whole, _ = await service._processing_checks(req, "students", req.program)
    member, _ = await service._member_checks(req, "students")
    assert len(whole.datasets) == 12 and member.datasets == ()
    assert (member.keys, member.date_column) == (whole.keys, whole.date_column)


async def test_jobs_retried_leased_and_taken_over_exactly_once(pclient, headers, clean_db):
    """Two instances' processors on one database; an upload that failed (its programme not
    registered yet) is retried; a job whose instance died mid-way is taken over when its lease
    ends; every upload lands in the tables exactly once."""
    from ingest_server.processing.jobs import JobStore
    from ingest_server.processing.pipeline import DatasetProcessor
    from ingest_server.web import appkeys
    from testkit.polling import until

    await put_dimension(pclient, headers, "district", DISTRICT)
    await put_dimension(pclient, headers, "school", SCHOOL)
    status, body = await put_event(pclient, headers, "school-attendance", "students", EVENT)
    assert status == 201, body
    await load(pclient, headers, "district", ["district_id", "district_name"], [["D1", "One"]])
    await load(pclient, headers, "school", ["school_id", "school_name", "district_id",
                                            "enrolment"], [["S1", "A", "D1", "1"]])
    ids = []
    for value in ("4", "6"):
        status, body = await upload(pclient, headers, "event", "students",
                                    rows_csv(HEADER, [["01/05/23", "D1", "S1", value]]))
        p = body["processing"]
        assert (p["status"], p["error"]["code"], p["attempts"]) == \
            ("pending", "program_not_registered", 1), body
        ids.append(body["upload_id"])
    app = pclient.server.app
    service_pool = app[appkeys.POOL]
    # the retry loop would take them after the backoff: this test takes them itself
    await service_pool.execute("UPDATE processing_jobs SET next_at = now() + interval '1 hour'")
    resp = await pclient.put("/api/processing/programs/school-attendance", headers=headers,
                             json={"namespace": "sch_att", "whitelisted": []})
    assert resp.status == 201

    a = app[appkeys.PROCESSING].datasets

    def instance(owner, lease_s=120.0):
        return DatasetProcessor(config=a.config, registry=a.registry, pool=a.pool,
                                jobs=JobStore(service_pool, owner, lease_s), read=a.read,
                                quote=a.quote)
    b = instance("replica-b")
    # both instances go for the first job at once: one takes it
    taken = await asyncio.gather(a.run(ids[0]), b.run(ids[0]))
    assert sorted(taken) == [False, True]
    # the second job: an instance takes it and dies before finishing (lease of 0.2 s) ...
    dead = instance("dead", lease_s=0.2)
    assert await dead.jobs.claim(ids[1]) is not None
    assert not await b.run(ids[1])  # leased: not taken over yet

    async def taken_over():
        return await b.run(ids[1]) or (await b.jobs.get(ids[1]))["status"] == "done"
    await until(taken_over, timeout_s=10)  # ... taken over once the lease ended
    # ... and the dead instance, come back, applies it again: nothing changes
    again = await dead.process(ids[1], "school-attendance", "students")
    assert again.already
    assert await district_daily(clean_db) == {(D(2023, 5, 1), "D1"): (2, 10, 5)}
    for upload_id in ids:
        resp = await pclient.get(f"/api/ingestion/uploads/{upload_id}", headers=headers)
        p = (await resp.json())["processing"]
        assert (p["status"], p["tables"], p["error"]) == ("done", 8, None)


async def test_cli_rebuild_restores_the_tables(pclient, headers, clean_db, tmp_path):
    from click.testing import CliRunner

    from conftest import TEST_CLIENT
    from ingest_server.cli.main import cli

    await setup(pclient, headers)
    rows = [["01/05/23", "D1", "S1", "4"], ["01/05/23", "D1", "S2", "3"]]
    status, body = await upload(pclient, headers, "event", "students", rows_csv(HEADER, rows))
    assert body["processing"]["status"] == "done"
    # a table damaged by hand (or by a cQube re-run appending rows)
    await fetch(clean_db, "UPDATE datasets.sch_att_students_daily_district SET sum = 999")
    await fetch(clean_db, "DELETE FROM datasets.sch_att_students_yearly_school")
    env = {"INGEST_URL": str(pclient.make_url("/")), "INGEST_CLIENT_ID": TEST_CLIENT[0],
           "INGEST_CLIENT_SECRET": TEST_CLIENT[1], "INGEST_TOKEN": None,
           "INGEST_CLI_CONFIG": None, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    result = await asyncio.to_thread(CliRunner().invoke, cli,
                                     ["processing", "rebuild", "school-attendance"], env=env,
                                     catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == ("programme school-attendance: 1 upload(s) applied again to "
                                     "12 dataset table(s), 20 group(s)")
    assert await district_daily(clean_db) == {(D(2023, 5, 1), "D1"): (2, 7, 3.5)}
    yearly = await fetch(clean_db, "SELECT year, school_id, count, sum FROM "
                         "datasets.sch_att_students_yearly_school ORDER BY 2")
    assert [tuple(r) for r in yearly] == [(2023, "S1", 1, 4), (2023, "S2", 1, 3)]


@pytest.fixture
async def pool_client(aiohttp_client, proc_settings):
    from ingest_server.web.app import create_app
    from master_data_helpers import settings_with
    return await aiohttp_client(create_app(settings_with(proc_settings, workers=2)))


async def test_partials_from_the_workers_equal_the_landed_file(pool_client, clean_db, caplog):
    """Many chunks checked in worker processes: their partial aggregates, merged, give the
    tables an independent aggregation of the valid rows gives, and a rebuild (which reads the
    landed file back) gives the same tables."""
    import logging

    from conftest import TEST_CLIENT, basic
    resp = await pool_client.get("/api/ingestion/generatejwt",
                                 headers=basic(*TEST_CLIENT, json=True))
    headers = {"Authorization": f"Bearer {(await resp.json())['token']}"}
    await setup(pool_client, headers)
    dates = {"01/05/23": D(2023, 5, 1), "2023-05-08": D(2023, 5, 8), "09/05/2023": D(2023, 5, 9)}
    rows = [[list(dates)[i % 3], "D1" if i % 4 else "D2", "S9" if i % 101 == 0 else f"S{1 + i % 3}",
             str(i % 7)] for i in range(8000)]
    caplog.set_level(logging.INFO, logger="ingest_server.processing")
    status, body = await upload(pool_client, headers, "event", "students", rows_csv(HEADER, rows))
    valid = [r for r in rows if r[2] != "S9"]
    assert status == 200 and body["valid_rows"] == len(valid), body
    assert body["processing"]["status"] == "done", body
    assert "aggregated while it streamed" in caplog.text
    want: dict = {}
    for day, district, _, value in valid:
        count, total = want.get((dates[day], district), (0, 0))
        want[(dates[day], district)] = (count + 1, total + int(value))
    got = {k: v[:2] for k, v in (await district_daily(clean_db)).items()}
    assert got == want
    tables = [r["t"] for r in await fetch(clean_db, "SELECT 'datasets.' || tablename AS t "
                                          "FROM pg_tables WHERE schemaname = 'datasets'")]
    assert len(tables) == 12
    before = {t: sorted(tuple(r)[1:] for r in await fetch(clean_db, f"SELECT * FROM {t}"))
              for t in tables}
    resp = await pool_client.post("/api/processing/programs/school-attendance/rebuild",
                                  headers=headers)
    assert resp.status == 200, await resp.json()
    for t, rows_before in before.items():
        after = sorted(tuple(r)[1:] for r in await fetch(clean_db, f"SELECT * FROM {t}"))
        assert after == rows_before, t  # ids aside: they are new


@pytest.fixture
async def casefold_client(aiohttp_client, proc_settings):
    from ingest_server.web.app import create_app
    from master_data_helpers import settings_with
    return await aiohttp_client(create_app(settings_with(proc_settings, workers=2,
                                                         key_match="casefold")))


async def test_keys_matched_but_for_case_and_blanks_are_in_the_tables(casefold_client, clean_db):
    """processing.key_match = casefold: a key landed as its dimension stores it is in the
    dataset tables under that key (not dropped by their dimension filter), from the workers'
    partials and from a rebuild alike."""
    from conftest import TEST_CLIENT, basic
    resp = await casefold_client.get("/api/ingestion/generatejwt",
                                     headers=basic(*TEST_CLIENT, json=True))
    headers = {"Authorization": f"Bearer {(await resp.json())['token']}"}
    await setup(casefold_client, headers)
    rows = [["01/05/23", " d1", "s1 ", "4"], ["01/05/23", "D1", "S1", "3"],
            ["01/05/23", "d2\t", " S3", "5"], ["08/05/23", "D2", "s3", "7"]]
    status, body = await upload(casefold_client, headers, "event", "students",
                                rows_csv(HEADER, rows))
    assert status == 200 and body["valid_rows"] == 4, body
    assert body["processing"]["status"] == "done", body
    want = {(D(2023, 5, 1), "D1"): (2, 7, 3.5), (D(2023, 5, 1), "D2"): (1, 5, 5),
            (D(2023, 5, 8), "D2"): (1, 7, 7)}
    assert await district_daily(clean_db) == want
    school = await fetch(clean_db, "SELECT school_id, count, sum FROM "
                         "datasets.sch_att_students_yearly_school ORDER BY 1")
    assert [tuple(r) for r in school] == [("S1", 2, 7), ("S3", 2, 12)]
    resp = await casefold_client.post("/api/processing/programs/school-attendance/rebuild",
                                      headers=headers)
    assert resp.status == 200, await resp.json()
    assert await district_daily(clean_db) == want
