"""The README and the manual's pages followed literally: their shell blocks and their Python client
run against a real server.

The server is ``python -m ingest_server`` as ``make serve`` runs it (open token endpoint, no
clients, the repository's plugins), with its own database and storage in tmp. The blocks between
``<!-- walkthrough: ... -->``-style markers (in README.md or a page of docs/) are run as written by
bash from the repository root; the only change is the port (``127.0.0.1:8080`` → the test server's).
"""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import re
import subprocess
import sys
import tomllib
import urllib.request
import zipfile
from pathlib import Path

import pytest

from testkit.accounts import fresh_database
from testkit.server_process import ServerProcess, free_port, write_config

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").rglob("*.md"))]
SAMPLES = ROOT / "samples"
# The bad lines of each sample (1-based physical lines; the header is line 1).
BAD_LINES = {"teacherspresent.csv": {3, 5}, "district.csv": {4, 5},
             "nas_program-started.csv": {4}}


def readme_section(marker: str) -> str:
    """The text between ``<!-- marker: ...`` and ``<!-- /marker -->``, in the one page that has it."""
    found = [p for p in PAGES if f"<!-- {marker}:" in p.read_text(encoding="utf-8")]
    assert len(found) == 1, (marker, found)
    text = found[0].read_text(encoding="utf-8")
    start = text.index(f"<!-- {marker}:")
    return text[start:text.index(f"<!-- /{marker} -->", start)]


