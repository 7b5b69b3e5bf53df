"""The deployment an operator copies: gunicorn with its config file, the compose file."""
from __future__ import annotations

import json
import subprocess
import sys

import requests

from tests.ops_support import ROOT, answers, clean_env, stop, wait_for


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_gunicorn_with_the_config_file_logs_json_counts_across_processes_and_stops_fast(services, tmp_path):
    port = _free_port()
    env = clean_env(**{k: v for k, v in services.items() if k.startswith("AIMG_")})
    env.update(AIMG_DATA_DIR=str(services["data_dir"]), AIMG_BIND=f"127.0.0.1:{port}", AIMG_API_PROCESSES="2",
               AIMG_MIGRATE_ON_START="false", PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"))
    log = tmp_path / "gunicorn.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "wsgi:app"],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: answers(f"{base}/healthz"), 60, "gunicorn", proc, log)
        wait_for(lambda: log.read_text().count("Booting worker") >= 2, 30, "two processes", proc, log)
        ids = []
        for _ in range(20):
            answer = requests.get(f"{base}/generateStrongPassword", timeout=5)
            assert answer.status_code == 200
            ids.append(answer.headers["X-Request-ID"])
        text = requests.get(f"{base}/metrics", timeout=5).text
        counted = sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                      if line.startswith("aimg_http_requests_total{") and '"/generateStrongPassword"' in line)
        assert counted == 20, text[:2000]
        took = stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    lines = log.read_text().splitlines()
    assert took < 3, f"gunicorn took {took:.1f} s to stop"
    parsed = [json.loads(line) for line in lines]  # every line is JSON, gunicorn's own included
    access = [p for p in parsed if p["logger"] == "gunicorn.access" and p.get("path") == "/generateStrongPassword"]
    assert sorted(p["requestId"] for p in access) == sorted(ids)
    assert any(p["logger"] == "gunicorn.error" and "Booting worker" in p["message"] for p in parsed)
    assert not any("psycopg" in p["logger"] or p["level"] in ("error", "critical") for p in parsed), lines


def _compose() -> dict:
    import yaml

    return yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())


def _names_read_by_gunicorn_config() -> set[str]:
    import re

    return set(re.findall(r'os\.environ\.get\("([A-Z_]+)"', (ROOT / "deploy" / "gunicorn.conf.py").read_text()))


def test_the_compose_file_is_complete_and_speaks_the_apps_variables():
    import re

    from aimg_app.cli import build_parser
    from aimg_app.config import env_names

    doc = _compose()
    services = doc["services"]
    assert {"mongodb", "redis", "postgres", "seaweedfs-master", "seaweedfs-volume", "api", "worker", "scheduler",
            "balancer"} <= set(services)
    assert "--replSet" in services["mongodb"]["command"]
    assert "replicaSet=" in services["api"]["environment"]["AIMG_MONGODB_URI"]
    for name, service in services.items():
        check = service.get("healthcheck") or {}
        assert check.get("test") and not check.get("disable"), f"{name} has no healthcheck"
    known = env_names() | _names_read_by_gunicorn_config()
    for name in ("api", "worker", "scheduler"):
        used = {key for key in services[name]["environment"] if key.startswith("AIMG_")}
        assert used <= known, f"{name} sets variables the app does not read: {sorted(used - known)}"
    # The processes it starts are commands that exist.
    commands = set(build_parser()._subparsers._group_actions[0].choices)
    for name in ("worker", "scheduler"):
        assert services[name]["command"][0] == "aimg" and services[name]["command"][1] in commands
    assert services["api"]["command"][:3] == ["gunicorn", "-c", "deploy/gunicorn.conf.py"]
    # Files it mounts exist; every ${VARIABLE} has a default, is required, or is in example.env.
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / "deploy" / source).exists(), source
    text = (ROOT / "deploy" / "compose.yaml").read_text()
    example = {line.split("=")[0] for line in (ROOT / "deploy" / "example.env").read_text().splitlines()
               if line and not line.startswith("#")}
    for variable, marker in re.findall(r"\$\{([A-Z_]+)(:[-?])?", text):
        assert marker or variable in example, f"${{{variable}}} has no default and is not in example.env"
    assert (ROOT / "deploy" / "Dockerfile").exists() and (ROOT / "docs" / "deployment.md").exists()
