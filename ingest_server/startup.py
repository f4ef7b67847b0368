"""What the server says when it starts: the plugin check and one honest block of lines.

The block is printed once the database and storage answered and the socket is bound (the
server's own runner, ``web/drain.py:serve``, calls ``on_started`` after that), so "listening" is
never said too early. It names
what is really in use — the database (never its password), the storage backend and where, the
plugins, the profile and how tokens are given — and goes to stdout for people, with the same facts
as one JSON log line for log collectors.
"""

from __future__ import annotations

import logging
import os
from typing import Callable
from urllib.parse import parse_qs, urlsplit

from .version import __version__, schema_version
from .config import Settings
from .logs import log_event
from .plugins import loading
from .plugins.loading import Registry

log = logging.getLogger("ingest_server")


def plugins_dir(settings: Settings) -> str | None:
    """The configured plugins folder, or None when it does not exist (no plugins then)."""
    path = settings.path(settings.server.plugins_dir)
    return str(path) if path.is_dir() else None


def check_plugins(settings: Settings) -> Registry:
    """Load every plugin and merge their Cerberus extensions, as start-up does (PluginError)."""
    return loading.check_plugins(plugins_dir(settings))


def describe_database(settings: Settings) -> str:
    cfg = settings.database
    if not cfg.dsn:
        return f"embedded PostgreSQL (pgserver) in {settings.path(cfg.data_dir)}"
    parts = urlsplit(cfg.dsn)
    host = parts.hostname or parse_qs(parts.query).get("host", ["local socket"])[0]
    port = f":{parts.port}" if parts.port else ""
    user = f" as {parts.username}" if parts.username else ""
    return f"PostgreSQL at {host}{port}{parts.path or '/'}{user}"


def describe_storage(settings: Settings) -> str:
    cfg = settings.storage
    if cfg.backend == "s3":
        where = cfg.endpoint_url or f"AWS ({cfg.region})"
        return f"s3, bucket {cfg.bucket}{'/' + cfg.prefix if cfg.prefix else ''} at {where}"
    return f"local, root {settings.path(cfg.root)}"


def describe_plugins(registry: Registry) -> str:
    names = []
    for p in registry.describe():
        if p["source"] == "builtin":
            continue
        names.append(f"{p['name']} {p['version']}" if p["version"] else p["name"])
    types = ", ".join(sorted(registry.program_types))
    return f"{', '.join(names) or 'none'} (program types: {types})"


def describe_profile(settings: Settings) -> str:
    compat = getattr(settings, "compat", None)  # [compat] arrives with the cqube profile
    profile = getattr(compat, "profile", "native")
    layout = getattr(settings.storage, "layout", "native")
    return f"{profile} (storage layout {layout})"


def describe_auth(settings: Settings) -> str:
    cfg = settings.auth
    clients = sum(1 for c in cfg.clients if not c.disabled)
    known = f"{clients} client{'' if clients == 1 else 's'} configured"
    if cfg.open_token_endpoint:
        return f"OPEN token endpoint: anyone can get a token (development only); {known}"
    return f"client credentials (HTTP Basic) for tokens, {known}; {cfg.algorithm} tokens"


def summary(settings: Settings, registry: Registry) -> dict[str, str]:
    return {"database": describe_database(settings), "storage": describe_storage(settings),
            "plugins": describe_plugins(registry), "profile": describe_profile(settings),
            "auth": describe_auth(settings)}


def announcer(settings: Settings, registry: Registry, url: str,
              write: Callable[[str], None] | None = None) -> Callable[[str], None]:
    """The ``on_started`` callback of ``web.drain.serve``: the start-up block, then "listening"."""

    def announce(_aiohttp_banner: str) -> None:
        facts = summary(settings, registry)
        lines = [f"ingest-server {__version__}, schema {schema_version()} (pid {os.getpid()})"]
        lines += [f"  {key + ':':<9} {value}" for key, value in facts.items()]
        lines.append(f"ingest-server listening on {url}")
        (write or _stdout)("\n".join(lines))
        log_event(log, logging.INFO, "started", event="started", url=url, version=__version__,
                  schema_version=schema_version(), **facts)

    return announce


def _stdout(text: str) -> None:
    print(text, flush=True)

