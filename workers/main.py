"""``aimg worker``: an RQ worker bound to this deployment's Redis, databases and ComfyUI pool.

Each worker listens to every priority (``-p1-``) queue before any normal one and runs its
jobs on a few slots in its own process (1 + ``generation_prefetch``): while one run
executes, the next is already in ComfyUI's own queue, so one worker keeps one GPU busy. It
also requeues the runs of workers that died (their lease lapsed). Run one worker per
ComfyUI server, or more.
"""
from __future__ import annotations

import logging
import threading

import redis

from aimg_app import queueing
from aimg_app.config import Settings
from aimg_app.jsonlog import configure_logging
from aimg_app.resources import Resources

from . import jobs

log = logging.getLogger("aimg.worker")


def generation_queues(resources: Resources, models: list[str] | None = None) -> list[str]:
    """Every generation queue (optionally only those of the named models/templates), priority first."""
    model_ids = [m for m in resources.generation_models if not models or m in models]
    template_ids = [t for t in resources.workflow_templates if not models or t in models]
    return queueing.all_queue_names(model_ids, template_ids)


def start_reaper(resources: Resources, stop: threading.Event, name: str, info: dict) -> threading.Thread:
    """A thread that beats this worker's heartbeat (what the API and the admin pages read as
    "alive") and requeues runs whose worker died, one reaper at a time per deployment."""
    interval = max(0.5, min(10.0, resources.settings.generation_lease_s / 3))

    def _loop():
        while True:
            try:
                queueing.worker_heartbeat(resources.redis, name, info)
            except redis.RedisError:
                log.warning("worker heartbeat failed")
            if stop.wait(interval):
                queueing.worker_gone(resources.redis, name)
                return
            try:
                if resources.redis.set("aimg:reaper", "1", nx=True, px=int(interval * 1000)):
                    jobs.requeue_stale_runs(resources)
            except (redis.RedisError, Exception):  # noqa: BLE001 - keep reaping after a hiccup
                log.exception("requeueing stale runs failed")

    thread = threading.Thread(target=_loop, name="aimg-reaper", daemon=True)
    thread.start()
    return thread


def run_worker(settings: Settings, queues: list[str] | None = None, burst: bool = False,
               comfyui: list[str] | None = None, models: list[str] | None = None) -> int:
    """Listen on ``queues`` in order (default: every generation queue, priority first)."""
    configure_logging(settings.log_level)
    if comfyui:
        settings.comfyui_urls = tuple(u.rstrip("/") for u in comfyui)
    if not settings.comfyui_urls:
        log.error("no ComfyUI server configured (AIMG_COMFYUI_URLS or --comfyui): jobs wait in their queues")
        return 2
    resources = Resources(settings)
    resources.connect_mongo()
    jobs.set_resources(resources)
    names = queueing.listen_order(queues) if queues else generation_queues(resources, models)
    stop = threading.Event()
    me = jobs.worker_name().rsplit(":", 1)[0]
    reaper = start_reaper(resources, stop, me, {"queues": names, "comfyui": list(settings.comfyui_urls)})
    jobs.requeue_stale_runs(resources)
    log.info("worker listening", extra={"queues": names, "comfyui": list(settings.comfyui_urls)})
    slots = jobs.work_slots(resources, names, stop, burst=burst)
    try:
        for slot in slots:
            while slot.is_alive():
                slot.join(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        for slot in slots:
            slot.join(5)
        reaper.join(2)
        resources.close()
    return 0


def main() -> int:  # pragma: no cover - ``python -m workers.main`` with the environment's settings
    from aimg_app.config import load_settings

    return run_worker(load_settings())


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
