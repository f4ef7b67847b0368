"""Datasets on replicas (issue 24): two ``ingest-server`` processes, one PostgreSQL (service and
processing database), one SeaweedFS. An instance is SIGKILLed in the middle of applying an upload
to its dataset tables — inside a table's transaction, or after its first tables committed (each
table is its own transaction) — and every upload still ends up in every table exactly once.

Deterministic: the instance is held at the fault point ``datasets.mid_apply`` or
``datasets.between_tables``
(``INGEST_TEST_HOLD``, ingest_server/faults.py) and killed once it says it is there; its lease
(120 s) is then ended by hand, as its running out would, instead of waiting for it.
"""

from __future__ import annotations

import asyncio
import csv
import datetime
import io
import uuid

import aiohttp
import asyncpg
import pytest

from conftest import s3_settings
from ingest_helpers import form
from testkit.accounts import fresh_database
from testkit.polling import until
from testkit.replica_cluster import Cluster, token

pytestmark = pytest.mark.replicas

HEADER = ["date", "district_id", "school_id", "students"]
DISTRICTS = {"D1": ["S1", "S2"], "D2": ["S3"]}
PROGRAM = "school-attendance"


@pytest.fixture(scope="module", params=["datasets.mid_apply", "datasets.between_tables"])
def cluster(request, tmp_path_factory, s3_server, pg_dsn):
    root = tmp_path_factory.mktemp("replicas_datasets")
    with fresh_database(pg_dsn, "ingest_replicas_datasets") as dsn:  # cQube's schemas: our own
        c = Cluster(root, dsn, s3_settings(s3_server))
        c.point = request.param
        try:
            # replica-0 stops at the point in the first upload it processes: inside a table's
            # apply transaction, or after its first table(s) committed
            c.start(2, sections={"processing": {"enabled": True, "answer_wait_s": 1.0}},
                    env={"replica-0": {"INGEST_TEST_HOLD": f"{request.param}:{root / 'held'}"}})
            yield c
        finally:
            c.stop()


@pytest.fixture
def dsn(cluster):
    return cluster.dsn


async def _call(s, method, url, tok, **kw):
    async with s.request(method, url, headers={"Authorization": f"Bearer {tok}",
                                               **kw.pop("headers", {})}, **kw) as r:
        return r.status, await r.json(content_type=None)


async def _upload(s, base, tok, kind, name, header, rows):
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([header, *rows])
    fields = {"ingestion_type": kind, "ingestion_name": name}
    if kind == "event":
        fields["program_name"] = PROGRAM
    return await _call(s, "POST", base + "/api/ingestion/new_programs", tok,
                       data=form(out.getvalue().encode(), fields=fields,
                                 filename=f"{uuid.uuid4().hex}.csv"))


async def _setup(s, base, tok):
    csv_h = {"Content-Type": "text/csv"}
    for path, text in (
            ("grammars/dimensions/district", "Index,\nstring,string\ndistrict_id,district_name\n"),
            ("grammars/dimensions/school", "PK,\nstring,string\nschool_id,school_name\n")):
        status, body = await _call(s, "PUT", f"{base}/api/processing/{path}", tok,
                                   data=text.encode(), headers=csv_h)
        assert status in (200, 201), body
    status, body = await _call(s, "PUT", f"{base}/api/processing/programs/{PROGRAM}", tok,
                               json={"namespace": "sch_att", "whitelisted": ["district,school"]})
    assert status in (200, 201), body
    status, body = await _call(
        s, "PUT", f"{base}/api/processing/grammars/events/{PROGRAM}/students", tok,
        data=(",district,school,\n,district_id,school_id,\ndate,string,string,integer\n"
              "date,district_id,school_id,students\ntimeDimension,dimension,dimension,metric\n"
              ).encode(), headers=csv_h)
    assert status in (200, 201), body
    for dim, header, rows in (
            ("district", ["district_id", "district_name"], [[d, d] for d in DISTRICTS]),
            ("school", ["school_id", "school_name"],
             [[sc, sc] for schools in DISTRICTS.values() for sc in schools])):
        status, body = await _upload(s, base, tok, "dimension", dim, header, rows)
        assert status == 200 and body["processing"]["status"] == "loaded", body


def _rows(seed: int, n: int) -> list[list[str]]:
    pairs = [(d, sc) for d, schools in DISTRICTS.items() for sc in schools]
    return [[f"{1 + (seed + i) % 9:02d}/05/23", *pairs[(seed * 7 + i) % len(pairs)],
             str((seed + 3 * i) % 11)] for i in range(n)]


