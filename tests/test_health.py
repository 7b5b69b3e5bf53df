"""Health, readiness and metrics: what a balancer and a scraper see."""
from __future__ import annotations

import re

from aimg_app.devservices.fake_comfyui import FakeComfyUI
from tests.conftest import assert_error, assert_ok, sign_up


def _sample(text: str, name: str, **labels) -> float:
    """The value of one sample of the Prometheus text, 0 when absent."""
    want = [f'{k}="{v}"' for k, v in labels.items()]
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            if all(w in line for w in want):
                total += float(line.rsplit(" ", 1)[1])
    return total


def test_healthz_needs_nothing(client):
    body = assert_ok(client.get("/healthz", headers={"X-Session-ID": "not-a-uuid"}))
    assert body["payload"] == {"status": "ok"}


def test_readyz_lists_every_dependency_with_its_latency(client):
    body = assert_ok(client.get("/readyz"))
    checks = {c["name"]: c for c in body["payload"]["checks"]}
    for name in ("mongodb", "postgres", "redis", "files"):
        assert checks[name]["status"] == "ok" and checks[name]["latencyMs"] >= 0


def test_readyz_is_503_when_a_required_service_is_down(make_app):
    with FakeComfyUI() as healthy:
        stopped = FakeComfyUI().start()
        stopped_url = stopped.url
        stopped.stop()
        app = make_app(comfyui_urls=(stopped_url, healthy.url))
        client = app.test_client()
        body = assert_ok(client.get("/readyz"))  # one healthy server is enough
        comfy = next(c for c in body["payload"]["checks"] if c["name"] == "comfyui")
        assert {s["status"] for s in comfy["servers"]} == {"ok", "down"}
    # Now the last ComfyUI server is gone too, and so is PostgreSQL (a closed port).
    app = make_app(comfyui_urls=(stopped_url,), postgres_dsn="postgresql://u:p@127.0.0.1:1/aimg", migrate_on_start=False)
    body = assert_error(app.test_client().get("/readyz"), 503, "postgres", "comfyui")
    checks = {c["name"]: c for c in body["metadata"]["checks"]}
    assert checks["postgres"]["status"] == "down" and checks["postgres"]["error"]
    assert checks["mongodb"]["status"] == "ok"


def test_metrics_count_requests_and_jobs(app, client):
    from tests.generation_support import clear_generation_queues, grant_tier, work

    before = client.get("/metrics").get_data(as_text=True)
    assert_ok(client.get("/generateStrongPassword"))
    with FakeComfyUI(render_seconds=0.01) as comfy:
        app.extensions["aimg"].settings.comfyui_urls = (comfy.url,)
        clear_generation_queues(app)
        user = sign_up(client)
        grant_tier(user["user_id"], 1)
        assert_ok(client.post("/generateImage", json={"prompt": "count me", "steps": 2}, headers=user["headers"]))
        waiting = client.get("/metrics").get_data(as_text=True)
        assert sum(float(v) for v in re.findall(r'aimg_queue_length\{queue="(?:gen|wf)[^"]*"\} (\S+)', waiting)) >= 1
        assert work(app) == 1
        after = client.get("/metrics")
    assert after.headers["Content-Type"].startswith("text/plain")
    text = after.get_data(as_text=True)
    key = dict(endpoint="/generateStrongPassword", method="GET", status="200")
    assert _sample(text, "aimg_http_requests_total", **key) == _sample(before, "aimg_http_requests_total", **key) + 1
    assert _sample(text, "aimg_http_request_duration_seconds_count", endpoint="/generateStrongPassword") >= 1
    assert (_sample(text, "aimg_jobs_total", outcome="completed")
            == _sample(before, "aimg_jobs_total", outcome="completed") + 1)
    for phase in ("queue_wait", "submit", "comfyui", "storing"):
        assert _sample(text, "aimg_job_phase_seconds_count", phase=phase) >= 1, phase
    assert 'aimg_comfyui_up{server="' in text
