"""The ``aimg`` command: OpenAPI document, docs UI, and ``serve`` on embedded services."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import requests

TECHNICAL = {
    ("post", "/ingestLogs"), ("get", "/getAffiliateAd"), ("post", "/uploadFile"), ("get", "/getFile"),
    ("get", "/getFileMetadata"), ("delete", "/removeFile"), ("post", "/pgQuery"), ("get", "/generateStrongPassword"),
}


METHODS = {"get", "post", "put", "patch", "delete"}


def operations(doc: dict) -> set[tuple[str, str]]:
    return {(method, path) for path, item in doc["paths"].items() for method in item if method in METHODS}


def test_aimg_openapi_prints_the_document():
    out = subprocess.run([sys.executable, "-m", "aimg_app", "openapi"], capture_output=True, text=True, check=True,
                         timeout=60, env={k: v for k, v in os.environ.items() if not k.startswith("AIMG_")}).stdout
    doc = json.loads(out)
    assert doc["openapi"].startswith("3.")
    assert TECHNICAL <= operations(doc)
    # validation errors are documented as 400, never 422
    assert not any("422" in op.get("responses", {}) for item in doc["paths"].values()
                   for method, op in item.items() if method in METHODS)


def test_openapi_json_and_docs_are_served(client):
    doc = client.get("/openapi.json").get_json()
    assert TECHNICAL <= operations(doc)
    docs = client.get("/docs")
    assert docs.status_code == 200 and b"swagger" in docs.data.lower()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sign_up_generate_and_fetch(api: str) -> None:
    """The README's first-run recipe: sign up, generate, fetch the image."""
    import uuid

    headers = {"X-Session-ID": str(uuid.uuid4())}
    created = requests.post(f"{api}/createUser", json={"email": "first@example.com", "password": "Sup3r-Secret!pass"},
                            headers=headers, timeout=10).json()
    assert created["hasError"] is False, created
    queued = requests.post(f"{api}/generateImage", json={"prompt": "a lighthouse at dawn"}, headers=headers,
                           timeout=10).json()["payload"]
    deadline = time.monotonic() + 60
    while True:
        status = requests.get(f"{api}/getItemStatus", params={"imageID": queued["imageID"]}, headers=headers,
                              timeout=10).json()["payload"]
        if status["status"] not in ("queued", "running"):
            break
        assert time.monotonic() < deadline, status
        time.sleep(0.3)
    assert status["status"] == "completed", status
    from urllib.parse import urljoin

    image = requests.get(urljoin(api, status["url"]), timeout=10)
    assert image.status_code == 200 and image.headers["Content-Type"].startswith("image/") and len(image.content) > 100


def test_aimg_serve_starts_everything_and_stops_cleanly(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIMG_")}
    env["AIMG_DATA_DIR"] = str(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "aimg_app", "serve", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                response = requests.get(f"http://127.0.0.1:{port}/generateStrongPassword", timeout=2)
                break
            except requests.ConnectionError:
                assert proc.poll() is None, proc.stdout.read()
                time.sleep(0.5)
        else:
            raise AssertionError("aimg serve did not answer")
        assert response.status_code == 200 and response.json()["hasError"] is False
        _sign_up_generate_and_fetch(f"http://127.0.0.1:{port}")
        state = json.loads((tmp_path / "services.json").read_text())
        assert {"AIMG_MONGODB_URI", "AIMG_POSTGRES_DSN", "AIMG_REDIS_URL", "AIMG_SEAWEEDFS_URL", "AIMG_SMTP_URL"} <= set(state["env"])
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    for name in ("mongodb", "postgres", "redis", "seaweedfs", "smtp", "comfyui", "worker", "X-Administration-Key"):
        assert name in output  # it said what runs where
    assert not (tmp_path / "services.json").exists()
    import psutil

    leftovers = [p.info for p in psutil.process_iter(["pid", "cmdline"])
                 if str(tmp_path) in " ".join(p.info["cmdline"] or [])]
    assert leftovers == [], f"processes left running: {leftovers}"
