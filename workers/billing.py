"""Scheduled billing jobs: expire lapsed PRO tiers, poll processors without webhooks."""
from __future__ import annotations

from rq import Queue, Repeat

from aimg_app.config import load_settings
from aimg_app.resources import Resources
from aimg_app.services import memberships, subscriptions

EXPIRE_EVERY_S = 60
POLL_EVERY_S = 15 * 60
_REPEATS = 10_000_000  # effectively forever; RQ counts them down


_resources: Resources | None = None


def resources() -> Resources:
    """This worker process's handles, opened once (jobs run many times in one process)."""
    global _resources
    if _resources is None:
        _resources = Resources(load_settings())
        _resources.connect_mongo()
    return _resources


def expire_lapsed_tiers() -> int:
    """Settle subscriptions whose end has passed and recompute those users' tiers."""
    resources()
    return subscriptions.expire_lapsed()


def poll_payment_processors() -> dict[str, int]:
    """Read subscribers from processors without webhooks (Boosty, the whitelist)."""
    return memberships.poll_processors(resources())


def schedule(queue: Queue) -> None:
    """Enqueue the billing jobs to repeat (RQ's scheduler runs them; a worker started with
    ``with_scheduler`` hosts it)."""
    queue.enqueue(expire_lapsed_tiers, job_id="billing-expire-lapsed-tiers",
                  repeat=Repeat(times=_REPEATS, interval=EXPIRE_EVERY_S))
    queue.enqueue(poll_payment_processors, job_id="billing-poll-payment-processors",
                  repeat=Repeat(times=_REPEATS, interval=POLL_EVERY_S))
