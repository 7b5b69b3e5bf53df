"""Test support for generation: tiers, a fake ComfyUI, in-process RQ workers."""
from __future__ import annotations

import datetime as dt

from rq import Queue, SimpleWorker

from aimg_app.models import User
from aimg_app.models.base import utcnow


def grant_tier(user_id: str, tier: int, days: int = 30) -> None:
    """Give a user a PRO tier through the tier engine (an admin grant, as setAdminProvidedPremiumTier does)."""
    from aimg_app.services.subscriptions import set_grant

    user = User.objects(id=user_id).first()
    set_grant(user.domain, user, "admin", f"test-grant:{user_id}", "test-grant", tier, True,
              utcnow() + dt.timedelta(days=days), "tests", None, None)


def generation_queue_names(app) -> list[str]:
    from workers.main import generation_queues

    return generation_queues(app.extensions["aimg"])


def clear_generation_queues(app) -> None:
    """Redis is shared by the whole test session: start a module with empty queues."""
    resources = app.extensions["aimg"]
    for name in generation_queue_names(app):
        Queue(name, connection=resources.redis).empty()
    for key in resources.redis.scan_iter("aimg:comfy:*"):
        resources.redis.delete(key)


def work(app, queues: list[str] | None = None, max_jobs: int | None = None) -> int:
    """Run an in-process worker until the queues are empty (or ``max_jobs`` ran)."""
    from workers import jobs

    resources = app.extensions["aimg"]
    jobs.set_resources(resources)
    names = queues or generation_queue_names(app)
    queues = [Queue(n, connection=resources.redis) for n in names]
    waiting = sum(q.count for q in queues)
    from aimg_app import queueing

    # a worker that the API can see alive, as a real one beats its heartbeat
    queueing.worker_heartbeat(resources.redis, "test-worker", {"queues": names})
    SimpleWorker(queues, connection=resources.redis).work(burst=True, with_scheduler=False, max_jobs=max_jobs,
                                                          logging_level="WARNING")
    queueing.worker_gone(resources.redis, "test-worker")
    return waiting - sum(q.count for q in queues)


class Slots:
    """A worker's slots (``workers.jobs.work_slots``) running in this process until stopped."""

    def __init__(self, app, slots: int = 2, queues: list[str] | None = None):
        import threading

        from workers import jobs

        self.app = app
        self.stop_event = threading.Event()
        self.threads = jobs.work_slots(app.extensions["aimg"], queues or generation_queue_names(app), self.stop_event,
                                       slots=slots)

    def stop(self) -> None:
        from aimg_app import queueing
        from workers import jobs

        self.stop_event.set()
        for thread in self.threads:
            thread.join(30)
        queueing.worker_gone(self.app.extensions["aimg"].redis, jobs.worker_name().rsplit(":", 1)[0])

    def __enter__(self) -> "Slots":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def wait_for(condition, timeout_s: float = 20.0, every_s: float = 0.01):
    """Poll ``condition`` until it returns something truthy; that value (or AssertionError)."""
    import time

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {condition}")
