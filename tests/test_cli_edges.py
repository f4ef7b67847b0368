"""The CLI's sharp edges a new user hits first (issue 15 item 10), against a live server."""

from __future__ import annotations

from pathlib import Path

from ingest_helpers import landed, register
from cli_helpers import CSV, cli_env, ingest, one_line  # noqa: F401  (cli_env is a fixture)

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


async def test_url_with_api_says_wrong_url(cli_env):
    env = dict(cli_env, INGEST_URL=cli_env["INGEST_URL"].rstrip("/") + "/api")
    result = await ingest(env, "token")
    assert result.exit_code == 2
    line = one_line(result)
    assert "wrong URL" in line and "without /api" in line and "missing_token" not in line


async def test_url_of_something_else_says_wrong_url(cli_env):
    env = dict(cli_env, INGEST_URL=cli_env["INGEST_URL"].rstrip("/") + "/ingest")
    result = await ingest(env, "status", "x")
    assert result.exit_code == 2
    assert "wrong URL?" in one_line(result)


async def test_spec_push_of_a_csv_says_it_is_data(cli_env):
    result = await ingest(cli_env, "spec", "push", str(SAMPLES / "teacherspresent.csv"))
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert lines[0] == (f"ingest: {SAMPLES / 'teacherspresent.csv'}: is a data file, not a JSON "
                        f"spec (upload it with `ingest upload {SAMPLES / 'teacherspresent.csv'}`)")
    assert "not valid JSON" not in result.stderr


async def test_piped_status_has_no_padding(client, cli_env, auth_headers, tmp_path):
    await register(client, auth_headers)
    data = tmp_path / "teacherspresent.csv"
    data.write_bytes(CSV)
    up = await ingest(cli_env, "upload", str(data), "--program", "school-attendance",
                      "--no-progress")
    assert up.exit_code == 0, up.stderr
    upload_id = up.stdout.split("upload ", 1)[1].split()[0]
    status = await ingest(cli_env, "status", upload_id)
    assert status.exit_code == 0, status.stderr
    lines = status.stdout.splitlines()
    assert lines[0] == f"upload {upload_id}"
    assert all(line == line.rstrip() for line in lines), [ln for ln in lines if ln != ln.rstrip()]
    assert max(len(line) for line in lines) < 200


async def test_duplicates_point_at_the_upload_that_wrote_the_objects(client, cli_env,
                                                                   auth_headers, tmp_path):
    await register(client, auth_headers)
    data = tmp_path / "teacherspresent.csv"
    data.write_bytes(CSV)
    args = ("upload", str(data), "--program", "school-attendance", "--no-progress")
    first = await ingest(cli_env, *args)
    first_id = first.stdout.split("upload ", 1)[1].split()[0]
    assert "file accepted" in first.stdout
    for _ in range(2):  # the third upload's earlier match is the second, itself a duplicate
        again = await ingest(cli_env, *args)
        assert again.exit_code == 0, again.stderr
        assert f"uploaded: duplicate of {first_id}: the same file was landed already" \
            in again.stdout
        assert "file accepted" not in again.stdout
    uploads = await (await client.get("/api/ingestion/uploads", headers=auth_headers)).json()
    by_id = {u["upload_id"]: u for u in uploads["uploads"]}
    first_objects = {k: v for k, v in by_id[first_id]["objects"].items()}
    for u in by_id.values():
        if u["upload_id"] != first_id:
            assert u["objects"] == dict(first_objects, duplicate_of=first_id)
    assert len(await landed(client)) == 2  # the valid and the error file, once
