"""Configuration: ``config.toml`` → frozen dataclasses, validated at start-up.

Every key may be overridden by an environment variable ``INGEST_<SECTION>_<KEY>`` (for example
``INGEST_SERVER_PORT=9000``); ``INGEST_AUTH_CLIENTS`` takes the client list as JSON. An unknown key
or a bad value raises :class:`ConfigError` naming the key, so a typo never passes silently.
"""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import json
import logging
import os
import tomllib
import typing
import zoneinfo
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from .errors import ConfigError
from .hosts import public_url_problem

log = logging.getLogger("ingest_server.config")
ENV_PREFIX = "INGEST_"
# "rawdata": getRawData's links to every client's national uploads (the one grant across clients)
SCOPES = frozenset({"ingest", "spec", "read", "admin", "rawdata"})


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    plugins_dir: str = "plugins"
    state_dir: str = "data"
    log_level: str = "INFO"
    shutdown_timeout_s: float = 30.0
    # Load balancers whose X-Forwarded-For is believed (addresses or CIDRs): the client address
    # for failed-login limits is then the last one they forwarded, not the balancer's own.
    trusted_proxies: tuple[str, ...] = ()
    # The address clients reach this service at (e.g. "https://ingest.example.org"), for the
    # links it hands out (getRawData on local storage). Empty: from a validated Host header.
    public_url: str = ""
    # Connections (web/connections.py): a request's headers must be complete this long after the
    # connection opened or its previous answer (slowloris; also closes idle keep-alive ones).
    header_timeout_s: float = 20.0
    max_connections: int = 1000  # per process; past it a new connection gets 503 and is closed
    accept_error_log_interval_s: float = 60.0  # accept failures (EMFILE...) logged once per this


@dataclass(frozen=True)
class DatabaseConfig:
    dsn: str = ""
    data_dir: str = "data/pg"
    pool_min: int = 1
    pool_max: int = 10
    connect_timeout_s: float = 10.0
    startup_wait_s: float = 30.0


@dataclass(frozen=True)
class StorageConfig:
    backend: str = "local"
    root: str = "data/storage"
    bucket: str = "ingest"
    prefix: str = ""
    endpoint_url: str = ""
    region: str = "us-east-1"
    access_key_id: str = ""
    secret_access_key: str = ""
    layout: str = "native"
    timezone: str = "UTC"


@dataclass(frozen=True)
class ClientConfig:
    id: str
    secret_sha256: str
    scopes: tuple[str, ...] = ("ingest", "spec", "read")
    disabled: bool = False


@dataclass(frozen=True)
class AuthConfig:
    open_token_endpoint: bool = False
    # Spec writes (and the validate debugger) without a token, as cQube's spec service has none.
    open_spec_api: bool = False
    jwt_secret: str = ""
    token_ttl_s: int = 3600
    algorithm: str = "HS256"
    private_key_file: str = ""
    public_key_file: str = ""
    issuer: str = "ingest-server"
    audience: str = "ingest-server"
    leeway_s: int = 5
    # Basic-credential brute force (login_limits.py): this many failures per (client id,
    # address) pair within the window and the token endpoint answers that pair 429 until the
    # oldest leaves it (0 = every limit below off too).
    max_failed_attempts: int = 10
    failed_attempts_window_s: int = 300
    # Failures from one address whatever the client id, then 429 for the address (0 = off).
    max_failed_attempts_per_address: int = 50
    # Failures for one client id from all addresses, then each Basic attempt for it waits
    # slow_down_s first, right or wrong: slowed, never locked out (0 = off).
    slow_down_after_failures: int = 50
    slow_down_s: float = 2.0
    clients: tuple[ClientConfig, ...] = ()


