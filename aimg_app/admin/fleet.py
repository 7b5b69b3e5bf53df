"""What the Generation page shows, read from what the generation fleet leaves behind: queue
lengths (Redis), the ComfyUI pool's shared health and load (Redis), a live ``/system_stats``
probe, the workers' heartbeats, and the runs (``WorkflowState``).

Each reader answers ``None`` when its source is missing or has changed shape, and the page
then says "unknown": a monitoring page must keep working while the fleet is not.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

log = logging.getLogger("aimg.admin")

T = TypeVar("T")
PROBE_TIMEOUT_S = 2.0
FAILED_RUNS = 20


def tolerant(reader: Callable[..., T], *args) -> T | None:
    try:
        return reader(*args)
    except Exception:  # shown as "unknown", never a 500
        log.warning("admin generation reader failed: %s", getattr(reader, "__name__", reader), exc_info=True)
        return None


def queue_rows(resources) -> list[dict[str, Any]]:
    """One row per model or workflow template: its normal and priority queue lengths."""
    from .. import queueing

    bases = [("gen", m) for m in resources.generation_models] + [("wf", t) for t in resources.workflow_templates]
    names = {(kind, base): (queueing.queue_name(kind, base, False), queueing.queue_name(kind, base, True))
             for kind, base in bases}
    counts = queueing.lengths(resources.redis, [n for pair in names.values() for n in pair])
    return [{"kind": "model" if kind == "gen" else "workflow", "name": base, "normal": counts.get(normal),
             "priority": counts.get(priority), "normalQueue": normal, "priorityQueue": priority}
            for (kind, base), (normal, priority) in names.items()]


def _probe(url: str) -> dict[str, Any]:
    import httpx

    started = time.perf_counter()
    try:
        response = httpx.get(f"{url}/system_stats", timeout=PROBE_TIMEOUT_S)
        response.raise_for_status()
        stats = response.json()
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
    devices = [{"name": d.get("name"), "vramTotal": d.get("vram_total"), "vramFree": d.get("vram_free")}
               for d in stats.get("devices") or [] if isinstance(d, dict)]
    return {"ok": True, "ms": round((time.perf_counter() - started) * 1000),
            "version": (stats.get("system") or {}).get("comfyui_version"), "devices": devices}


def _pool_view(resources, url: str) -> dict[str, Any]:
    """What the workers' shared pool knows of one server (health cached in Redis, runs in flight)."""
    from workers.comfy import ComfyPool

    pool = ComfyPool([url], resources.redis)
    if resources.redis.exists(pool._key("down", url)):
        health = "down"
    elif resources.redis.exists(pool._key("up", url)):
        health = "up"
    else:
        health = "unchecked"  # no worker asked it within the health TTL (e.g. none ran a job lately)
    return {"health": health, "inFlight": pool.load(url)}


def _running_by_server() -> dict[str, list[str]]:
    from ..models.workflow import WorkflowState

    serving: dict[str, list[str]] = {}
    for state in WorkflowState.objects(state="running").only("comfy_server", "template_name", "model_id").limit(1000):
        server = getattr(state, "comfy_server", None)
        if server:
            serving.setdefault(server.rstrip("/"), []).append(getattr(state, "model_id", None)
                                                               or getattr(state, "template_name", "?"))
    return serving


def comfy_servers(resources) -> list[dict[str, Any]]:
    urls = [u.rstrip("/") for u in resources.settings.comfyui_urls]
    with ThreadPoolExecutor(max_workers=min(8, max(1, len(urls)))) as pool:
        probes = dict(zip(urls, pool.map(_probe, urls)))
    running = tolerant(_running_by_server) or {}
    rows = []
    for url in urls:
        view = tolerant(_pool_view, resources, url) or {}
        serving = running.get(url, [])
        rows.append({"url": url, "probe": probes[url], "health": view.get("health"), "inFlight": view.get("inFlight"),
                     "running": {name: serving.count(name) for name in sorted(set(serving))}})
    return rows


def workers_alive(resources) -> list[dict[str, Any]]:
    """The generation workers that beat their heartbeat recently, with what each serves."""
    import datetime as dt

    from .. import queueing

    rows = []
    for worker in queueing.live_workers(resources.redis):
        beat = dt.datetime.fromtimestamp(worker["lastHeartbeat"], dt.UTC).replace(tzinfo=None)
        rows.append({**worker, "lastHeartbeat": beat, "state": "alive", "currentJob": None,
                     "queues": worker.get("queues", [])})
    return sorted(rows, key=lambda w: w["name"])


def failed_runs(domain: str, limit: int = FAILED_RUNS) -> list[dict[str, Any]]:
    from ..models.workflow import WorkflowState

    rows = []
    for state in WorkflowState.objects(state="error").order_by("-end_time", "-id").limit(limit * 4):
        if getattr(state, "domain", domain) != domain:
            continue
        rows.append({"id": state.id, "workflowId": getattr(state, "public_id", None),
                     "what": getattr(state, "model_id", None) or getattr(state, "template_name", None),
                     "userId": getattr(state, "user_id", None), "server": getattr(state, "comfy_server", None),
                     "worker": getattr(state, "worker_name", None), "attempts": getattr(state, "attempts", None),
                     "ended": getattr(state, "end_time", None) or getattr(state, "created_date", None),
                     "error": getattr(state, "error_message", None) or "(no message)"})
        if len(rows) >= limit:
            break
    return rows


def overview(resources, domain: str) -> dict[str, Any]:
    return {
        "queues": tolerant(queue_rows, resources),
        "servers": tolerant(comfy_servers, resources),
        "workers": tolerant(workers_alive, resources),
        "failed": tolerant(failed_runs, domain),
    }
