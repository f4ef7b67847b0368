"""deploy/: the compose file and the Kubernetes manifests, checked offline.

Docker and a cluster cannot run here, so: the manifests validate against the Kubernetes schemas
(``kubernetes-validate --strict``), every INGEST_* variable they set is a key the config loader
knows and its value passes the loader's checks, the probes, grace periods and selectors agree
with each other, the compose file parses and names only images built from our Dockerfile or
pinned published ones, and nginx accepts its config.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ingest_server.config import ENV_PREFIX, SECTIONS, load_settings

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
K8S = sorted((DEPLOY / "k8s").glob("*.yaml"))
# Published images the compose file may use, pinned by tag (never "latest").
KNOWN_IMAGES = {"postgres:16-alpine", "minio/minio:RELEASE.2024-12-18T13-15-44Z",
                "nginx:1.27-alpine"}


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]


def _k8s() -> dict[str, dict]:
    return {d["kind"]: d for p in K8S for d in _docs(p)}


def _check_ingest_env(env: dict[str, str]) -> None:
    """Every INGEST_* key names a real config key, and the values load."""
    ours = {k: v for k, v in env.items() if k.startswith(ENV_PREFIX)}
    for key in ours:
        section = key[len(ENV_PREFIX):].lower().partition("_")[0]
        assert section in SECTIONS, f"{key}: no config section '{section}'"
    load_settings(None, env=ours)  # raises ConfigError naming any unknown key or bad value


def test_manifests_validate_against_the_kubernetes_schemas():
    tool = Path(sys.executable).parent / "kubernetes-validate"
    command = [str(tool) if tool.exists() else "kubernetes-validate", "--strict",
               *map(str, K8S)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert {"Deployment", "Service", "ConfigMap", "Secret", "PodDisruptionBudget"} <= set(_k8s())


def test_deployment_probes_grace_and_resources():
    k = _k8s()
    pod = k["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    grace = float(k["ConfigMap"]["data"]["INGEST_SERVER_SHUTDOWN_TIMEOUT_S"])
    pause = float(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod["terminationGracePeriodSeconds"] > grace + pause
    requests = container["resources"]["requests"]
    assert requests["memory"].endswith("Mi") and int(requests["memory"][:-2]) >= 150
    assert "cpu" in requests
    assert {m["mountPath"] for m in container["volumeMounts"]} >= {"/app/data"}
    labels = k["Deployment"]["spec"]["template"]["metadata"]["labels"]
    for kind in ("Service", "PodDisruptionBudget"):
        spec = k[kind]["spec"]
        selector = spec["selector"].get("matchLabels", spec["selector"])
        assert selector.items() <= labels.items(), kind
    assert k["PodDisruptionBudget"]["spec"]["minAvailable"] < k["Deployment"]["spec"]["replicas"]


def test_manifest_settings_are_config_keys():
    k = _k8s()
    _check_ingest_env(dict(k["ConfigMap"]["data"], **k["Secret"]["stringData"]))


def _example_env() -> dict[str, str]:
    env = {}
    for line in (DEPLOY / ".env.example").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    return env


def _interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error}; a required one must be in .env.example."""
    def one(m: re.Match) -> str:
        name, op, arg = m.group(1), m.group(2), m.group(3)
        if op == ":?":
            assert env.get(name), f"${{{name}}} is required but not in deploy/.env.example"
        return env.get(name) or (arg if op == ":-" else "")
    return re.sub(r"\$\{(\w+)(?:(:[-?])([^}]*))?\}", one, value)


def test_compose_file_names_real_images_env_keys_and_files():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    assert {"postgres", "s3", "ingest", "lb"} <= set(services)
    for name, svc in services.items():
        if "build" in svc:
            context = (DEPLOY / svc["build"]["context"]).resolve()
            assert (context / svc["build"].get("dockerfile", "Dockerfile")).is_file(), name
        else:
            assert svc["image"] in KNOWN_IMAGES, f"{name}: {svc['image']} is not a known image"
        for dep in svc.get("depends_on", {}):
            assert dep in services, f"{name} depends on unknown {dep}"
        assert "healthcheck" in svc, f"{name} has no health check"
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).is_file(), f"{name}: {source} is missing"
            else:
                assert source in compose["volumes"], f"{name}: volume {source} not declared"
    env = _example_env()
    ingest = services["ingest"]
    _check_ingest_env({k: _interpolate(str(v), env) for k, v in ingest["environment"].items()})
    assert ingest["deploy"]["replicas"] >= 2
    assert "/readyz" in " ".join(ingest["healthcheck"]["test"])
    grace = float(ingest["environment"]["INGEST_SERVER_SHUTDOWN_TIMEOUT_S"])
    assert float(ingest["stop_grace_period"].rstrip("s")) > grace
    # no secret is written in the file itself: every one comes from the environment
    for key, value in ingest["environment"].items():
        if re.search(r"SECRET|PASSWORD|CLIENTS|DSN", key):
            assert "${" in str(value), key


def test_nginx_accepts_the_load_balancer_config(tmp_path):
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        pytest.fail("nginx not found: `make test` installs it (apt-get install -y nginx)")
    conf = (DEPLOY / "nginx.conf").read_text(encoding="utf-8")
    conf = (conf.replace("/etc/nginx/ingest-proxy.conf", str(DEPLOY / "nginx-proxy.conf"))
            .replace("ingest:8080", "127.0.0.1:9")  # compose's DNS name is not resolvable here
            .replace("listen 8080", "listen 127.0.0.1:9"))
    (tmp_path / "nginx.conf").write_text(conf, encoding="utf-8")
    done = subprocess.run([nginx, "-t", "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path),
                           "-g", f"pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log;"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
