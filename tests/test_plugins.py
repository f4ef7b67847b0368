"""Plugins end to end: every hook through a real upload (production app, real PostgreSQL, local
storage), the two example plugins of ``plugins/``, the documented plugin (docs/plugins.md), safety
and /api/plugins.

Plugins are written into the test's own plugins folder before the app is created. Every hook
of ``ingest_server/plugins/hookspecs.py`` needs a ``test_hook_<name>`` here (checked below).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import re
from pathlib import Path

import pytest
from aiohttp import web

from conftest import READ_ONLY_CLIENT, basic, make_settings
from ingest_helpers import SPEC, landed, notified, read_object, register, upload
from ingest_server import __version__
from ingest_server.plugins import hookspecs
from ingest_server.plugins.loading import PluginError
from ingest_server.web.app import create_app
from plugin_helpers import ATTENDANCE, REPO, SCHOOL, SCHOOL_FIELDS, WEBHOOK, start, write_plugins


ATTENDANCE_CSV = (b"date,school_id,total_teachers,teachers_marked_present,total_students,"
                  b"students_marked_present\n"
                  b"2024-01-05,S1,10,8,200,150\n"      # line 2: valid
                  b"2024-01-05,S2,5,7,100,90\n"        # line 3: more teachers present than total
                  b"2024-01-05,S3,x,1,,\n"             # line 4: schema error; plugin not asked
                  b"2024-01-06,S4,4,4,50,51\n"         # line 5: more students present than total
                  b"2024-01-06,S5,4,0,,\n")            # line 6: valid, blank optional numbers

# A test-only plugin: a program type of its own, a Cerberus type, and an audit trail of
# upload_finished in a file (hooks may run in several processes: files are what they share).
SURVEY_PLUGIN = '''
import json
from ingest_server import hookimpl
from ingest_server.plugins.programs import ProgramType
from ingest_server.validation import Extensions

__version__ = "2.5"


@hookimpl
def register_program_types():
    return [ProgramType(name="survey", route="new_programs", spec_kind="dataset",
                        valid_key="surveys/{program}/{date}/{name}.{upload_id}.csv",
                        error_key="surveys-rejected/{name}.{upload_id}.csv",
                        needs_program=False, allow_unknown_columns=True)]


@hookimpl
def register_cerberus_extensions():
    return Extensions(types={"even": lambda v: isinstance(v, int) and v % 2 == 0})


@hookimpl
def upload_finished(upload):
    with open(AUDIT, "a") as f:
        f.write(json.dumps(upload) + "\\n")
    if upload["objects"]:
        upload["objects"]["valid"] = "tampered"  # a copy of its own: nobody else sees this
'''

BROKEN_PLUGIN = '''
from ingest_server import hookimpl


@hookimpl
def check_row(program, values):
    if program == "boom" and values["school_id"] == "S2":
        raise RuntimeError("kaput")
    if program == "boom" and values["school_id"] == "S4":
        return ["not a tuple"]


@hookimpl
def transform_row(program, row):
    if program == "boom" and row[1] == "S5":
        return ["too", "short"]


@hookimpl
def check_header(program):
    if program == "boom-header":
        raise KeyError("nope")


@hookimpl
def output_header(program):
    if program == "boom-output":
        return 1 / 0
'''


def codes(body) -> set[tuple[int, str | None, str]]:
    return {(e["line"], e["column"], e["code"]) for e in body["errors_sample"]}


def survey_source(tmp_path: Path) -> str:
    return f"AUDIT = {str(tmp_path / 'audit.jsonl')!r}\n" + SURVEY_PLUGIN


def audit(tmp_path: Path) -> list[dict]:
    path = tmp_path / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


# -- every hook, end to end ----------------------------------------------------------------------

def test_every_hook_has_a_docstring_and_a_test():
    hooks = [name for name, fn in vars(hookspecs).items()
             if callable(fn) and hasattr(fn, "ingest_server_spec")]
    assert len(hooks) == 8
    for name in hooks:
        assert (getattr(hookspecs, name).__doc__ or "").strip(), f"hook {name} has no docstring"
        assert f"test_hook_{name}" in globals(), f"hook {name} has no test_hook_{name}"


async def test_hook_register_program_types(aiohttp_client, tmp_path, clean_db):
    client, headers = await start(aiohttp_client, tmp_path, clean_db,
                                  sources={"survey": survey_source(tmp_path)})
    resp = await client.put("/api/specs/dataset/household", headers=headers, json={"cerberus": {
        "household_id": {"type": "string", "required": True, "empty": False},
        "members": {"type": "even", "coerce": "integer", "required": True}}})
    assert resp.status == 201, await resp.text()
    content = b"household_id,members,comment\nH1,4,unknown column kept\nH2,3,odd\n"
    status, body = await upload(client, headers, content, fields={
        "ingestion_type": "survey", "ingestion_name": "household"})
    assert status == 200, body
    uid = body["upload_id"]
    assert re.fullmatch(rf"surveys/household/\d{{4}}-\d\d-\d\d/household\.{uid}\.csv",
                        body["objects"]["valid"])
    assert body["objects"]["errors"] == f"surveys-rejected/household.{uid}.csv"
    assert await read_object(client, body["objects"]["valid"]) == [
        ["household_id", "members", "comment"], ["H1", "4", "unknown column kept"]]
    assert codes(body) == {(3, "members", "type_error")}  # the plugin's Cerberus type
    # The built-in types are still there; an unknown type names the known ones.
    status, body = await upload(client, headers, content, fields={
        "ingestion_type": "nope", "ingestion_name": "household"})
    assert status == 400 and "survey" in body["error"]["message"] and "event" in \
        body["error"]["message"]


async def test_hook_register_cerberus_extensions(aiohttp_client, tmp_path, clean_db):
    client, headers = await start(aiohttp_client, tmp_path, clean_db, copy=[SCHOOL])
    resp = await client.put("/api/specs/event/attendance_dmy", headers=headers, json={
        "cerberus": {
            "date": {"type": "date", "coerce": "dmy_date", "not_in_future": True,
                     "required": True},
            "school_id": {"type": "string", "required": True, "empty": False},
            "state": {"type": "string", "indian_state_code": True, "required": True}}})
    assert resp.status == 201, await resp.text()
    content = (b"date,school_id,state\n"
               b"05-01-2024,S1,KA\n"       # line 2: valid
               b"01/01/2999,S2,MH\n"       # line 3: a future date
               b"2024-01-05,S3,DL\n"       # line 4: not DD-MM-YYYY
               b"06/01/2024,S4,ZZ\n")      # line 5: no such state
    status, body = await upload(client, headers, content, fields={
        "ingestion_type": "event", "ingestion_name": "attendance_dmy", "program_name": "other"})
    assert status == 200, body
    assert codes(body) == {(3, "date", "custom:not_in_future"), (4, "date", "type_error"),
                           (5, "state", "custom:indian_state_code")}
    messages = {e["code"]: e["message"] for e in body["errors_sample"]}
    assert messages["custom:not_in_future"] == "2999-01-01 is in the future"
    assert "'ZZ' is not an Indian state" in messages["custom:indian_state_code"]
    # Another programme: rules apply (they are the spec's), the programme's hooks do not.
    assert await read_object(client, body["objects"]["valid"]) == [
        ["date", "school_id", "state"], ["05-01-2024", "S1", "KA"]]
    # A spec using a rule no plugin provides is refused when posted.
    resp = await client.put("/api/specs/event/bad", headers=headers, json={
        "cerberus": {"date": {"type": "string", "no_such_rule": True}}})
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_spec"


async def test_hook_check_header(aiohttp_client, tmp_path, clean_db):
    client, headers = await start(aiohttp_client, tmp_path, clean_db, copy=[SCHOOL],
                                  sources={"survey": survey_source(tmp_path)})
    await register(client, headers, ATTENDANCE)
    content = b"school_id,date,total_teachers,teachers_marked_present\nS1,2024-01-05,3,2\n"
    status, body = await upload(client, headers, content, fields=SCHOOL_FIELDS)
    assert status == 400, body
    assert body["error"]["code"] == "column_order"
    assert "must start with the column(s) date" in body["error"]["message"]
    assert body["error"]["details"]["problems"][0]["code"] == "column_order"
    assert await landed(client) == []
    (finished,) = audit(tmp_path)
    assert finished["status"] == "rejected" and finished["error"]["code"] == "column_order"
    # The same file for another programme is not this plugin's business.
    status, body = await upload(client, headers, content, fields=dict(
        SCHOOL_FIELDS, program_name="other-programme"))
    assert status == 200 and body["valid_rows"] == 1, body


async def test_hook_check_row(aiohttp_client, tmp_path, clean_db):
    client, headers = await start(aiohttp_client, tmp_path, clean_db, copy=[SCHOOL])
    await register(client, headers, ATTENDANCE)
    status, body = await upload(client, headers, ATTENDANCE_CSV, fields=SCHOOL_FIELDS)
    assert status == 200, body
    assert (body["total_rows"], body["valid_rows"], body["invalid_rows"]) == (5, 2, 3)
    assert codes(body) == {(3, "teachers_marked_present", "present_exceeds_total"),
                           (4, "total_teachers", "type_error"),
                           (5, "students_marked_present", "present_exceeds_total")}
    by_line = {e["line"]: e for e in body["errors_sample"]}
    assert by_line[3]["value"] == "7"
    assert by_line[3]["message"] == "7 marked present but total_teachers is 5"
    errors = await read_object(client, body["objects"]["errors"])
    assert [(r[1], r[-2]) for r in errors[1:]] == [("S2", "3"), ("S3", "4"), ("S4", "5")]
    assert "teachers_marked_present: present_exceeds_total: 7 marked present" in errors[1][-1]
    assert errors[3][:6] == ["2024-01-06", "S4", "4", "4", "50", "51"]  # original cells kept


async def test_hook_wants_rows(aiohttp_client, tmp_path, clean_db):
    """A plugin that says no for a file: its row hooks are never called for that file."""
    source = '''
from ingest_server import hookimpl

@hookimpl
def wants_rows(program):
    return program == "picky"

@hookimpl
def check_row(program, values):
    return [("school_id", "picky_rule", "picky saw this row")]
'''
    client, headers = await start(aiohttp_client, tmp_path, clean_db, sources={"picky": source})
    await register(client, headers, ATTENDANCE)
    status, body = await upload(client, headers, ATTENDANCE_CSV, fields=dict(
        SCHOOL_FIELDS, program_name="picky"))
    assert body["invalid_rows"] >= 5 - 1 and any(e["code"] == "picky_rule"
                                                 for e in body["errors_sample"])
    status, body = await upload(client, headers, ATTENDANCE_CSV, fields=dict(
        SCHOOL_FIELDS, program_name="other"))
    assert all(e["code"] != "picky_rule" for e in body["errors_sample"])


async def test_hook_output_header(aiohttp_client, tmp_path, clean_db):
    client, headers = await start(aiohttp_client, tmp_path, clean_db, copy=[SCHOOL])
    await register(client, headers, ATTENDANCE)
    status, body = await upload(client, headers, ATTENDANCE_CSV, fields=SCHOOL_FIELDS)
    valid = await read_object(client, body["objects"]["valid"])
    assert valid[0] == ["date", "school_id", "total_teachers", "teachers_marked_present",
                        "total_students", "students_marked_present", "teacher_attendance_pct"]
    errors = await read_object(client, body["objects"]["errors"])
    assert errors[0][-3:] == ["students_marked_present", "_line", "_errors"]  # as uploaded
    # Other programmes keep their header.
    status, body = await upload(client, headers, ATTENDANCE_CSV, fields=dict(
        SCHOOL_FIELDS, program_name="other-programme"))
    assert (await read_object(client, body["objects"]["valid"]))[0][-1] == \
        "students_marked_present"


async def test_hook_transform_row(aiohttp_client, tmp_path, clean_db):
    client, headers = await start(aiohttp_client, tmp_path, clean_db, copy=[SCHOOL])
    resp = await client.put("/api/specs/event/teacher_attendance", headers=headers, json={
        "cerberus": {
            "date": {"type": "date", "coerce": "dmy_date", "required": True},
            "school_id": {"type": "string", "required": True, "empty": False},
            "total_teachers": {"type": "integer", "coerce": "integer", "required": True},
            "teachers_marked_present": {"type": "integer", "coerce": "integer",
                                        "required": True}}})
    assert resp.status == 201, await resp.text()
    content = (b"date,school_id,total_teachers,teachers_marked_present\n"
               b"05-01-2024,S1,8,6\n06/01/2024,S2, 3 ,3\n07-01-2024,S3,0,0\n")
    status, body = await upload(client, headers, content, fields=SCHOOL_FIELDS)
    assert status == 200 and body["valid_rows"] == 3, body
    assert await read_object(client, body["objects"]["valid"]) == [
        ["date", "school_id", "total_teachers", "teachers_marked_present",
         "teacher_attendance_pct"],
        ["2024-01-05", "S1", "8", "6", "75.0"],
        ["2024-01-06", "S2", " 3 ", "3", "100.0"],  # only dates are rewritten
        ["2024-01-07", "S3", "0", "0", ""]]


async def test_hook_upload_finished(aiohttp_client, tmp_path, clean_db):
    client, headers = await start(aiohttp_client, tmp_path, clean_db,
                                  sources={"survey": survey_source(tmp_path)})
    await register(client, headers, ATTENDANCE)
    fields = dict(SCHOOL_FIELDS, program_name="other-programme")
    status, ok = await upload(client, headers, ATTENDANCE_CSV, fields=fields)
    status, bad = await upload(client, headers, b"date,school_id\n2024-01-01,S1\n",
                               fields=fields)
    assert status == 400 and bad["error"]["code"] == "missing_column"
    await notified(client)  # the hooks run after the answer, as tracked background work
    first, second = audit(tmp_path)
    assert first["upload_id"] == ok["upload_id"] and first["valid_rows"] == 4
    assert first["objects"] == ok["objects"] and first["program_name"] == "other-programme"
    assert second["error"]["code"] == "missing_column"
    # The hook changed its own copy only, not the answer to the client.
    assert ok["objects"]["valid"].startswith("process_input/other-programme/")


# -- the example plugins --------------------------------------------------------------------------

async def test_school_attendance_in_worker_processes(aiohttp_client, tmp_path, clean_db):
    client, headers = await start(aiohttp_client, tmp_path, clean_db, copy=[SCHOOL],
                                  ingest={"workers": 2, "parallel_min_bytes": 0,
                                          "chunk_bytes": 64 * 1024})
    await register(client, headers, ATTENDANCE)
    rows = [b"2024-01-05,S%d,10,%d,," % (i, 11 if i % 1000 == 7 else 9) for i in range(5000)]
    content = ATTENDANCE_CSV.split(b"\n")[0] + b"\n" + b"\n".join(rows) + b"\n"
    status, body = await upload(client, headers, content, fields=SCHOOL_FIELDS)
    assert status == 200, body
    assert (body["valid_rows"], body["invalid_rows"]) == (4995, 5)
    assert codes(body) == {(i + 2, "teachers_marked_present", "present_exceeds_total")
                           for i in range(7, 5000, 1000)}
    valid = await read_object(client, body["objects"]["valid"])
    assert len(valid) == 4996 and valid[-1][-1] == "90.0"


async def test_example_plugins_leave_other_programmes_alone(aiohttp_client, tmp_path, clean_db,
                                                            monkeypatch):
    monkeypatch.delenv("INGEST_WEBHOOK_URL", raising=False)
    client, headers = await start(aiohttp_client, tmp_path, clean_db, copy=[SCHOOL, WEBHOOK])
    await register(client, headers, SPEC)
    content = b"school_id,date,teachers_present\nS1,2024-01-01,3\nS2,2024-01-01,x\n"
    status, body = await upload(client, headers, content, fields={
        "ingestion_type": "event", "ingestion_name": "teacherspresent", "program_name": "pgi"})
    assert status == 200 and codes(body) == {(3, "teachers_present", "type_error")}
    assert await read_object(client, body["objects"]["valid"]) == [
        ["school_id", "date", "teachers_present"], ["S1", "2024-01-01", "3"]]


def test_the_repository_plugins_folder_loads():
    from ingest_server.plugins.loading import plugin_extensions
    from ingest_server.plugins.loading import load_registry

    registry = load_registry(str(REPO / "plugins"))
    names = {p["name"]: p for p in registry.describe()}
    assert names["plugins/school_attendance.py"]["version"] == "1.0.0"
    assert names["plugins/webhook_notifier.py"]["hooks"] == ["upload_finished"]
    assert set(plugin_extensions(str(REPO / "plugins")).coercers) == {"dmy_date"}


class Receiver:
    """A real HTTP server for the webhook: answers 200, 404 or 500, or hangs."""

    def __init__(self) -> None:
        self.hits: dict[str, list] = {"ok": [], "fail": [], "gone": [], "hang": []}
        self.release = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        kind = request.match_info["kind"]
        self.hits[kind].append(await request.json())
        if kind == "hang":
            await self.release.wait()
        return web.json_response({}, status={"ok": 200, "fail": 500, "gone": 404}.get(kind, 200))


@pytest.fixture
async def receiver(aiohttp_server):
    r = Receiver()
    app = web.Application()
    app.router.add_post("/{kind}", r.handle)
    server = await aiohttp_server(app)
    r.url = lambda kind: str(server.make_url(f"/{kind}"))
    yield r
    r.release.set()


@pytest.mark.parametrize("kind, retries, hits", [
    ("ok", 2, 1), ("fail", 1, 2), ("gone", 2, 1), ("hang", 1, 2)])
async def test_webhook_notifier(aiohttp_client, tmp_path, clean_db, monkeypatch, receiver, caplog,
                                kind, retries, hits):
    monkeypatch.setenv("INGEST_WEBHOOK_URL", receiver.url(kind))
    # Generous for answers, short for the server that never answers (each attempt times out).
    monkeypatch.setenv("INGEST_WEBHOOK_TIMEOUT_S", "1" if kind == "hang" else "30")
    monkeypatch.setenv("INGEST_WEBHOOK_RETRIES", str(retries))
    client, headers = await start(aiohttp_client, tmp_path, clean_db, copy=[WEBHOOK])
    await register(client, headers, ATTENDANCE)
    status, body = await upload(client, headers, ATTENDANCE_CSV, fields=SCHOOL_FIELDS)
    assert status == 200 and body["status"] == "uploaded", body  # whatever the webhook did
    await notified(client)  # the hook runs after the answer, as tracked background work
    assert len(receiver.hits[kind]) == hits
    sent = receiver.hits[kind][0]
    assert sent["event"] == "upload_finished"
    assert sent["upload"]["upload_id"] == body["upload_id"]
    assert sent["upload"]["objects"] == body["objects"] and "errors_sample" not in sent["upload"]
    delivered = [r for r in caplog.records if "not delivered" in r.getMessage()]
    assert len(delivered) == (0 if kind == "ok" else 1)


def test_webhook_notifier_does_nothing_without_a_url(monkeypatch):
    monkeypatch.delenv("INGEST_WEBHOOK_URL", raising=False)
    spec = importlib.util.spec_from_file_location("webhook_copy", REPO / "plugins" / WEBHOOK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.upload_finished(upload={"upload_id": "x"}) is None


# -- the documented plugin (docs/plugins.md) ---------------------------------------------------

async def test_the_documented_plugin_works_as_written(aiohttp_client, tmp_path, clean_db):
    text = (REPO / "docs" / "plugins.md").read_text().split("## Writing a programme plugin", 1)[1]
    source = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    assert len(source.splitlines()) <= 30
    client, headers = await start(aiohttp_client, tmp_path, clean_db,
                                  sources={"mid_day_meal": source})
    await register(client, headers, {"program": "meals", "input": {"type": "object", "properties": {
        "school_id": {"type": "string", "shouldnotnull": True},
        "students_present": {"type": "integer", "shouldnotnull": True},
        "meals_served": {"type": "integer"}}}})
    content = b"school_id,students_present,meals_served\nS1,30,30\nS2,10,12\nS3,5,\n"
    fields = {"ingestion_type": "event", "ingestion_name": "meals", "program_name": "mid-day-meal"}
    status, body = await upload(client, headers, content, fields=fields)
    assert status == 200 and codes(body) == {(3, "meals_served", "meals_exceed_students")}, body
    status, body = await upload(client, headers, b"school_id,students_present\nS1,3\n",
                                fields=fields)
    assert status == 400 and body["error"]["code"] == "missing_column"


# -- safety -------------------------------------------------------------------------------------

async def test_a_failing_row_hook_costs_the_row_not_the_upload(aiohttp_client, tmp_path, clean_db,
                                                               caplog):
    client, headers = await start(aiohttp_client, tmp_path, clean_db,
                                  sources={"broken": BROKEN_PLUGIN})
    await register(client, headers, ATTENDANCE)
    fields = dict(SCHOOL_FIELDS, program_name="boom")
    with caplog.at_level(logging.ERROR, logger="ingest_server.ingest"):
        status, body = await upload(client, headers, ATTENDANCE_CSV, fields=fields)
    assert status == 200 and body["status"] == "uploaded", body
    assert codes(body) == {(3, None, "plugin_error"), (4, "total_teachers", "type_error"),
                           (5, None, "plugin_error"), (6, None, "plugin_error")}
    messages = [e["message"] for e in body["errors_sample"] if e["code"] == "plugin_error"]
    assert all(m.startswith("plugin plugins/broken.py failed on this row") for m in messages)
    assert "RuntimeError: kaput" in messages[0]
    assert "output header has 6" in messages[2]
    logged = [r for r in caplog.records if "plugins/broken.py" in r.getMessage()]
    assert len(logged) == 1  # once per file, not once per row


@pytest.mark.parametrize("program", ["boom-header", "boom-output"])
async def test_a_failing_header_hook_fails_the_upload_cleanly(aiohttp_client, tmp_path, clean_db,
                                                              program):
    client, headers = await start(aiohttp_client, tmp_path, clean_db,
                                  sources={"broken": BROKEN_PLUGIN})
    await register(client, headers, ATTENDANCE)
    status, body = await upload(client, headers, ATTENDANCE_CSV,
                                fields=dict(SCHOOL_FIELDS, program_name=program))
    assert status == 500 and body["error"]["code"] == "plugin_error", body
    assert body["error"]["message"].startswith("plugin plugins/broken.py failed")
    assert body["error"]["details"]["plugin"] == "plugins/broken.py"
    assert await landed(client) == []
    listing = await (await client.get("/api/ingestion/uploads", headers=headers)).json()
    assert [u["status"] for u in listing["uploads"]] == ["failed"]


@pytest.mark.parametrize("sources, message", [
    ({"bad": "import no_such_module_here\n"}, r"plugin .*/plugins/bad\.py failed to import: "
                                               r"ModuleNotFoundError"),
    ({"a": "from ingest_server import hookimpl\nfrom ingest_server.plugins.programs import ProgramType\n"
           "@hookimpl\ndef register_program_types():\n"
           "    return [ProgramType(name='event', route='new_programs', spec_kind='event', "
           "valid_key='v', error_key='e')]\n"},
     # pluggy calls the later registered plugin first: the built-in comes second
     r"program type 'event' is registered twice: by plugins/a\.py "
     r"and by ingest_server\.plugins\.builtin\.program_types"),
    ({"a": "from ingest_server import hookimpl\nfrom ingest_server.validation import Extensions\n"
           "@hookimpl\ndef register_cerberus_extensions():\n"
           "    return Extensions(coercers={'dmy_date': str})\n"},
     r"Cerberus coercer 'dmy_date' is registered twice"),
])
def test_a_broken_plugin_stops_start_up(tmp_path, sources, message):
    write_plugins(tmp_path, [SCHOOL], **sources)
    with pytest.raises(PluginError, match=message):
        create_app(make_settings(tmp_path, "postgresql://unused@127.0.0.1/none"))


# -- GET /api/plugins ---------------------------------------------------------------------------

async def test_api_plugins_lists_what_is_loaded(aiohttp_client, tmp_path, clean_db):
    client, headers = await start(aiohttp_client, tmp_path, clean_db, copy=[SCHOOL, WEBHOOK],
                                  sources={"survey": survey_source(tmp_path)})
    assert (await client.get("/api/plugins")).status == 401
    resp = await client.get("/api/ingestion/generatejwt", headers=basic(*READ_ONLY_CLIENT, json=True))
    reader = {"Authorization": f"Bearer {(await resp.json())['token']}"}
    resp = await client.get("/api/plugins", headers=reader)
    assert resp.status == 200
    body = await resp.json()
    plugins = {p["name"]: p for p in body["plugins"]}
    assert plugins["ingest_server.plugins.builtin.program_types"] == {
        "name": "ingest_server.plugins.builtin.program_types", "source": "builtin",
        "version": __version__, "hooks": ["register_program_types"],
        "program_types": ["dataset", "dimension", "event", "national"]}
    assert plugins["plugins/school_attendance.py"]["version"] == "1.0.0"
    assert plugins["plugins/school_attendance.py"]["hooks"] == [
        "check_header", "check_row", "output_header", "register_cerberus_extensions",
        "transform_row", "wants_rows"]
    assert plugins["plugins/survey.py"] == {
        "name": "plugins/survey.py", "source": "file", "version": "2.5",
        "hooks": ["register_cerberus_extensions", "register_program_types", "upload_finished"],
        "program_types": ["survey"]}
    assert plugins["plugins/webhook_notifier.py"]["hooks"] == ["upload_finished"]
    survey = next(pt for pt in body["program_types"] if pt["name"] == "survey")
    assert survey == {"name": "survey", "route": "new_programs", "spec_kind": "dataset",
                      "file_kinds": ["csv"], "description": "", "plugin": "plugins/survey.py"}
    assert body["cerberus_extensions"] == {"rules": ["indian_state_code", "not_in_future"],
                                           "types": ["even"], "coercers": ["dmy_date"]}
