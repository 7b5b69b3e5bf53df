"""Test support for generation: tiers, a fake ComfyUI, in-process RQ workers."""
from __future__ import annotations

import datetime as dt

from rq import Queue

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
    from workers.main import AimgWorker

    AimgWorker(queues, connection=resources.redis).work(burst=True, with_scheduler=False, max_jobs=max_jobs,
                                                          logging_level="WARNING")
    return waiting - sum(q.count for q in queues)
