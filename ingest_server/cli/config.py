"""Where the client finds the server and its credentials: flags, then environment, then a file.

Flags and environment variables are read by click (``envvar=``); this module fills what they left
unset from the TOML file and applies the defaults. The file is optional unless named explicitly:
a file that was asked for and is missing is an error, never silently skipped.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit

from .failures import CliError

DEFAULT_URL = "http://127.0.0.1:8080"
FILE_KEYS = ("url", "client_id", "client_secret")


@dataclass(frozen=True)
class CliConfig:
    url: str
    client_id: str | None = None
    client_secret: str | None = None
    token: str | None = None
    timeout_s: float = 300.0

    @property
    def has_credentials(self) -> bool:
        return self.client_id is not None


def default_config_path(env: Mapping[str, str] = os.environ) -> Path:
    """``$XDG_CONFIG_HOME/ingest/config.toml``, i.e. ``~/.config/ingest/config.toml`` by default."""
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "ingest" / "config.toml"


def read_config_file(path: Path, *, required: bool) -> dict[str, str]:
    """The file's keys; unknown keys and non-string values are errors naming the key."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        if required:
            raise CliError(f"config file {path} does not exist") from None
        return {}
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise CliError(f"cannot read config file {path}: {e}") from None
    for key, value in data.items():
        if key not in FILE_KEYS:
            raise CliError(f"config file {path}: unknown key '{key}' "
                           f"(expected {', '.join(FILE_KEYS)})")
        if not isinstance(value, str):
            raise CliError(f"config file {path}: '{key}' must be a string")
    return data


def resolve_config(*, url: str | None, client_id: str | None, client_secret: str | None,
                   token: str | None, config_path: Path | None, timeout_s: float = 300.0,
                   env: Mapping[str, str] = os.environ) -> CliConfig:
    """Combine what click read (flags, environment) with the config file and the defaults."""
    path = config_path if config_path is not None else default_config_path(env)
    file = read_config_file(path, required=config_path is not None)
    url = (url or file.get("url") or DEFAULT_URL).rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CliError(f"invalid server URL '{url}' (expected http://host:port or https://...)")
    if parts.path == "/api" or parts.path.endswith("/api") or "/api/" in parts.path:
        base = url[:url.index("/api")]
        raise CliError(f"wrong URL '{url}': give the server's base URL, without /api "
                       f"(e.g. --url {base})")
    client_id = client_id or file.get("client_id")
    client_secret = client_secret or file.get("client_secret")
    if (client_id is None) != (client_secret is None):
        missing = "client secret" if client_secret is None else "client id"
        raise CliError(f"the {missing} is missing: give both --client-id and --client-secret "
                       "(or INGEST_CLIENT_ID and INGEST_CLIENT_SECRET, or the config file)")
    if timeout_s <= 0:
        raise CliError("--timeout must be a positive number of seconds")
    return CliConfig(url=url, client_id=client_id, client_secret=client_secret,
                     token=token or None, timeout_s=timeout_s)
