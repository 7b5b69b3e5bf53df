"""``aimg worker``: a generation worker bound to this deployment's Redis, databases and ComfyUI pool.

Each worker listens to every priority (``-p1-``) queue before any normal one and runs its
jobs on a few slots in its own process (1 + ``generation_prefetch``): while one run
executes, the next is already in ComfyUI's own queue, so one worker keeps one GPU busy. It
also runs the scheduled jobs (``aimg scheduler`` queues them on ``aimg-scheduled``), beats
a heartbeat the API reads as "a worker is alive", and requeues the runs of workers that
died (their lease lapsed). Run one worker per ComfyUI server, or more.

SIGTERM or SIGINT stops a worker at once: the runs it holds are handed back (their leases
released, queued again at the front), so another worker resumes them right away, on the
same ComfyUI prompts, instead of after the lease lapses.
"""
from __future__ import annotations

import logging
import signal
import threading

import redis
from rq import Queue, SimpleWorker
from rq.timeouts import TimerDeathPenalty

from aimg_app import metrics, queueing
from aimg_app.config import Settings
from aimg_app.jsonlog import configure_logging, request_id_var
from aimg_app.resources import Resources

from . import billing, jobs

log = logging.getLogger("aimg.worker")


def generation_queues(resources: Resources, models: list[str] | None = None) -> list[str]:
    """Every generation queue (optionally only those of the named models/templates), priority first."""
    model_ids = [m for m in resources.generation_models if not models or m in models]
    template_ids = [t for t in resources.workflow_templates if not models or t in models]
    return queueing.all_queue_names(model_ids, template_ids)


def start_reaper(resources: Resources, stop: threading.Event, name: str) -> threading.Thread:
    """A thread that requeues runs whose worker died, one reaper at a time per deployment,
    and takes this worker off the list of live ones when it stops (the slots beat)."""
    interval = max(0.5, min(10.0, resources.settings.generation_lease_s / 3))

    def _loop():
        while True:
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


class _ScheduledJobs(SimpleWorker):
    """RQ's SimpleWorker for the scheduled jobs, in a thread beside the generation slots: the
    process's own signal handler stops everything, so this one installs none, and a job's
    time limit is kept by a timer thread (SIGALRM belongs to the main thread)."""

    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self):
        pass


def start_scheduled_jobs(resources: Resources, stop: threading.Event) -> threading.Thread:
    """Run what ``aimg scheduler`` queued on ``aimg-scheduled`` (billing jobs), one at a time."""
    queue = Queue(billing.QUEUE, connection=resources.redis)

    def _loop():
        while not stop.wait(1.0):
            try:
                if queue.count:
                    _ScheduledJobs([queue], connection=resources.redis).work(
                        burst=True, with_scheduler=False, logging_level="WARNING")
            except redis.RedisError:
                log.warning("scheduled jobs: Redis unavailable")
            except Exception:  # noqa: BLE001 - a failing job is RQ's to record; keep serving
                log.exception("running scheduled jobs failed")

    thread = threading.Thread(target=_loop, name="aimg-scheduled-jobs", daemon=True)
    thread.start()
    return thread


def hand_back(resources: Resources, process: str) -> list[str]:
    """Queue the runs this stopping worker process holds again, at the front, their leases
    released; their ComfyUI prompts keep running and the next worker resumes them."""
    from aimg_app.services import runs

    handed = []
    jobs.write_unwritten()  # where each run was submitted: the next worker resumes those prompts
    for state in runs.held_by_process(process):
        token = request_id_var.set(jobs._request_id_of(resources, state.id))  # the run's own request id
        try:
            if runs.hand_back(state, process):
                queueing.enqueue_run(resources.redis, state.queue_name, state.id,
                                     job_timeout=resources.settings.generation_job_timeout_s, at_front=True)
                handed.append(state.id)
                log.info("handed the run back on shutdown", extra={"workflowStateId": state.id})
        finally:
            request_id_var.reset(token)
    return handed


def run_worker(settings: Settings, queues: list[str] | None = None, burst: bool = False,
               comfyui: list[str] | None = None, models: list[str] | None = None,
               metrics_port: int | None = None) -> int:
    """Listen on ``queues`` in order (default: every generation queue, priority first), and
    run the scheduled jobs."""
    configure_logging(settings.log_level)
    if comfyui:
        settings.comfyui_urls = tuple(u.rstrip("/") for u in comfyui)
    resources = Resources(settings)
    resources.connect_mongo()
    jobs.set_resources(resources)
    billing.set_resources(resources)
    listed = queueing.listen_order(queues) if queues else generation_queues(resources, models)
    names = [name for name in listed if name != billing.QUEUE]  # generation queues, for the slots
    scheduled_jobs = not queues or billing.QUEUE in queues
    if names and not settings.comfyui_urls:
        log.error("no ComfyUI server configured (AIMG_COMFYUI_URLS or --comfyui): jobs wait in their queues")
        resources.close()
        return 2
    if metrics_port:
        metrics.serve(resources, metrics_port)
    stop = threading.Event()
    process = jobs.worker_name().rsplit(":", 1)[0]  # host:pid, the prefix of every slot's name

    def _stop(_signum, _frame):
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    reaper = start_reaper(resources, stop, process)
    scheduled = start_scheduled_jobs(resources, stop) if scheduled_jobs else reaper
    jobs.requeue_stale_runs(resources)
    log.info("worker listening", extra={"queues": listed, "comfyui": list(settings.comfyui_urls)})
    slots = jobs.work_slots(resources, names, stop, burst=burst) if names else []
    try:
        while (not slots or any(slot.is_alive() for slot in slots)) and not stop.is_set():
            stop.wait(0.2)
    finally:
        stop.set()
        try:
            hand_back(resources, process)
        except Exception:  # noqa: BLE001 - the lease lapses and the reaper requeues them instead
            log.exception("handing runs back failed")
        for thread in (*slots, reaper, scheduled):
            thread.join(2)
        resources.close()
    log.info("worker stopped")
    return 0


def main() -> int:  # pragma: no cover - ``python -m workers.main`` with the environment's settings
    from aimg_app.config import load_settings

    return run_worker(load_settings())


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