def _expected(rows: list[list[str]]) -> dict[tuple, tuple[float, float]]:
    """The compound daily table (date, district, school), aggregated here independently."""
    out: dict[tuple, tuple[float, float]] = {}
    for day, district, school, value in rows:
        key = (datetime.datetime.strptime(day, "%d/%m/%y").date(), district, school)
        count, total = out.get(key, (0, 0.0))
        out[key] = (count + 1, total + float(value))
    return out


async def _state(dsn, upload_id):
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval("SELECT status FROM processing_jobs WHERE upload_id = $1",
                                   upload_id)
    finally:
        await conn.close()


async def test_instance_killed_mid_apply_every_upload_once(cluster, dsn):
    a, b = cluster.replicas
    held = cluster.root / "held"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as s:
        tok = await token(s, b.url)
        await _setup(s, b.url, tok)
        landed = []
        # 1. an upload processed by instance B
        status, first = await _upload(s, b.url, tok, "event", "students", HEADER, _rows(1, 40))
        assert status == 200 and first["processing"]["status"] == "done", first
        landed += _rows(1, 40)
        # 2. an upload to A: A stops inside a table's transaction or after its first tables ...
        status, second = await _upload(s, a.url, tok, "event", "students", HEADER, _rows(2, 60))
        assert status == 200 and second["processing"]["status"] == "pending", second
        landed += _rows(2, 60)
        assert await until(held.exists, timeout_s=60)
        conn = await asyncpg.connect(dsn)
        try:
            committed = await conn.fetchval(
                "SELECT count(*) FROM processing_applied_tables WHERE upload_id = $1",
                second["upload_id"])
        finally:
            await conn.close()
        assert (committed > 0) == (cluster.point == "datasets.between_tables"), committed
        # 3. ... while B lands a third one, which waits for the table locks A holds
        third = asyncio.create_task(
            _upload(s, b.url, tok, "event", "students", HEADER, _rows(3, 50)))
        landed += _rows(3, 50)
        await asyncio.sleep(0)
        a.kill()  # SIGKILL, mid-transaction
        status, third_body = await third
        assert status == 200, third_body
        # A's lease would run out in 120 s; end it now, as that would
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("UPDATE processing_jobs SET lease_until = now() "
                               "WHERE upload_id = $1", second["upload_id"])
        finally:
            await conn.close()
        ids = [first["upload_id"], second["upload_id"], third_body["upload_id"]]

        async def all_done():
            return [await _state(dsn, i) for i in ids] == ["done"] * 3
        assert await until(all_done, timeout_s=60)

    conn = await asyncpg.connect(dsn)
    try:
        applied = await conn.fetch("SELECT upload_id, groups FROM processing_applied")
        assert sorted(r["upload_id"] for r in applied) == sorted(ids)  # once each
        for r in applied:  # each upload's contribution recorded once, as its groups
            n = await conn.fetchval("SELECT sum(cardinality(row_ids)) FROM "
                                    "processing_applied_tables WHERE upload_id = $1",
                                    r["upload_id"])
            assert n == r["groups"] > 0
        for r in await conn.fetch("SELECT upload_id, tbl, groups, row_ids, counts, sums "
                                  "FROM processing_applied_tables"):
            # each table once: one contribution a row touched, each row once
            assert len(set(r["row_ids"])) == len(r["counts"]) == len(r["sums"]) == r["groups"], r
        table = await conn.fetchval(
            'SELECT lower("tableName") FROM spec."DatasetGrammar" '
            "WHERE \"tableNameExpanded\" = 'sch_att_students_Daily_district0school'")
        got = {(r["date"], r["district_id"], r["school_id"]): (r["count"], r["sum"])
               for r in await conn.fetch(f'SELECT * FROM datasets."{table}"')}
        daily = {(r["date"], r["district_id"]): (r["count"], r["sum"])
                 for r in await conn.fetch(
                     "SELECT * FROM datasets.sch_att_students_daily_district")}
    finally:
        await conn.close()
    assert got == _expected(landed)
    by_district: dict[tuple, tuple[float, float]] = {}
    for (day, district, _), (count, total) in _expected(landed).items():
        c, t = by_district.get((day, district), (0, 0.0))
        by_district[(day, district)] = (c + count, t + total)
    assert daily == by_district
    logs = b.log_path.read_text(errors="replace")
    assert f"upload {second['upload_id']}" in logs and "aggregated from the landed file" in logs
