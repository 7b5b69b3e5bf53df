"""``aimg scheduler``: RQ's cron scheduler for the periodic jobs, one leader at a time.

Run one or more (on different hosts, for availability): each waits for a Redis lock, and only
the holder runs RQ's ``CronScheduler``, which enqueues every registered job at its interval
on the ``aimg-scheduled`` queue that every ``aimg worker`` listens to. The leader renews the
lock on each of the scheduler's heartbeats; a leader that stops renewing (killed, cut off) is
replaced by another once the lock lapses.
"""
from __future__ import annotations

import logging
import threading

import redis
from redis.exceptions import LockError
from rq.cron import CronScheduler

from aimg_app.config import Settings
from aimg_app.jsonlog import configure_logging

from . import billing

log = logging.getLogger("aimg.scheduler")
LOCK_KEY = "aimg:scheduler:leader"


class LostLeadership(Exception):
    pass


class LeaderCronScheduler(CronScheduler):
    """RQ's CronScheduler that renews a leadership lock each time it beats."""

    def __init__(self, connection: redis.Redis, lock, renew_every_s: float, **kwargs):
        super().__init__(connection, **kwargs)
        self.leader_lock = lock
        self.renew_every_s = renew_every_s

    def heartbeat(self) -> None:
        try:
            self.leader_lock.reacquire()
        except LockError:
            raise LostLeadership() from None
        super().heartbeat()

    def calculate_sleep_interval(self) -> float:
        return min(super().calculate_sleep_interval(), self.renew_every_s)


def register_jobs(cron: CronScheduler, settings: Settings) -> None:
    billing.register(cron, settings)


def run_scheduler(settings: Settings, stop: threading.Event | None = None) -> int:
    configure_logging(settings.log_level)
    connection = redis.Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5)
    renew_every = max(0.2, settings.scheduler_lock_s / 3)
    lock = connection.lock(LOCK_KEY, timeout=settings.scheduler_lock_s, thread_local=False)
    stop = stop or threading.Event()
    standby_said = False
    try:
        while not stop.is_set():
            try:
                if not lock.acquire(blocking=True, blocking_timeout=renew_every):
                    if not standby_said:
                        log.info("scheduler on standby: another one leads")
                        standby_said = True
                    continue
                standby_said = False
                cron = LeaderCronScheduler(connection, lock, renew_every, logging_level=settings.log_level)
                register_jobs(cron, settings)
                log.info("scheduler leads", extra={"jobs": [j.func_name for j in cron.get_jobs()]})
                cron.start()  # returns on SIGTERM/SIGINT (RQ's own handlers)
                return 0
            except LostLeadership:
                log.warning("scheduler lost its lock; back on standby")
            except redis.RedisError as exc:
                log.warning("scheduler cannot reach Redis; retrying", extra={"error": str(exc)})
                stop.wait(renew_every)
    except KeyboardInterrupt:
        pass
    finally:
        try:
            lock.release()
        except (LockError, redis.RedisError):
            pass
        connection.close()
        log.info("scheduler stopped")
    return 0
