"""``aimg worker``: an RQ worker bound to this deployment's Redis and databases."""
from __future__ import annotations

import logging

from rq import Queue, Worker

from aimg_app.config import Settings
from aimg_app.jsonlog import configure_logging
from aimg_app.resources import Resources

DEFAULT_QUEUES = ("default",)

log = logging.getLogger("aimg.worker")


def run_worker(settings: Settings, queues: list[str] | None = None, burst: bool = False) -> int:
    """Listen on ``queues`` in order (so a priority queue listed first is served first)."""
    configure_logging(settings.log_level)
    resources = Resources(settings)
    resources.connect_mongo()
    names = list(queues or DEFAULT_QUEUES)
    worker = Worker([Queue(name, connection=resources.redis) for name in names], connection=resources.redis)
    log.info("worker listening", extra={"queues": names})
    try:
        worker.work(burst=burst, with_scheduler=True)
    finally:
        resources.close()
    return 0
