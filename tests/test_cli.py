"""The ``ingest`` command line against a live server (production app, real PostgreSQL).

The CLI's HTTP client is synchronous, so each invocation runs in a worker thread
(``asyncio.to_thread``) while the event loop keeps serving the test server.
"""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from conftest import READ_ONLY_CLIENT, TEST_CLIENT
from ingest_helpers import SPEC, landed, register
from ingest_server.cli.config import resolve_config
from ingest_server.cli.failures import CliError
from ingest_server.cli.main import cli
from ingest_server.cli.multipart import MultipartFile
from testkit.server_process import free_port
from ingest_server.cli.progress import BarProgress, NoProgress, PlainProgress, reporter_for
from ingest_server.cli.specfiles import read_spec_file
from cli_helpers import CSV, HEADER, _bearer, cli_env, ingest, one_line

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "specs"  # cQube's own spec files


# --- tokens, credentials and configuration ---------------------------------------------------

async def test_token_prints_a_usable_token(client, cli_env):
    result = await ingest(cli_env, "token")
    assert result.exit_code == 0, result.stderr
    token = result.stdout.strip()
    assert result.stdout == token + "\n" and token.count(".") == 2
    resp = await client.get("/api/specs", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 200


async def test_config_file_then_env_then_flags(client, cli_env, tmp_path):
    config = tmp_path / "xdg" / "ingest" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'url = "{cli_env["INGEST_URL"]}"\nclient_id = "{TEST_CLIENT[0]}"\n'
                      f'client_secret = "{TEST_CLIENT[1]}"\n')
    only_file = dict(cli_env, INGEST_URL=None, INGEST_CLIENT_ID=None, INGEST_CLIENT_SECRET=None)
    assert (await ingest(only_file, "token")).exit_code == 0  # the default file location
    # The environment beats the file, and a flag beats the environment.
    env_wins = dict(only_file, INGEST_CLIENT_SECRET="wrong-secret-0123456789")
    assert (await ingest(env_wins, "token")).exit_code == 2
    flag_wins = await ingest(env_wins, "--client-secret", TEST_CLIENT[1], "token")
    assert flag_wins.exit_code == 0, flag_wins.stderr
    explicit = await ingest(only_file, "--config", str(tmp_path / "missing.toml"), "token")
    assert explicit.exit_code == 2 and "does not exist" in one_line(explicit)


