"""Operational endpoints for balancers and monitoring: ``/healthz``, ``/readyz``, ``/metrics``.

Not part of the contract (not in the OpenAPI document), never rate limited, no session.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import requests
from flask import Blueprint, Response, current_app, jsonify

from .. import metrics
from ..envelope import error_body, ok

health_bp = Blueprint("health", __name__)
CHECK_TIMEOUT_S = 2.0


def _mongodb(res) -> None:
    import mongoengine

    res.connect_mongo()
    mongoengine.get_db().client.admin.command("ping")


def _postgres(res) -> None:
    with res.pg.connection(timeout=CHECK_TIMEOUT_S) as conn:
        conn.execute("SELECT 1")


def _redis(res) -> None:
    res.redis.ping()


def _files(res) -> None:
    answer = requests.get(f"{res.settings.seaweedfs_url}/cluster/status", timeout=CHECK_TIMEOUT_S)
    answer.raise_for_status()


def _comfyui_server(url: str) -> None:
    requests.get(f"{url}/system_stats", timeout=CHECK_TIMEOUT_S).raise_for_status()


def _timed(name: str, check, *args) -> dict:
    started = time.perf_counter()
    try:
        check(*args)
        status, error = "ok", None
    except Exception as exc:  # noqa: BLE001 - any failure is "down", with its reason
        status, error = "down", f"{type(exc).__name__}: {exc}"[:300]
    entry = {"name": name, "status": status, "latencyMs": round((time.perf_counter() - started) * 1000, 1)}
    if error:
        entry["error"] = error
    return entry


def readiness(res) -> tuple[bool, list[dict]]:
    """Every configured dependency, checked in parallel; ready when none required is down."""
    s = res.settings
    checks = [("mongodb", s.mongodb_uri, _mongodb), ("postgres", s.postgres_dsn, _postgres),
              ("redis", s.redis_url, _redis), ("files", s.seaweedfs_url, _files)]
    servers = list(s.comfyui_urls)
    with ThreadPoolExecutor(max_workers=len(checks) + len(servers)) as pool:
        futures = [pool.submit(_timed, name, check, res) for name, configured, check in checks if configured]
        comfy = [pool.submit(_timed, f"comfyui {url}", _comfyui_server, url) for url in servers]
        results = [f.result() for f in futures]
        comfy_results = [f.result() for f in comfy]
    results += [{"name": name, "status": "not configured"} for name, configured, _ in checks if not configured]
    if comfy_results:
        # Generation needs one healthy server; each one's state is shown.
        healthy = any(r["status"] == "ok" for r in comfy_results)
        results.append({"name": "comfyui", "status": "ok" if healthy else "down",
                        "latencyMs": min(r["latencyMs"] for r in comfy_results), "servers": comfy_results})
    ready = all(r["status"] != "down" for r in results)
    return ready, results


@health_bp.get("/healthz")
def healthz():
    return jsonify(ok({"status": "ok"}))


@health_bp.get("/readyz")
def readyz():
    ready, checks = readiness(current_app.extensions["aimg"])
    if ready:
        return jsonify(ok({"ready": True, "checks": checks}))
    down = ", ".join(c["name"] for c in checks if c["status"] == "down")
    body = error_body(503, f"Not ready: {down} unavailable.")
    body["metadata"] = {"checks": checks}
    return jsonify(body), 503


@health_bp.get("/metrics")
def scrape():
    return Response(metrics.render(current_app.extensions["aimg"]), content_type=metrics.CONTENT_TYPE)
