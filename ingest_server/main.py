"""``ingest-server`` / ``python -m ingest_server``: run the service."""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import signal
import socket
import sys
from pathlib import Path

from .config import ConfigError, load_settings, replace
from .metrics_dir import shared_metrics_dir, worker_exited
from .version import __version__, schema_version


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="ingest-server", description=__doc__,
        epilog="ingest-server add-client NAME [--scopes ingest,spec,read]: print the config "
               "lines of a new client and its secret")
    p.add_argument("--config", default=os.environ.get("INGEST_CONFIG"),
                   help="config file (default: ./config.toml if present, else built-in defaults)")
    p.add_argument("--host", help="override server.host")
    p.add_argument("--port", type=int, help="override server.port")
    p.add_argument("--workers", type=int, help="override server.workers (processes sharing the port)")
    p.add_argument("--check", action="store_true", help="validate the configuration and exit")
    p.add_argument("--version", action="version",
                   version=f"ingest-server {__version__} (schema {schema_version()})")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["add-client"]:
        from .newclient import main as add_client

        return add_client(argv[1:])
    args = parse_args(argv)
    path = args.config or ("config.toml" if Path("config.toml").is_file() else None)
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port),
                                   ("workers", args.workers)) if v is not None}
    try:
        settings = load_settings(path)
        if overrides:
            settings = replace(settings, server=overrides)
    except ConfigError as e:
        print(f"ingest-server: configuration error: {e}", file=sys.stderr)
        return 2
    configure_logging(settings.server.log_level)
    if args.check:
        return check(settings)
    if settings.server.workers == 1:
        return serve(settings)
    return serve_many(settings)


def check(settings) -> int:
    """``--check``: the configuration and every plugin load as start-up would load them."""
    from .plugins.loading import PluginError
    from .startup import check_plugins, describe_plugins

    try:
        registry = check_plugins(settings)
    except PluginError as e:
        print(f"ingest-server: plugin error: {e}", file=sys.stderr)
        return 2
    print(f"configuration OK; plugins: {describe_plugins(registry)}")
    return 0


def configure_logging(level: str) -> None:
    """JSON lines on stderr at ``server.log_level`` (see ``ingest_server.logs``)."""
    from .logs import configure_logging as configure_json

    configure_json(level)


def serve(settings, sock: socket.socket | None = None) -> int:
    from .stores.db import SchemaTooNew
    from .errors import IngestError
    from .plugins.loading import PluginError
    from .startup import announcer
    from .web.app import create_app
    from .web.drain import serve as serve_until_signal
    from .web.appkeys import REGISTRY

    configure_logging(settings.server.log_level)  # again: --workers children are spawned fresh
    try:
        app = create_app(settings)
    except (ConfigError, PluginError) as e:
        print(f"ingest-server: cannot start: {e}", file=sys.stderr)
        return 2
    # The start-up block and "listening" come once the database and storage answered and the
    # socket is bound.
    port = sock.getsockname()[1] if sock is not None else settings.server.port
    announce = announcer(settings, app[REGISTRY], f"http://{settings.server.host}:{port}")
    try:
        asyncio.run(serve_until_signal(app, grace_s=settings.server.shutdown_timeout_s,
                                       host=settings.server.host, port=settings.server.port,
                                       sock=sock, on_started=announce))
    except IngestError as e:  # a dependency never came up (database.startup_wait_s, storage)
        print(f"ingest-server: cannot start: {e.code}: {e.message}", file=sys.stderr)
        return 1
    except SchemaTooNew as e:  # a downgrade: one line, nothing written (docs/upgrading.md)
        print(f"ingest-server: cannot start: {e}", file=sys.stderr)
        return 1
    return 0


def serve_many(settings) -> int:
    """N processes accepting on one listening socket (bound once here, inherited by each)."""
    sock = socket.create_server((settings.server.host, settings.server.port), reuse_port=True)
    sock.set_inheritable(True)
    print(f"ingest-server starting {settings.server.workers} workers on "
          f"http://{settings.server.host}:{sock.getsockname()[1]}", flush=True)
    with shared_metrics_dir() as metrics_dir:  # one coherent /metrics over the workers
        return _run_workers(settings, sock, metrics_dir)


def _run_workers(settings, sock: socket.socket, metrics_dir: Path) -> int:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=serve, args=(settings, sock), daemon=False)
             for _ in range(settings.server.workers)]

    def forward(signum: int, _frame: object) -> None:
        # A SIGTERM to this parent alone (kill, a process manager) would otherwise end it and
        # orphan the servers; they shut down gracefully on their own SIGTERM, joined below.
        for p in procs:
            if p.pid is not None and p.exitcode is None:
                os.kill(p.pid, signum)

    signal.signal(signal.SIGTERM, forward)
    for p in procs:
        p.start()
    sock.close()  # the workers hold it now; once they close theirs, new connections are refused
    code = 0
    try:
        for p in procs:
            p.join()
            worker_exited(metrics_dir, p.pid)
            code = code or (p.exitcode or 0)
    except KeyboardInterrupt:
        for p in procs:
            p.terminate()
        for p in procs:
            p.join()
    return code

if __name__ == "__main__":
    sys.exit(main())
