"""A real nginx (Debian's package) in front of several servers, for the replica tests.

Started in the foreground (``nginx -c FILE -g 'daemon off;'``) with a generated config on
127.0.0.1 and killed at teardown like SeaweedFS. The config is the one deploy/nginx.conf ships,
less what only a container needs: uploads stream through (no request buffering), a refused
connection is retried on the next replica (that is how a draining replica is skipped), and
X-Forwarded-For carries the client's address.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from testkit.server_process import free_port, kill_group

CONFIG = """\
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
{upstream}
    server {{
        listen 127.0.0.1:{port};
{server}
    }}
}}
"""


def find_nginx() -> str:
    found = shutil.which("nginx") or (Path("/usr/sbin/nginx").is_file() and "/usr/sbin/nginx")
    if not found:
        raise RuntimeError("nginx not found: `make test` installs it (apt-get install -y nginx)")
    return found


def proxy_blocks(servers: list[str]) -> tuple[str, str]:
    """The ``upstream`` block and the ``server`` block body shared with deploy/nginx.conf."""
    upstream = "    upstream ingest {\n" + "".join(
        f"        server {s} max_fails=0;\n" for s in servers) + "    }\n"
    repo = Path(__file__).resolve().parent.parent
    server = (repo / "deploy" / "nginx-proxy.conf").read_text(encoding="utf-8")
    return upstream, "".join(f"        {line}\n" for line in server.splitlines())


class Nginx:
    def __init__(self, workdir: Path, servers: list[str]) -> None:
        self.dir = workdir
        self.port = free_port()
        self.servers = servers
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 10.0) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        upstream, server = proxy_blocks(self.servers)
        conf = self.dir / "nginx.conf"
        conf.write_text(CONFIG.format(dir=self.dir, port=self.port, upstream=upstream,
                                      server=server), encoding="utf-8")
        # As root nginx runs its worker as "nobody": keep its files inside a folder it can use.
        self.dir.chmod(0o777)
        log = open(self.dir / "stderr.log", "ab")
        self.process = subprocess.Popen([find_nginx(), "-c", str(conf), "-p", str(self.dir),
                                         "-g", "daemon off;"], stdout=log, stderr=log,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("nginx exited: " + (self.dir / "stderr.log").read_text()
                                   + (self.dir / "error.log").read_text(errors="replace"))
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1):
                    return
            except urllib.error.HTTPError:
                return  # nginx answers (a replica may not be up yet)
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.05)
        raise RuntimeError("nginx did not answer in time")

    def stop(self) -> None:
        kill_group(self.process)
        self.process = None
