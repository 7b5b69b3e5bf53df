"""Scheduled billing jobs: expire lapsed PRO tiers, poll processors without webhooks."""
from __future__ import annotations

from aimg_app.config import Settings, load_settings
from aimg_app.resources import Resources
from aimg_app.services import memberships, subscriptions

QUEUE = "aimg-scheduled"  # every ``aimg worker`` listens on it after the generation queues


_resources: Resources | None = None


def set_resources(res: Resources) -> None:
    """The worker process's Resources (``aimg worker`` sets it)."""
    global _resources
    _resources = res


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


def register(cron, settings: Settings) -> None:
    """Register the billing jobs on RQ's cron scheduler (``aimg scheduler`` runs it)."""
    cron.register(expire_lapsed_tiers, QUEUE, interval=settings.billing_expire_interval_s,
                  job_timeout=300, result_ttl=600, failure_ttl=86400)
    cron.register(poll_payment_processors, QUEUE, interval=settings.billing_poll_interval_s,
                  job_timeout=600, result_ttl=600, failure_ttl=86400)
