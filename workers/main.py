"""``aimg worker``: an RQ worker bound to this deployment's Redis, databases and ComfyUI pool.

Each worker listens to every priority (``-p1-``) queue before any normal one, then to the
queue of scheduled jobs; it runs one job at a time in its own process (RQ's SimpleWorker: no
fork per job, so the MongoDB and Redis connections are reused and the gap between two jobs
stays small), and requeues the runs of workers that died (their lease lapsed). Run one
worker per ComfyUI server, or more.

SIGTERM or SIGINT stops a worker at once: a job in progress is interrupted where it is and
its run is handed back (its lease released and the run queued again at the front), so
another worker resumes it right away instead of after the lease lapses.
"""
from __future__ import annotations

import logging
import threading
import time

import redis
from rq import Queue, SimpleWorker
from rq.exceptions import StopRequested
from rq.worker import WorkerStatus

from rq.utils import now as rq_now

from aimg_app import metrics, queueing
from aimg_app.config import Settings
from aimg_app.jsonlog import configure_logging, request_id_var
from aimg_app.resources import Resources

from . import billing, jobs

log = logging.getLogger("aimg.worker")


class HandBack(BaseException):
    """Raised into the running job on shutdown. A BaseException, so that no job's own
    ``except Exception`` mistakes it for a failure of the run."""


class AimgWorker(SimpleWorker):
    """RQ's SimpleWorker, plus: the enqueuing request's id on every log line of a job, and
    a shutdown that interrupts the running job instead of waiting for it."""

    _in_job = False
    handed_back: tuple[str, ...] = ()

    def dequeue_job_and_maintain_ttl(self, *args, **kwargs):
        result = super().dequeue_job_and_maintain_ttl(*args, **kwargs)
        if result is not None:
            request_id_var.set((result[0].meta or {}).get("requestId"))
        return result

    def execute_job(self, job, queue):
        if job.enqueued_at is not None:
            metrics.observe_phase("queue_wait", (rq_now() - job.enqueued_at).total_seconds())
        self._in_job = True
        outcome = "handed_back"
        try:
            super().execute_job(job, queue)
            outcome = _outcome(job)
        finally:
            self._in_job = False
            metrics.JOBS.labels(queue.name, outcome).inc()
            request_id_var.set(None)

    stopping = False

    def request_stop(self, signum, frame):
        self.stopping = True
        super().request_stop(signum, frame)

    def handle_warm_shutdown_request(self):
        super().handle_warm_shutdown_request()
        if self._in_job and self.get_state() == WorkerStatus.BUSY:
            self._stop_requested = True
            job = self.get_current_job()
            if job is not None:
                self.handed_back = (*self.handed_back, job.id)
            raise HandBack()


def _outcome(job) -> str:
    """What the job's function says it did ("completed", "failed", "cancelled", "skipped"...), or
    RQ's status when it raised."""
    status = job.get_status(refresh=True)
    if status != "finished":
        return str(getattr(status, "value", status))
    result = job.return_value()
    return str(result).split(":")[0].split()[0] if isinstance(result, str) and result else "finished"


def _redis_answers(resources: Resources) -> bool:
    try:
        return bool(resources.redis.ping())
    except redis.RedisError:
        return False


def generation_queues(resources: Resources, models: list[str] | None = None) -> list[str]:
    """Every generation queue (optionally only those of the named models/templates), priority first."""
    model_ids = [m for m in resources.generation_models if not models or m in models]
    template_ids = [t for t in resources.workflow_templates if not models or t in models]
    return queueing.all_queue_names(model_ids, template_ids)


def start_reaper(resources: Resources, stop: threading.Event) -> threading.Thread:
    """A thread that requeues runs whose worker died; one reaper at a time per deployment."""
    interval = max(0.5, resources.settings.generation_lease_s / 3)

    def _loop():
        while not stop.wait(interval):
            try:
                if resources.redis.set("aimg:reaper", "1", nx=True, px=int(interval * 1000)):
                    jobs.requeue_stale_runs(resources)
            except (redis.RedisError, Exception):  # noqa: BLE001 - keep reaping after a hiccup
                log.exception("requeueing stale runs failed")

    thread = threading.Thread(target=_loop, name="aimg-reaper", daemon=True)
    thread.start()
    return thread


