"""Running the ``ingest`` command-line client in-process against the test app: the ``cli_env``
fixture (a config and a token), ``ingest()``, and the one-line failure check."""

from __future__ import annotations

import asyncio

import pytest
from click.testing import CliRunner, Result

from conftest import TEST_CLIENT
from ingest_server.cli.main import cli


HEADER = b"date,school_id,teachers_present,remarks,score\n"


CSV = HEADER + b"2024-01-01,S1,10,ok,1.5\n2024-01-01,S2,abc,bad number,\n2024-01-02,S3,3,,\n"


@pytest.fixture
def cli_env(client, tmp_path):
    """The CLI's environment: this server, the test client, no config file of the user's."""
    return {"INGEST_URL": str(client.make_url("/")), "INGEST_CLIENT_ID": TEST_CLIENT[0],
            "INGEST_CLIENT_SECRET": TEST_CLIENT[1], "INGEST_TOKEN": None,
            "INGEST_CLI_CONFIG": None, "XDG_CONFIG_HOME": str(tmp_path / "xdg")}


async def ingest(env: dict, *args: str) -> Result:
    """Run ``ingest ARGS`` off the event loop; stdout and stderr come back separately."""
    return await asyncio.to_thread(CliRunner().invoke, cli, list(args), env=env,
                                   catch_exceptions=False)


def one_line(result: Result) -> str:
    """The single stderr line of a failure, checked to be one line and no traceback."""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ingest: "), result.stderr
    return lines[0]


async def _bearer(env: dict) -> dict[str, str]:
    token = (await ingest(env, "token")).stdout.strip()
    return {"Authorization": f"Bearer {token}"}
