"""An earlier release's code, to build the state it leaves and to run it beside this one.

Each release is recorded here by the commit it was cut from (CHANGELOG.md names the same). Its
``ingest_server`` package is taken out of git (``git archive``, no worktree to clean up) into a
folder that goes first on ``PYTHONPATH``: the earlier releases run on the same dependencies as
this one, so the current virtualenv serves both and nothing is installed.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RELEASES = {  # release -> the commit of main it was cut from
    "0.1.0": "ea16bf1b852d27b6b441b46f3ca0535ecea76049",
    "0.2.0": "7221fcaa3a1bfb66227e74c3ab2e0bab8eb54c8e",
}
PREVIOUS = "0.2.0"  # the release this one upgrades from


def checkout(release: str, dest: Path) -> Path:
    """The package of ``release`` under ``dest`` (returned: the folder to put on PYTHONPATH)."""
    commit = RELEASES[release]
    try:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", commit,
                                  "ingest_server"], check=True, capture_output=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        detail = getattr(e, "stderr", b"") or b""
        raise RuntimeError(f"release {release} ({commit[:7]}) is not in this clone's history "
                           f"(a shallow clone?): {detail.decode(errors='replace')}") from e
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    return dest