def code_blocks(section: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```$", section, flags=re.S | re.M)


def run_bash(script: str, *, port: int, cwd: Path = ROOT, env: dict | None = None,
             timeout: float = 120) -> subprocess.CompletedProcess[str]:
    script = script.replace("127.0.0.1:8080", f"127.0.0.1:{port}")
    return subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, text=True,
                          capture_output=True, timeout=timeout, env=env or os.environ.copy())


def register_samples(url: str) -> None:
    """The sample specs, registered as the walkthrough's step 2 does."""
    request = urllib.request.Request(url + "/api/ingestion/generatejwt",
                                     headers={"Accept": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as resp:
        token = json.load(resp)["token"]
    for kind, spec in (("event", "programs/school-attendance/teacherspresent.json"),
                       ("event", "programs/nas/nas_program-started.json"),
                       ("dimension", "dimensions/district-dimension.json")):
        request = urllib.request.Request(
            f"{url}/api/spec/{kind}", data=(SAMPLES / "specs" / spec).read_bytes(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as resp:
            assert resp.status in (200, 201)


def objects_of(storage: Path, top: str, name: str) -> list[Path]:
    return sorted(p for p in (storage / top).rglob("*.csv") if p.name.startswith(name))


def expected_split(sample: str) -> tuple[list[list[str]], list[list[str]]]:
    """(valid rows with the header, rejected rows with their line) of a sample CSV."""
    rows = list(csv.reader(io.StringIO((SAMPLES / sample).read_text(encoding="utf-8"))))
    bad = BAD_LINES[sample]
    valid = [rows[0]] + [r for n, r in enumerate(rows[1:], start=2) if n not in bad]
    rejected = [r + [str(n)] for n, r in enumerate(rows[1:], start=2) if n in bad]
    return valid, rejected


def read_csv(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))


def assert_landed(valid_file: Path, error_file: Path, sample: str) -> None:
    """The valid object holds exactly the good rows; the error file the bad ones, cell by cell,
    each with its line and an _errors text naming a column."""
    valid, rejected = expected_split(sample)
    assert read_csv(valid_file) == valid
    errors = read_csv(error_file)
    assert errors[0] == valid[0] + ["_line", "_errors"]
    assert [r[:-1] for r in errors[1:]] == rejected
    assert all(any(col in r[-1] for col in valid[0]) for r in errors[1:])


@pytest.fixture
def readme_dsn(pg_dsn):
    with fresh_database(pg_dsn, "ingest_readme") as dsn:
        yield dsn


def make_serve_config(tmp_path: Path, dsn: str, **auth) -> Path:
    """What ``make serve`` runs: config.toml's defaults, the open token endpoint, no clients."""
    return write_config(tmp_path / "config.toml", {
        "server": {"plugins_dir": str(ROOT / "plugins"), "state_dir": str(tmp_path / "state"),
                   "shutdown_timeout_s": 2.0},
        "database": {"dsn": dsn, "pool_max": 4},
        "storage": {"backend": "local", "root": str(tmp_path / "storage")},
        "auth": {"open_token_endpoint": True, **auth},
        "ingest": {"workers": 1},
    })


@pytest.fixture
def serve(tmp_path, readme_dsn):
    port = free_port()
    server = ServerProcess(make_serve_config(tmp_path, readme_dsn), port, tmp_path / "server.log")
    server.start(timeout_s=60)
    try:
        yield server
    finally:
        server.kill()


def test_readme_uses_only_files_of_the_repository():
    """What a reader pastes or follows (code blocks, links) stays inside the repository."""
    text = "\n".join(p.read_text(encoding="utf-8") for p in PAGES)
    followed = "\n".join(re.findall(r"^```\w*\n(.*?)^```$", text, flags=re.S | re.M)
                         + re.findall(r"\]\(([^)]*)\)", text))
    assert "../" not in followed
    assert not re.search(r"(?<![\w:/.])/(work|tmp|home|root|Users)/", followed)
    paths = set(re.findall(r"samples/[\w./-]+\.(?:csv|zip|json)", text))
    assert len(paths) >= 6, paths
    missing = [p for p in sorted(paths) if not (ROOT / p).is_file()]
    assert missing == []


def test_samples_are_real_cqube_specs_and_the_zip_holds_the_csv():
    for spec in (SAMPLES / "specs").rglob("*.json"):
        body = json.loads(spec.read_text(encoding="utf-8"))
        assert set(body) == {"program", "input"} and body["input"]["properties"], spec
    with zipfile.ZipFile(SAMPLES / "nas_program-started.zip") as z:
        assert z.namelist() == ["nas_program-started.csv"]
        assert z.read("nas_program-started.csv") == \
            (SAMPLES / "nas_program-started.csv").read_bytes()
    assert (SAMPLES / "nas_program-started.zip").stat().st_size < 4096


def test_walkthrough_runs_as_written(serve, tmp_path):
    script = "\n".join(code_blocks(readme_section("walkthrough"), "sh"))
    assert "TOKEN=$(curl -s http://127.0.0.1:8080/api/ingestion/generatejwt)" in script
    assert "<" + "upload_id>" not in script
    done = run_bash(script, port=serve.port)
    assert done.returncode == 0, done.stdout + done.stderr + serve.log()
    assert '"created": true' in done.stdout
    assert "_line,_errors" in done.stdout  # the rejected rows printed by step 4
    storage = tmp_path / "storage"
    assert_landed(*objects_of(storage, "process_input", "teacherspresent-event"),
                  *objects_of(storage, "ingestion_error", "teacherspresent"), "teacherspresent.csv")
    assert_landed(*objects_of(storage, "process_input", "district-dimension"),
                  *objects_of(storage, "ingestion_error", "district"), "district.csv")
    assert_landed(*objects_of(storage, "emission", "nas_program-started"),
                  *objects_of(storage, "emission-error", "nas_program-started"),
                  "nas_program-started.csv")
    # Nothing was written into the repository (the old walkthrough left tp.csv there).
    assert not any((ROOT / name).exists() for name in ("answer.json", "rejected.csv", "tp.csv"))


def test_readme_first_upload_runs_as_written(serve, tmp_path):
    """The README's quick start: a token, the spec, the upload; the answer as the README says."""
    script = "\n".join(code_blocks(readme_section("first-upload"), "sh"))
    assert "first-upload" in README.read_text(encoding="utf-8")
    done = run_bash(script, port=serve.port)
    assert done.returncode == 0, done.stdout + done.stderr + serve.log()
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert (answer["status"], answer["valid_rows"], answer["invalid_rows"]) == ("uploaded", 3, 2)
    assert [(e["line"], e["column"]) for e in answer["errors_sample"]] == [
        (3, "teachers_marked_present"), (5, "school_id")]
    storage = tmp_path / "storage"
    assert_landed(*objects_of(storage, "process_input", "teacherspresent-event"),
                  *objects_of(storage, "ingestion_error", "teacherspresent"), "teacherspresent.csv")


def test_resumable_block_runs_as_written(serve, tmp_path):
    """docs/api.md's tus session with curl, in the walkthrough's shell (steps 1 and 2 before it):
    a first PATCH of 100 bytes with its checksum, then the rest from the server's offset."""
    walkthrough = code_blocks(readme_section("walkthrough"), "sh")
    script = "\n".join([*walkthrough[:2], *code_blocks(readme_section("resumable"), "sh")])
    done = run_bash(script, port=serve.port)
    assert done.returncode == 0, done.stdout + done.stderr + serve.log()
    assert "204 offset 100" in done.stdout  # the first PATCH
    headers = done.stdout.lower()
    assert "http/1.1 204" in headers and "upload-status: uploaded" in headers
    upload_id = re.search(r"upload-id: (\S+)", headers).group(1)
    assert f"content-location: /api/ingestion/uploads/{upload_id}" in headers
    storage = tmp_path / "storage"
    assert_landed(*objects_of(storage, "process_input", "teacherspresent-event"),
                  *objects_of(storage, "ingestion_error", "teacherspresent"), "teacherspresent.csv")


def test_cli_block_runs_as_written(serve, tmp_path):
    script = "\n".join(code_blocks(readme_section("cli"), "sh"))
    activate = ROOT / ".venv" / "bin" / "activate"
    if not activate.is_file():  # a worktree sharing another venv: the same, by PATH
        script = script.replace("source .venv/bin/activate",
                                f"export PATH={Path(sys.executable).parent}:$PATH")
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "xdg"))  # no user config file
    for key in ("INGEST_CLIENT_ID", "INGEST_CLIENT_SECRET", "INGEST_TOKEN", "INGEST_URL"):
        env.pop(key, None)
    done = run_bash(script, port=serve.port, env=env)
    assert done.returncode == 0, done.stdout + done.stderr + serve.log()
    assert "event spec 'teacherspresent'" in done.stdout
    assert "dimension spec 'district'" in done.stdout
    assert re.search(r"status\s+uploaded: file accepted: 3 valid and 1 rejected rows of 4",
                     done.stdout)  # the national ZIP
    upload_id = re.search(r"upload (\d{14}-[0-9a-f]+)\s+status\s+uploaded: file accepted: 3 valid "
                          r"and 2 rejected", done.stdout).group(1)  # ingest status
    assert re.search(rf"status\s+uploaded: duplicate of {upload_id}: the same file was landed "
                     "already, nothing new was written", done.stdout)
    storage = tmp_path / "storage"
    assert_landed(*objects_of(storage, "process_input", "teacherspresent-event"),
                  *objects_of(storage, "ingestion_error", "teacherspresent"), "teacherspresent.csv")


def test_clients_walkthrough_runs_as_written(tmp_path, readme_dsn):
    blocks = code_blocks(readme_section("clients"), "sh")
    assert len(blocks) == 3 and "make serve CONFIG=local.toml" in blocks[1]
    # 1. add-client into a copy of config.toml, in a folder standing for the checkout.
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / "config.toml").write_bytes((ROOT / "config.toml").read_bytes())
    step1 = blocks[0].replace(".venv/bin/ingest-server", f"{sys.executable} -m ingest_server")
    done = run_bash(step1, port=8080, cwd=checkout)
    assert done.returncode == 0, done.stderr
    secret = done.stderr.strip().splitlines()[-1]
    local = tomllib.loads((checkout / "local.toml").read_text(encoding="utf-8"))
    assert [c["id"] for c in local["auth"]["clients"]] == ["state-etl"]
    assert local["auth"]["clients"][0]["scopes"] == ["ingest", "spec", "read"]
    assert secret not in (checkout / "local.toml").read_text(encoding="utf-8")
    # 2. A server with that client and the token endpoint closed.
    port = free_port()
    config = make_serve_config(tmp_path, readme_dsn, open_token_endpoint=False,
                               clients=local["auth"]["clients"])
    server = ServerProcess(config, port, tmp_path / "server.log")
    server.start(timeout_s=60)
    try:
        # 3. The token with the client's credentials.
        step3 = blocks[2].replace("paste the secret that add-client printed", secret)
        done = run_bash(step3, port=port)
        assert done.returncode == 0, done.stdout + done.stderr + server.log()
        assert '"specs"' in done.stdout
        wrong = run_bash(step3.replace(secret, "wrong"), port=port)
        assert '"specs"' not in wrong.stdout
    finally:
        server.kill()


def test_python_client_example_runs(serve):
    blocks = code_blocks(readme_section("python"), "python")
    assert len(blocks) == 1
    register_samples(serve.url)
    done = subprocess.run([sys.executable, "-c", blocks[0]], cwd=ROOT, text=True,
                          capture_output=True, timeout=120,
                          env=dict(os.environ, INGEST_URL=serve.url))
    assert done.returncode == 0, done.stdout + done.stderr + serve.log()
    lines = done.stdout.splitlines()
    assert re.fullmatch(r"\S+ uploaded 3 2", lines[0]), lines
    assert lines[1].startswith("line 3: teachers_marked_present: type_error")
    assert lines[2].startswith("line 5: school_id: ")
