"""``ingest-server add-client``: the config lines (TOML or the environment variable) and the
secret, and the server accepting them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from ingest_server.auth import hash_secret
from ingest_server.config import load_settings
from ingest_server.newclient import main as add_client


ROOT = Path(__file__).resolve().parents[1]


def test_add_client_prints_config_lines_and_the_secret(tmp_path, capsys):
    assert add_client(["state-etl", "--scopes", "ingest,spec,read"]) == 0
    out, err = capsys.readouterr()
    secret = err.strip().splitlines()[-1]
    assert len(secret) >= 40 and secret not in out
    config = tmp_path / "config.toml"
    config.write_text((ROOT / "config.toml").read_text(encoding="utf-8") + out, encoding="utf-8")
    settings = load_settings(str(config), env={})
    [c] = settings.auth.clients
    assert (c.id, c.scopes, c.secret_sha256) == ("state-etl", ("ingest", "spec", "read"),
                                                 hash_secret(secret))
    assert add_client(["state-etl", "--env"]) == 0
    out, err = capsys.readouterr()
    [entry] = json.loads(re.fullmatch(r"INGEST_AUTH_CLIENTS='(.*)'\n", out).group(1))
    assert entry["secret_sha256"] == hash_secret(err.strip().splitlines()[-1])
    assert entry["scopes"] == ["ingest", "read"]  # the default
    assert add_client(["state-etl", "--scopes", "admin"]) == 2
    assert add_client(["../etc", "--scopes", "read"]) == 2
    _, err = capsys.readouterr()
    assert len(err.strip().splitlines()) == 2


def test_add_client_from_the_command_line():
    done = subprocess.run([sys.executable, "-m", "ingest_server", "add-client", "etl"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("[[auth.clients]]\nid = \"etl\"\n")


def test_env_clients_line_is_accepted_by_the_server_config(tmp_path):
    out = tmp_path / "out"
    with out.open("w") as f, open(os.devnull, "w") as err:
        assert add_client(["etl", "--env"], out=f, err=err) == 0
    value = out.read_text().strip().split("=", 1)[1].strip("'")
    settings = load_settings(None, env={"INGEST_AUTH_CLIENTS": value})
    assert [c.id for c in settings.auth.clients] == ["etl"]
