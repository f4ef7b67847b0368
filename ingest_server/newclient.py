"""``ingest-server add-client NAME``: a new client's config lines and its secret.

The server stores only the SHA-256 of a client secret (``auth.clients[].secret_sha256``), so a
new client needs a random secret and its hash. This prints the ``[[auth.clients]]`` block on
stdout (so ``>> config.toml`` appends it) and the secret once on stderr: it is stored nowhere,
and the operator hands it to the client.
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import sys
from typing import TextIO

from .auth import hash_secret

SCOPES = ("ingest", "spec", "read", "rawdata")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="ingest-server add-client",
        description="Print the config lines of a new client (stdout) and its secret (stderr).")
    p.add_argument("name", help="the client id, e.g. state-etl")
    p.add_argument("--scopes", default="ingest,read",
                   help=f"comma-separated scopes among {', '.join(SCOPES)} (default: ingest,read)")
    p.add_argument("--env", action="store_true",
                   help="print an INGEST_AUTH_CLIENTS=... line instead of TOML")
    return p.parse_args(argv)


def client_block(name: str, secret: str, scopes: list[str]) -> str:
    """The ``[[auth.clients]]`` TOML block of one client."""
    return ("[[auth.clients]]\n"
            f"id = {json.dumps(name)}\n"
            f'secret_sha256 = "{hash_secret(secret)}"\n'
            f"scopes = [{', '.join(json.dumps(s) for s in scopes)}]\n")


def main(argv: list[str], out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    args = parse_args(argv)
    if not NAME.match(args.name):
        print("ingest-server add-client: the name must be 1-64 letters, digits, '.', '_' or '-'",
              file=err)
        return 2
    scopes = [s.strip() for s in args.scopes.split(",") if s.strip()]
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown or not scopes:
        print(f"ingest-server add-client: unknown scope(s) {', '.join(unknown) or '(none)'}; "
              f"choose among {', '.join(SCOPES)}", file=err)
        return 2
    secret = secrets.token_urlsafe(32)
    if args.env:
        entry = {"id": args.name, "secret_sha256": hash_secret(secret), "scopes": scopes}
        out.write(f"INGEST_AUTH_CLIENTS='{json.dumps([entry])}'\n")
    else:
        out.write(client_block(args.name, secret, scopes))
    out.flush()
    print(f"# the secret of client {args.name} (shown once, stored nowhere: give it to the "
          f"client now):\n{secret}", file=err)
    return 0