@dataclass(frozen=True)
class LimitsConfig:
    max_upload_bytes: int = 2 * 1024**3
    zip_max_entries: int = 100
    zip_max_uncompressed_bytes: int = 4 * 1024**3
    zip_max_ratio: float = 100.0
    zip_non_csv: str = "skip"
    max_line_bytes: int = 4 * 1024**2
    pattern_chunk_timeout_s: float = 10.0  # a chunk checked against regex/pattern rules: 400 past it
    errors_sample: int = 20
    body_idle_timeout_s: float = 60.0  # the longest wait for more of any request body: 408 past it
    max_json_bytes: int = 16 * 1024**2  # JSON-row bodies (POST /api/ingestion/event|dimension|dataset)
    max_workbook_cells: int = 1_500_000  # .xls/.xlsb/.ods sheets are decoded whole: ~80 B/cell peak (docs/files.md)


@dataclass(frozen=True)
class IngestConfig:
    workers: int = 0
    parallel_min_bytes: int = 4 * 1024**2
    chunk_bytes: int = 256 * 1024
    idempotency_window_s: int = 86400
    stale_upload_s: int = 120
    resumable_expire_s: int = 86400


@dataclass(frozen=True)
class QuotasConfig:
    """What one client may hold at once (0 = no limit), so that one client cannot fill the disk
    or the database for everyone (docs/quotas.md)."""

    resumable_open_per_client: int = 20       # tus uploads not yet complete, then 429
    resumable_bytes_per_client: int = 16 * 1024**3  # Upload-Length summed over those, then 413
    spec_versions_per_day: int = 50           # new versions of one spec by one client in 24 h, then 429


@dataclass(frozen=True)
class CompatConfig:
    profile: str = "native"  # "cqube": cQube's status codes and bodies on its routes (CQUBE.md §1)


@dataclass(frozen=True)
class ProcessingConfig:
    """cQube's processing done here (DESIGN.md §12); off unless ``enabled``."""

    enabled: bool = False
    dsn: str = ""  # "" = the service's own database
    key_match: str = "exact"  # exact | trim | casefold: how event keys meet dimension keys
    unknown_keys: str = "reject"  # reject | keep: an event whose dimension has no rows loaded
    repeat: str = "merge"  # merge | replace: an upload's contribution to the datasets
    week: str = "cqube"  # cqube | iso: week numbers in the weekly datasets
    metric: str = "number"  # number | parseint (cQube truncates metrics with parseInt)
    # How long an upload's answer waits for its datasets step; then it answers "pending" and
    # the step goes on in the background.
    answer_wait_s: float = 30.0


@dataclass(frozen=True)
class Settings:
    server: ServerConfig = field(default_factory=ServerConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    auth: AuthConfig = field(default_factory=AuthConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    compat: CompatConfig = field(default_factory=CompatConfig)
    processing: ProcessingConfig = field(default_factory=ProcessingConfig)
    quotas: QuotasConfig = field(default_factory=QuotasConfig)
    base_dir: str = "."

    def path(self, value: str) -> Path:
        """Resolve a configured path relative to the config file's folder."""
        p = Path(value)
        return p if p.is_absolute() else Path(self.base_dir) / p


SECTIONS: dict[str, type] = {
    "server": ServerConfig,
    "database": DatabaseConfig,
    "storage": StorageConfig,
    "auth": AuthConfig,
    "limits": LimitsConfig,
    "ingest": IngestConfig,
    "compat": CompatConfig,
    "processing": ProcessingConfig,
    "quotas": QuotasConfig,
}


def load_settings(path: str | os.PathLike | None = None,
                  env: Mapping[str, str] | None = None,
                  overrides: Mapping[str, Mapping[str, Any]] | None = None) -> Settings:
    """Read ``path`` (optional), apply ``overrides`` then the environment, validate, return Settings."""
    env = os.environ if env is None else env
    raw: dict[str, Any] = {}
    base_dir = "."
    if path is not None:
        p = Path(path)
        try:
            raw = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {p}") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{p}: not valid TOML: {e}") from None
        base_dir = str(p.resolve().parent)
    for section, values in (overrides or {}).items():
        raw.setdefault(section, {}).update(values)
    _apply_env(raw, env)
    unknown = set(raw) - set(SECTIONS)
    if unknown:
        raise ConfigError(f"unknown config section(s): {', '.join(sorted(unknown))}")
    built = {name: _build_section(name, cls, raw.get(name, {})) for name, cls in SECTIONS.items()}
    settings = Settings(**built, base_dir=base_dir)
    _check(settings)
    return settings


def _apply_env(raw: dict[str, Any], env: Mapping[str, str]) -> None:
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX):].lower()
        section, _, key = rest.partition("_")
        if section not in SECTIONS:
            _unknown_section(name, section)
            continue
        if not key:
            raise ConfigError(f"environment variable {name} names no key")
        if section == "auth" and key == "clients":
            try:
                raw.setdefault(section, {})[key] = json.loads(value)
            except json.JSONDecodeError as e:
                raise ConfigError(f"{name}: not valid JSON: {e}") from None
        else:
            raw.setdefault(section, {})[key] = _EnvText(value)


