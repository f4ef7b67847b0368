"""``ingest spec infer`` and workbook uploads from the command line (issue 25), against a live
server (production app, real PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path

from ingest_helpers import landed, read_object, register
from cli_helpers import cli_env, ingest  # noqa: F401 - the fixture is used by name
from files_helpers import FILES, WORKBOOK_VALID


async def test_spec_infer_then_push_then_upload_the_workbook(client, cli_env, tmp_path):
    sample = tmp_path / "attendance.ods"
    sample.write_bytes((FILES / "attendance.ods").read_bytes())
    result = await ingest(cli_env, "spec", "infer", str(sample), "--name", "ods_sample")
    assert result.exit_code == 0, result.stderr
    draft = json.loads(result.stdout)
    assert draft["program"] == "ods_sample"
    assert list(draft["input"]["properties"]) == WORKBOOK_VALID[0]
    assert "school_id: text, 1 blank, 4 distinct, e.g. S1, S2, S3" in result.stderr
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(result.stdout)
    pushed = await ingest(cli_env, "spec", "push", str(spec_file))
    assert pushed.exit_code == 0, pushed.stderr
    upload = await ingest(cli_env, "upload", str(sample), "--name", "ods_sample", "--program",
                          "p", "--json", "--no-progress")
    body = json.loads(upload.stdout)
    # the draft saw "abc" among the counts and a blank school: every row fits it
    assert (body["status"], body["valid_rows"], body["invalid_rows"]) == ("uploaded", 5, 0), body
    rows = await read_object(client, body["objects"]["valid"])
    assert rows[1] == ["2024-01-15", "S1", "12", "ok", "3"]


async def test_upload_with_sheet_and_delimiter_flags(client, cli_env, tmp_path):
    from ingest_helpers import SPEC
    from cli_helpers import _bearer

    await register(client, await _bearer(cli_env), SPEC)
    two = tmp_path / "two.xlsx"
    two.write_bytes((FILES / "two-sheets.xlsx").read_bytes())
    refused = await ingest(cli_env, "upload", str(two), "--name", "teacherspresent",
                           "--program", "p", "--no-progress")
    assert refused.exit_code != 0 and "January, February" in refused.stderr
    ok = await ingest(cli_env, "upload", str(two), "--name", "teacherspresent", "--program",
                      "p", "--sheet", "January", "--json", "--no-progress")
    assert json.loads(ok.stdout)["valid_rows"] == 1, ok.stderr
    semi = tmp_path / "teacherspresent.csv"
    semi.write_bytes((FILES / "semicolon.csv").read_bytes())
    ok = await ingest(cli_env, "upload", str(semi), "--program", "p", "--delimiter", ";",
                      "--json", "--no-progress")
    body = json.loads(ok.stdout)
    assert (body["valid_rows"], body["invalid_rows"]) == (1, 1), body
    assert len(await landed(client)) == 3  # January: valid only; semicolons: valid + errors


async def test_wrong_spec_name_lists_the_closest_and_missing_program_is_a_flag(client, cli_env,
                                                                               tmp_path):
    from ingest_helpers import SPEC
    from cli_helpers import _bearer

    await register(client, await _bearer(cli_env), SPEC)
    await register(client, await _bearer(cli_env), dict(SPEC, program="teachers_absent"))
    data = tmp_path / "teacherspresnt.csv"  # a typo in the name
    data.write_bytes((FILES / "semicolon.csv").read_bytes())
    result = await ingest(cli_env, "upload", str(data), "--program", "p", "--no-progress")
    assert result.exit_code != 0
    assert "closest registered: teacherspresent" in result.stderr, result.stderr
    # --program is named before anything is sent: nothing reached the server
    missing = await ingest(cli_env, "upload", str(data), "--name", "teacherspresent",
                           "--no-progress")
    assert missing.exit_code == 2 and "--program is required for --type event" in missing.stderr
    assert await landed(client) == []
    # the server's own refusal of a form field names the option too
    bad = await ingest(cli_env, "upload", str(data), "--name", "teacherspresent", "--program",
                       "p", "--delimiter", "::", "--no-progress")
    assert "delimiter must be one of" in bad.stderr and "(option --delimiter)" in bad.stderr