def test_config_file_unknown_key_is_named(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('url = "http://h:1"\nsecret = "x"\n')
    with pytest.raises(CliError, match="unknown key 'secret'"):
        resolve_config(url=None, client_id=None, client_secret=None, token=None,
                       config_path=path)
    cfg = resolve_config(url=None, client_id=None, client_secret=None, token=None,
                         config_path=None, env={"XDG_CONFIG_HOME": str(tmp_path / "none")})
    assert cfg.url == "http://127.0.0.1:8080" and not cfg.has_credentials


async def test_bad_credentials_exit_2(cli_env):
    result = await ingest(dict(cli_env, INGEST_CLIENT_SECRET="not-the-secret-0123456789"),
                          "token")
    assert result.exit_code == 2 and result.stdout == ""
    assert one_line(result).startswith("ingest: authentication failed: invalid_client: ")


async def test_no_credentials_on_a_closed_token_endpoint(cli_env):
    result = await ingest(dict(cli_env, INGEST_CLIENT_ID=None, INGEST_CLIENT_SECRET=None),
                          "upload", __file__, "--program", "p")
    assert result.exit_code == 2
    assert "missing_credentials" in one_line(result) and "--client-id" in one_line(result)


async def test_missing_scope_exit_2(client, cli_env, tmp_path):
    path = tmp_path / "tp.json"
    path.write_text(json.dumps(SPEC))
    env = dict(cli_env, INGEST_CLIENT_ID=READ_ONLY_CLIENT[0],
               INGEST_CLIENT_SECRET=READ_ONLY_CLIENT[1])
    result = await ingest(env, "spec", "push", str(path))
    assert result.exit_code == 2 and "authentication failed" in one_line(result)


async def test_unreachable_server_exit_2(cli_env, tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    for args in (["token"], ["status", "x"], ["upload", str(Path(__file__)), "--program", "p"]):
        result = await ingest(dict(cli_env, INGEST_URL=url), *args)
        assert result.exit_code == 2, args
        assert one_line(result).startswith(f"ingest: cannot reach {url}")


async def test_usage_errors_exit_2(cli_env, tmp_path):
    archive = tmp_path / "a.zip"
    archive.write_bytes(b"PK")
    result = await ingest(cli_env, "upload", str(archive), "--type", "event")
    assert result.exit_code == 2 and "do not apply to a .zip" in result.stderr
    assert (await ingest(cli_env, "upload", str(tmp_path / "nope.csv"))).exit_code == 2
    assert (await ingest(cli_env, "--url", "ftp://x", "token")).exit_code == 2


# --- specs ----------------------------------------------------------------------------------

async def test_spec_push_created_then_unchanged(client, cli_env, tmp_path):
    event = SAMPLES / "programs" / "school-attendance" / "teacherspresent.json"
    dims = tmp_path / "dimensions"
    dims.mkdir()
    dimension = shutil.copy(SAMPLES / "dimensions" / "district-dimension.json", dims)
    first = await ingest(cli_env, "spec", "push", str(event), str(dimension))
    assert first.exit_code == 0, first.stderr
    assert first.stdout.splitlines() == [
        f"{event}: event spec 'teacherspresent' created v1",
        f"{dimension}: dimension spec 'district' created v1"]  # kind from its folder
    again = await ingest(cli_env, "spec", "push", str(event))
    assert again.stdout == f"{event}: event spec 'teacherspresent' unchanged v1\n"
    listed = await (await client.get("/api/specs", headers=await _bearer(cli_env))).json()
    assert {(s["kind"], s["name"]) for s in listed["specs"]} == {
        ("event", "teacherspresent"), ("dimension", "district")}


async def test_spec_push_cerberus_and_failures(client, cli_env, tmp_path):
    schema = tmp_path / "scores.json"
    schema.write_text(json.dumps({"cerberus": {"id": {"type": "string", "required": True}}}))
    bad_rule = tmp_path / "bad.json"
    bad_rule.write_text(json.dumps({"cerberus": {"id": {"type": "no-such-type"}}}))
    not_json = tmp_path / "broken.json"
    not_json.write_text("{")
    result = await ingest(cli_env, "spec", "push", "--kind", "dataset", str(schema),
                          str(bad_rule), str(not_json))
    assert result.exit_code == 2
    assert result.stdout == f"{schema}: dataset spec 'scores' created v1\n"
    errors = result.stderr.splitlines()
    assert errors[0].startswith(f"ingest: {bad_rule}: error invalid_spec")
    assert errors[1].startswith(f"ingest: {not_json}: is not a JSON spec file")
    assert errors[2] == "ingest: spec push: 2 of 3 files failed"
    named = await ingest(cli_env, "spec", "push", "--name", "other", str(schema))
    assert named.stdout == f"{schema}: event spec 'other' created v1\n"


def test_spec_file_kind_defaults(tmp_path):
    (tmp_path / "dimensions").mkdir()
    path = tmp_path / "dimensions" / "x.json"
    path.write_text(json.dumps({"program": "x", "input": {}}))
    assert read_spec_file(path).kind == "dimension"
    assert read_spec_file(path, kind="event").kind == "event"
    with pytest.raises(CliError, match="neither a cQube spec"):
        path.write_text("[]")
        read_spec_file(path)


# --- uploads --------------------------------------------------------------------------------

async def test_upload_with_progress_to_a_non_tty(client, cli_env, tmp_path):
    await register(client, await _bearer(cli_env))
    path = tmp_path / "teacherspresent.csv"
    # Several of the client's 256 KiB chunks, so the quarters are reported one by one.
    path.write_bytes(HEADER + b"".join(b"2024-01-01,S%d,%d,,\n" % (i, i % 50)
                                       for i in range(60_000)) + b"2024-01-02,S0,abc,,\n")
    result = await ingest(cli_env, "upload", str(path), "--program", "school-attendance")
    assert result.exit_code == 0, result.stderr
    progress = result.stderr.splitlines()
    percents = [int(line.split(": ")[2].split("%")[0]) for line in progress]
    assert len(percents) == 4 and percents == sorted(percents) and percents[-1] == 100
    assert all(line.startswith("ingest: upload teacherspresent.csv: ") and "/s, ETA " in line
               for line in progress)
    out = result.stdout
    assert "uploaded" in out and "60001 total, 60000 valid, 1 rejected" in out
    keys = await landed(client)
    assert len(keys) == 2 and all(k in out for k in keys)  # whole keys, never folded
    assert "type_error" in out and "abc" in out  # the first errors table


async def test_upload_shows_warnings(client, cli_env, tmp_path):
    await register(client, await _bearer(cli_env))
    path = tmp_path / "teacherspresent.csv"
    path.write_bytes(HEADER.rstrip(b"\n") + b",latitude,,\n2024-01-01,S1,3,,,17.4,,\n")
    result = await ingest(cli_env, "upload", str(path), "--program", "school-attendance",
                          "--no-progress")
    assert result.exit_code == 0, result.stderr
    assert "warning: trailing_empty_columns: 2 column(s) with no name" in result.stdout
    assert "warning: undeclared_columns: column(s) not in the spec passed through unchecked: " \
           "latitude" in result.stdout


async def test_upload_json_and_dry_run(client, cli_env, tmp_path):
    await register(client, await _bearer(cli_env))
    path = tmp_path / "data.csv"
    path.write_bytes(CSV)
    result = await ingest(cli_env, "upload", str(path), "--name", "teacherspresent",
                          "--program", "school-attendance", "--dry-run", "--json",
                          "--no-progress")
    assert result.exit_code == 0 and result.stderr == ""
    body = json.loads(result.stdout)
    assert body["status"] == "uploaded" and body["dry_run"] is True
    assert (body["valid_rows"], body["invalid_rows"]) == (2, 1)
    assert await landed(client) == []


async def test_rejected_uploads_exit_1(client, cli_env, tmp_path):
    await register(client, await _bearer(cli_env))
    missing = tmp_path / "teacherspresent.csv"
    missing.write_bytes(b"date,school_id\n2024-01-01,S1\n")
    result = await ingest(cli_env, "upload", str(missing), "--program", "p", "--no-progress")
    assert result.exit_code == 1 and result.stdout == ""
    assert one_line(result).startswith("ingest: upload rejected: missing_column: ")
    as_json = await ingest(cli_env, "upload", str(missing), "--program", "p", "--json",
                           "--no-progress")
    assert as_json.exit_code == 1
    assert json.loads(as_json.stdout)["error"]["code"] == "missing_column"
    too_bad = tmp_path / "teacherspresent2.csv"
    too_bad.write_bytes(CSV)
    result = await ingest(cli_env, "upload", str(too_bad), "--name", "teacherspresent",
                          "--program", "p", "--max-error-rate", "0.1", "--no-progress")
    assert result.exit_code == 1
    assert one_line(result).startswith("ingest: upload rejected: error_rate_exceeded: ")
    assert "rejected" in result.stdout  # the result table is still shown
    assert await landed(client) == []


async def test_request_errors_are_not_rejections(client, cli_env, tmp_path):
    await register(client, await _bearer(cli_env))
    path = tmp_path / "teacherspresent.csv"
    path.write_bytes(CSV)
    # (a missing --program is said before sending: test_cli_files.py; this one the server finds)
    result = await ingest(cli_env, "upload", str(path), "--program", "p", "--delimiter", "::",
                          "--no-progress")
    assert result.exit_code == 2
    assert one_line(result).startswith("ingest: upload failed: invalid_field: ")


async def test_status_and_errors(client, cli_env, tmp_path):
    await register(client, await _bearer(cli_env))
    path = tmp_path / "teacherspresent.csv"
    path.write_bytes(CSV)
    uploaded = await ingest(cli_env, "upload", str(path), "--program", "p", "--json",
                            "--idempotency-key", "k-1")
    upload_id = json.loads(uploaded.stdout)["upload_id"]
    replay = await ingest(cli_env, "upload", str(path), "--program", "p", "--json",
                          "--idempotency-key", "k-1", "--no-progress")
    assert json.loads(replay.stdout)["upload_id"] == upload_id
    status = await ingest(cli_env, "status", upload_id)
    assert status.exit_code == 0 and "3 total, 2 valid, 1 rejected" in status.stdout
    as_json = json.loads((await ingest(cli_env, "status", upload_id, "--json")).stdout)
    assert as_json["upload_id"] == upload_id and as_json["status"] == "uploaded"
    errors = await ingest(cli_env, "errors", upload_id)
    assert errors.exit_code == 0 and errors.stderr == "", errors.stderr
    lines = errors.stdout_bytes.decode().splitlines()
    assert lines[0] == "date,school_id,teachers_present,remarks,score,_line,_errors"
    assert lines[1].startswith("2024-01-01,S2,abc,bad number,,3,")
    unknown = await ingest(cli_env, "status", "no-such-upload")
    assert unknown.exit_code == 2
    assert one_line(unknown).startswith("ingest: status failed: upload_not_found: ")


async def test_zip_upload(client, cli_env, tmp_path):
    await register(client, await _bearer(cli_env))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("teacherspresent.csv", CSV)
    path = tmp_path / "teacherspresent.zip"
    path.write_bytes(buf.getvalue())
    result = await ingest(cli_env, "upload", str(path), "--json", "--no-progress")
    assert result.exit_code == 0, result.stderr  # a failing ZIP upload (2) is a failure
    body = json.loads(result.stdout)
    assert (body["total_rows"], body["valid_rows"], body["invalid_rows"]) == (3, 2, 1)
    assert [m["name"] for m in body["members"]] == ["teacherspresent"]
    errors = await ingest(cli_env, "errors", body["upload_id"], "--member", "teacherspresent")
    assert errors.exit_code == 0 and ",3," in errors.stdout


# --- pure parts -----------------------------------------------------------------------------

def test_multipart_body_streams_in_bounded_chunks(tmp_path):
    path = tmp_path / 'we"ird.csv'
    path.write_bytes(b"x" * 600_000)
    seen = []
    body = MultipartFile(path, {"ingestion_type": "event"}, content_type="text/csv",
                         on_chunk=seen.append, chunk_bytes=256 * 1024)
    parts = list(body)
    assert sum(map(len, parts)) == len(body)
    assert max(map(len, parts[1:-1])) <= 256 * 1024 and sum(seen) == 600_000
    assert b'filename="we%22ird.csv"' in parts[0]
    assert parts[0].index(b'name="ingestion_type"') < parts[0].index(b'name="file"')
    path.write_bytes(b"x" * 10)  # changed after the length was announced
    with pytest.raises(CliError, match="changed while"):
        list(body)


def test_plain_progress_reports_each_quarter_once():
    ticks = iter([0.0, 0.0, 1.0, 4.0])  # __init__, __enter__, then each line
    out = io.StringIO()
    p = PlainProgress("upload f.csv", 4_000_000, out, clock=lambda: next(ticks))
    with p:
        p.advance(1_000_000)
        p.advance(100)       # still in the first quarter: nothing printed
        p.advance(2_999_900)  # crosses 50 % and 75 % at once: one line
    assert out.getvalue().splitlines() == [
        "ingest: upload f.csv: 25% (1.0 MB of 4.0 MB, 1.0 MB/s, ETA 0:00:03)",
        "ingest: upload f.csv: 100% (4.0 MB of 4.0 MB, 1.0 MB/s, ETA 0:00:00)"]


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_the_rich_bar():
    term = FakeTerminal()
    bar = reporter_for("upload f.csv", 2_000_000, term)
    assert isinstance(bar, BarProgress)
    with bar:
        bar.advance(2_000_000)
    assert "upload f.csv" in term.getvalue() and "2.0/2.0 MB" in term.getvalue()
    assert isinstance(reporter_for("x", 1, term, enabled=False), NoProgress)
    assert isinstance(reporter_for("x", 1, io.StringIO()), PlainProgress)


async def test_list_with_filters(client, cli_env, tmp_path):
    await register(client, await _bearer(cli_env))
    ids = []
    for name, program in (("jan-report.csv", "prog-a"), ("feb-report.csv", "prog-b")):
        path = tmp_path / name
        path.write_bytes(CSV + f"2024-03-01,{name},1\n".encode())
        out = await ingest(cli_env, "upload", str(path), "--name", "teacherspresent",
                           "--program", program, "--json", "--no-progress")
        ids.append(json.loads(out.stdout)["upload_id"])
    listed = await ingest(cli_env, "list", "--json")
    body = json.loads(listed.stdout)
    assert [u["upload_id"] for u in body["uploads"]] == ids[::-1] and body["total"] == 2
    only = json.loads((await ingest(cli_env, "list", "--program", "prog-a", "--json")).stdout)
    assert [u["upload_id"] for u in only["uploads"]] == [ids[0]]
    by_name = await ingest(cli_env, "list", "--filename", "FEB", "--status", "uploaded")
    assert by_name.exit_code == 0
    assert "uploads 1-1 of 1" in by_name.stdout and ids[1] in by_name.stdout
    assert ids[0] not in by_name.stdout
    none = await ingest(cli_env, "list", "--from", "2999-01-01")
    assert "no uploads match" in none.stdout