# INGEST_* variables of the tools around the server (the CLI, tests, benchmarks, example plugins).
TOOL_VARIABLES = ("client", "cli", "config", "debug", "diff", "port", "screenshots", "test",
                  "timeout", "token", "url", "webhook")


def _unknown_section(name: str, section: str) -> None:
    """A typo in a section (``INGEST_SERVR_PORT``) would be ignored in silence: say so."""
    if section in TOOL_VARIABLES:
        return
    close = difflib.get_close_matches(section, SECTIONS, n=1)
    hint = f" (did you mean INGEST_{close[0].upper()}_...?)" if close else ""
    log.warning("environment variable %s is ignored: '%s' is no config section (sections: %s)%s",
                name, section, ", ".join(SECTIONS), hint)


class _EnvText(str):
    """A value from the environment: text that may be converted to the key's type."""


def _build_section(section: str, cls: type, values: Any) -> Any:
    if not isinstance(values, dict):
        raise ConfigError(f"[{section}] must be a table")
    known = _types(cls)
    unknown = set(values) - set(known)
    if unknown:
        raise ConfigError(f"unknown config key(s) in [{section}]: {', '.join(sorted(unknown))}")
    kwargs = {}
    for key, value in values.items():
        if section == "auth" and key == "clients":
            kwargs[key] = _build_clients(value)
        else:
            kwargs[key] = _convert(f"{section}.{key}", known[key], value)
    return cls(**kwargs)


def _build_clients(value: Any) -> tuple[ClientConfig, ...]:
    if not isinstance(value, list):
        raise ConfigError("auth.clients must be a list of tables")
    clients = []
    for i, item in enumerate(value):
        where = f"auth.clients[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{where} must be a table")
        known = _types(ClientConfig)
        unknown = set(item) - set(known)
        if unknown:
            raise ConfigError(f"unknown key(s) in {where}: {', '.join(sorted(unknown))}")
        for required in ("id", "secret_sha256"):
            if not item.get(required):
                raise ConfigError(f"{where}.{required} is required")
        kwargs = {k: _convert(f"{where}.{k}", known[k], v) for k, v in item.items()}
        clients.append(ClientConfig(**kwargs))
    ids = [c.id for c in clients]
    if len(ids) != len(set(ids)):
        raise ConfigError("auth.clients: duplicate client id")
    return tuple(clients)


