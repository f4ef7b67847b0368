"""``ingest upload --resumable`` against a live server: Ctrl-C part-way, the same command again
continues from the server's offset (one upload URL, progress starting there), and the file lands
as a one-shot upload would."""

from __future__ import annotations

import json

import pytest

from ingest_helpers import SPEC, landed, register
from ingest_server.cli import main as cli_main
from ingest_server.cli import resumable as cli_resumable
from resumable_helpers import sample_csv, sql
from cli_helpers import _bearer, cli_env, ingest  # noqa: F401 - cli_env is a fixture

CHUNK = 16 * 1024


@pytest.fixture
def cache_env(cli_env, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setattr(cli_resumable, "CHUNK_BYTES", CHUNK)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return dict(cli_env, XDG_CACHE_HOME=str(tmp_path / "cache"))


async def test_ctrl_c_then_the_same_command_resumes(client, cache_env, tmp_path, monkeypatch,
                                                    clean_db):
    await sql(clean_db, "TRUNCATE resumable_uploads")
    await register(client, await _bearer(cache_env), spec=SPEC)
    path = tmp_path / "teacherspresent.csv"
    data = sample_csv(20_000)
    path.write_bytes(data)
    args = ("upload", str(path), "--program", "school-attendance", "--resumable")
    real_patch, calls = cli_resumable.ResumableUpload._patch, []

    def interrupted(self, url, offset, chunk):
        calls.append(offset)
        if len(calls) == 4:
            raise KeyboardInterrupt  # Ctrl-C while the fourth PATCH is being sent
        return real_patch(self, url, offset, chunk)

    monkeypatch.setattr(cli_resumable.ResumableUpload, "_patch", interrupted)
    first = await ingest(cache_env, *args)
    assert first.exit_code != 0
    state = json.loads((tmp_path / "cache" / "ingest" / "resumable.json").read_text())
    assert len(state) == 1
    assert await landed(client) == []

    monkeypatch.setattr(cli_resumable.ResumableUpload, "_patch", real_patch)
    advanced = []
    real_reporter = cli_main.reporter_for

    def recording(*a, **kw):
        reporter = real_reporter(*a, **kw)
        real_advance = reporter.advance
        reporter.advance = lambda n: (advanced.append(n), real_advance(n))
        return reporter

    monkeypatch.setattr(cli_main, "reporter_for", recording)
    second = await ingest(cache_env, *args)
    assert second.exit_code == 0, second.stderr
    # The bar started at the server's offset (the 3 chunks sent before Ctrl-C), not at zero.
    assert advanced[0] == 3 * CHUNK and sum(advanced) == len(data)
    assert second.stderr.splitlines()[-1].startswith("ingest: upload teacherspresent.csv: 100%")
    assert "20000 total" in second.stdout and "uploaded" in second.stdout
    assert len(await sql(clean_db, "SELECT id FROM resumable_uploads")) == 1  # one URL, reused
    (row,) = await sql(clean_db, "SELECT upload_offset, length, status FROM resumable_uploads")
    assert (row["upload_offset"], row["status"]) == (len(data), "done")
    assert json.loads((tmp_path / "cache" / "ingest" / "resumable.json").read_text()) == {}
    assert len(await landed(client)) == 2


async def test_resumable_is_the_default_above_the_threshold(client, cache_env, tmp_path,
                                                            monkeypatch, clean_db):
    await sql(clean_db, "TRUNCATE resumable_uploads")
    await register(client, await _bearer(cache_env), spec=SPEC)
    monkeypatch.setattr("ingest_server.cli.main.THRESHOLD_BYTES", 1000)
    path = tmp_path / "teacherspresent.csv"
    path.write_bytes(sample_csv(100))
    result = await ingest(cache_env, "upload", str(path), "--program", "school-attendance",
                          "--json", "--no-progress")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "uploaded"
    assert len(await sql(clean_db, "SELECT id FROM resumable_uploads")) == 1


async def test_a_lost_answer_is_a_409_the_client_moves_on_from(client, cache_env, tmp_path,
                                                               monkeypatch, clean_db):
    """The second PATCH lands but its answer is "lost" (sent again): the server says 409 with
    its offset and the client carries on from there."""
    await register(client, await _bearer(cache_env), spec=SPEC)
    path = tmp_path / "teacherspresent.csv"
    path.write_bytes(sample_csv(3000))
    real_patch, calls = cli_resumable.ResumableUpload._patch, []

    def answer_lost_once(self, url, offset, chunk):
        calls.append(offset)
        if len(calls) == 2:
            real_patch(self, url, offset, chunk)  # taken by the server, answer never read
        return real_patch(self, url, offset, chunk)

    monkeypatch.setattr(cli_resumable.ResumableUpload, "_patch", answer_lost_once)
    result = await ingest(cache_env, "upload", str(path), "--program", "school-attendance",
                          "--resumable", "--json", "--no-progress")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["total_rows"] == 3000
    assert calls[:3] == [0, CHUNK, 2 * CHUNK]  # after the 409, on from the server's offset