def hand_back(resources: Resources, me: str, rq_job_ids: list[str]) -> list[str]:
    """Queue the runs this stopping worker holds again, at the front, their leases released.
    Their ComfyUI prompts keep running: the next worker resumes them."""
    from rq.exceptions import InvalidJobOperation
    from rq.job import Job

    from aimg_app.models.workflow import WorkflowState

    handed = []
    for job_id in rq_job_ids:
        try:
            job = Job.fetch(job_id, connection=resources.redis)
        except Exception:  # noqa: BLE001 - the job hash expired: the reaper requeues the run later
            continue
        token = request_id_var.set((job.meta or {}).get("requestId"))
        try:
            # Not a crash: the attempt does not count towards generation_max_runs.
            if not WorkflowState.objects(id=job_id, state="running", worker_name=me).update_one(
                    set__state="queued", set__lease_until=None, set__worker_name=None, dec__attempts=1,
                    push__log=jobs._log_line("handed back by a stopping worker; queued again")):
                continue
            try:  # the interrupted execution left the job among the failed ones: not a failure of the run
                job.requeue(at_front=True)
            except InvalidJobOperation:
                Queue(job.origin, connection=resources.redis).enqueue_job(job, at_front=True)
            handed.append(job_id)
            log.info("handed the run back on shutdown", extra={"workflowStateId": job_id})
        finally:
            request_id_var.reset(token)
    return handed


def run_worker(settings: Settings, queues: list[str] | None = None, burst: bool = False,
               comfyui: list[str] | None = None, models: list[str] | None = None,
               metrics_port: int | None = None) -> int:
    """Listen on ``queues`` in order (default: every generation queue, priority first, then
    the scheduled jobs' queue)."""
    configure_logging(settings.log_level)
    if comfyui:
        settings.comfyui_urls = tuple(u.rstrip("/") for u in comfyui)
    if not settings.comfyui_urls and not queues:
        log.error("no ComfyUI server configured (AIMG_COMFYUI_URLS or --comfyui): jobs wait in their queues")
        return 2
    resources = Resources(settings)
    try:
        resources.connect_mongo()
        jobs.set_resources(resources)
        billing.set_resources(resources)
        names = queueing.listen_order(queues) if queues else [*generation_queues(resources, models), billing.QUEUE]
        if metrics_port:
            metrics.serve(resources, metrics_port)
        stop = threading.Event()
        start_reaper(resources, stop)
        jobs.requeue_stale_runs(resources)
        log.info("worker listening", extra={"queues": names, "comfyui": list(settings.comfyui_urls)})
        try:
            while True:
                worker = AimgWorker([Queue(name, connection=resources.redis) for name in names],
                                    connection=resources.redis)
                try:
                    worker.work(burst=burst, with_scheduler=False)
                except redis.RedisError:
                    pass  # RQ's teardown met the same outage
                if worker.handed_back:
                    hand_back(resources, jobs.worker_name(), list(worker.handed_back))
                if burst or worker.stopping:
                    break
                # RQ's loop ends on a Redis error (a restart, a failover): wait for it to come back.
                log.warning("the worker lost Redis; reconnecting")
                try:
                    while not _redis_answers(resources) and not worker.stopping:
                        time.sleep(0.5)
                except StopRequested:  # RQ's signal handler, while waiting
                    break
                if worker.stopping:
                    break
        finally:
            stop.set()
    finally:
        resources.close()
    log.info("worker stopped")
    return 0


def main() -> int:  # pragma: no cover - ``python -m workers.main`` with the environment's settings
    from aimg_app.config import load_settings

    return run_worker(load_settings())


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