def _types(cls: type) -> dict[str, Any]:
    """The fields of a config dataclass and their types (resolved, not their annotation text)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in fields(cls)}


def _convert(key: str, t: Any, value: Any) -> Any:
    from_env = isinstance(value, _EnvText)
    expected = getattr(t, "__name__", None) if isinstance(t, type) else str(t)
    try:
        if t is bool:
            if from_env:
                low = value.strip().lower()
                if low in ("1", "true", "yes", "on"):
                    return True
                if low in ("0", "false", "no", "off"):
                    return False
                raise ValueError
            if isinstance(value, bool):
                return value
            raise ValueError
        if t is int:
            if isinstance(value, bool):
                raise ValueError
            return int(value) if from_env else _exact(value, int)
        if t is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value) if from_env else float(_exact(value, (int, float)))
        if t is str:
            if from_env or isinstance(value, str):
                return str(value)
            raise ValueError
        if typing.get_origin(t) is tuple and typing.get_args(t)[:1] == (str,):
            if from_env:
                return tuple(s.strip() for s in value.split(",") if s.strip())
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return tuple(value)
            raise ValueError
    except (ValueError, TypeError):
        raise ConfigError(f"{key}: bad value {value!r} (expected {expected})") from None
    raise ConfigError(f"{key}: unsupported type {expected}")


def _exact(value: Any, types: Any) -> Any:
    if not isinstance(value, types):
        raise ValueError
    return value


def _is_time_zone(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _check(s: Settings) -> None:
    def need(cond: bool, key: str, why: str) -> None:
        if not cond:
            raise ConfigError(f"{key}: {why}")

    need(0 <= s.server.port <= 65535, "server.port", "must be 0..65535")
    need(s.server.workers >= 1, "server.workers", "must be >= 1")
    need(0 < s.server.header_timeout_s <= 3600, "server.header_timeout_s", "must be 0..3600 s")
    need(s.server.max_connections >= 1, "server.max_connections", "must be >= 1")
    need(s.server.accept_error_log_interval_s > 0, "server.accept_error_log_interval_s",
         "must be > 0")
    need(s.server.log_level.upper() in ("DEBUG", "INFO", "WARNING", "ERROR"), "server.log_level",
         "must be DEBUG, INFO, WARNING or ERROR")
    for proxy in s.server.trusted_proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            raise ConfigError(f"server.trusted_proxies: {proxy!r} is not an address or CIDR") from None
    _url_problem = public_url_problem(s.server.public_url)
    need(_url_problem is None, "server.public_url", _url_problem or "")
    need(s.database.pool_min >= 1, "database.pool_min", "must be >= 1")
    need(s.database.pool_max >= s.database.pool_min, "database.pool_max", "must be >= pool_min")
    need(s.storage.backend in ("local", "s3"), "storage.backend", "must be 'local' or 's3'")
    if s.storage.backend == "s3":
        need(bool(s.storage.bucket), "storage.bucket", "is required for the s3 backend")
    need(s.storage.layout in ("native", "cqube"), "storage.layout", "must be 'native' or 'cqube'")
    need(_is_time_zone(s.storage.timezone), "storage.timezone",
         "must be an IANA time zone name such as UTC or Asia/Kolkata")
    need(s.auth.algorithm in ("HS256", "HS384", "HS512", "RS256", "RS384", "RS512"), "auth.algorithm",
         "must be one of HS256/384/512 or RS256/384/512")
    if s.auth.algorithm.startswith("RS"):
        need(bool(s.auth.private_key_file), "auth.private_key_file", "is required for RS algorithms")
    elif s.auth.jwt_secret:
        need(len(s.auth.jwt_secret) >= 32, "auth.jwt_secret", "must be at least 32 characters")
    need(60 <= s.auth.token_ttl_s <= 7 * 86400, "auth.token_ttl_s", "must be 60..604800 seconds")
    need(s.auth.max_failed_attempts >= 0, "auth.max_failed_attempts", "must be >= 0 (0 = no limit)")
    need(1 <= s.auth.failed_attempts_window_s <= 86400, "auth.failed_attempts_window_s",
         "must be 1..86400 seconds")
    need(s.auth.max_failed_attempts_per_address >= 0, "auth.max_failed_attempts_per_address",
         "must be >= 0 (0 = no limit)")
    need(s.auth.slow_down_after_failures >= 0, "auth.slow_down_after_failures",
         "must be >= 0 (0 = no slow-down)")
    need(0 <= s.auth.slow_down_s <= 30, "auth.slow_down_s", "must be 0..30 seconds")
    for i, c in enumerate(s.auth.clients):
        need(len(c.secret_sha256) == 64 and all(ch in "0123456789abcdef" for ch in c.secret_sha256),
             f"auth.clients[{i}].secret_sha256", "must be 64 lowercase hex characters")
        bad = set(c.scopes) - SCOPES
        need(not bad, f"auth.clients[{i}].scopes", f"unknown scope(s) {sorted(bad)}")
    need(s.limits.max_upload_bytes > 0, "limits.max_upload_bytes", "must be > 0")
    need(s.limits.zip_max_entries > 0, "limits.zip_max_entries", "must be > 0")
    need(s.limits.zip_max_uncompressed_bytes > 0, "limits.zip_max_uncompressed_bytes", "must be > 0")
    need(s.limits.zip_max_ratio >= 1, "limits.zip_max_ratio", "must be >= 1")
    need(s.limits.zip_non_csv in ("skip", "reject"), "limits.zip_non_csv",
         'must be "skip" or "reject"')
    need(s.limits.max_line_bytes >= 1024, "limits.max_line_bytes", "must be >= 1024")
    need(0 <= s.limits.errors_sample <= 10000, "limits.errors_sample", "must be 0..10000")
    need(s.limits.body_idle_timeout_s > 0, "limits.body_idle_timeout_s", "must be > 0")
    need(s.limits.pattern_chunk_timeout_s > 0, "limits.pattern_chunk_timeout_s", "must be > 0")
    need(s.compat.profile in ("native", "cqube"), "compat.profile", 'must be "native" or "cqube"')
    need(s.limits.max_json_bytes >= 1024, "limits.max_json_bytes", "must be >= 1024")
    need(s.limits.max_workbook_cells >= 1, "limits.max_workbook_cells", "must be >= 1")
    for key in ("resumable_open_per_client", "resumable_bytes_per_client", "spec_versions_per_day"):
        need(getattr(s.quotas, key) >= 0, f"quotas.{key}", "must be >= 0 (0 = no limit)")
    need(s.ingest.workers >= 0, "ingest.workers", "must be >= 0 (0 = one per CPU)")
    need(s.ingest.chunk_bytes >= 4096, "ingest.chunk_bytes", "must be >= 4096")
    need(s.ingest.stale_upload_s >= 1, "ingest.stale_upload_s", "must be >= 1")
    # Staged bytes idle for a day are swept by recovery's generic staging cleanup.
    need(1 <= s.ingest.resumable_expire_s <= 86400, "ingest.resumable_expire_s",
         "must be from 1 to 86400 seconds")
    _check_processing(s.processing)


PROCESSING_CHOICES = {"key_match": ("exact", "trim", "casefold"),
                      "unknown_keys": ("reject", "keep"), "repeat": ("merge", "replace"),
                      "week": ("cqube", "iso"), "metric": ("number", "parseint")}


def _check_processing(p: ProcessingConfig) -> None:
    for key, choices in PROCESSING_CHOICES.items():
        if getattr(p, key) not in choices:
            raise ConfigError(f"processing.{key}: must be one of {', '.join(choices)}")
    if not p.answer_wait_s >= 0:
        raise ConfigError("processing.answer_wait_s: must be >= 0")


def replace(settings: Settings, **sections: Mapping[str, Any]) -> Settings:
    """A copy of ``settings`` with some keys changed, e.g. ``replace(s, server={"port": 0})``."""
    changes = {name: dataclasses.replace(getattr(settings, name), **values)
               for name, values in sections.items()}
    new = dataclasses.replace(settings, **changes)
    _check(new)
    return new
