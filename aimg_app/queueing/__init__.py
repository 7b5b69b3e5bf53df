"""Generation queues on Redis (RQ): names, enqueueing, positions, lengths, per-user locks.

One queue per legacy model (``gen-<model>``) and per workflow template (``wf-<template>``),
each with a ``-p1-`` priority twin (``gen-p1-<model>``) for PRO users. Workers listen to
every priority queue before any normal one, so a priority job is taken first. Positions
and lengths are read from Redis (``LPOS``/``LLEN``), never by scanning documents.
"""
from __future__ import annotations

import contextlib
import time
import uuid
from typing import Iterable, Iterator

import redis
from rq import Queue
from rq.job import Job, JobStatus

from ..errors import ServiceUnavailable, TooManyRequests

JOB_FUNCTION = "workers.jobs.run_workflow"
PRIORITY_MARK = "-p1-"


def queue_name(kind: str, base: str, priority: bool) -> str:
    """``kind`` is "gen" (legacy models) or "wf" (workflow templates)."""
    return f"{kind}{PRIORITY_MARK}{base}" if priority else f"{kind}-{base}"


def is_priority(name: str) -> bool:
    return PRIORITY_MARK in name


def normal_twin(name: str) -> str:
    return name.replace(PRIORITY_MARK, "-", 1)


def priority_twin(name: str) -> str:
    kind, _, base = name.partition("-")
    return name if is_priority(name) else f"{kind}{PRIORITY_MARK}{base}"


def listen_order(names: Iterable[str]) -> list[str]:
    """Every priority queue first, then the normal ones (each group in the given order)."""
    names = list(dict.fromkeys(names))
    return [n for n in names if is_priority(n)] + [n for n in names if not is_priority(n)]


def all_queue_names(model_ids: Iterable[str], template_names: Iterable[str]) -> list[str]:
    names = []
    for kind, bases in (("gen", model_ids), ("wf", template_names)):
        for base in bases:
            names += [queue_name(kind, base, True), queue_name(kind, base, False)]
    return listen_order(names)


def enqueue_run(connection: redis.Redis, name: str, workflow_state_id: str, *, job_timeout: int) -> Job:
    """Queue the run of a workflow state; the job id is the state's id (one job per run).
    The request's id goes with it: the worker logs every line of the job under it."""
    from ..jsonlog import request_id_var

    try:
        return Queue(name, connection=connection).enqueue(
            JOB_FUNCTION, workflow_state_id, job_id=workflow_state_id, job_timeout=job_timeout,
            result_ttl=3600, failure_ttl=7 * 86400, description=f"workflow {workflow_state_id}",
            meta={"requestId": request_id_var.get()})
    except redis.RedisError:
        raise ServiceUnavailable("The generation queue is unavailable; please try again later.") from None


def remove_queued(connection: redis.Redis, name: str, job_id: str) -> bool:
    """Take a job out of its queue if it is still waiting there; True if it was."""
    removed = connection.lrem(Queue(name, connection=connection).key, 0, job_id)
    if removed:
        with contextlib.suppress(Exception):
            Job.fetch(job_id, connection=connection).set_status(JobStatus.CANCELED)
    return bool(removed)


def position(connection: redis.Redis, name: str, job_id: str) -> int | None:
    """1-based place of a waiting job among all the jobs a worker would take before it (its
    queue, plus the whole priority twin for a normal job); None when it is not waiting."""
    try:
        queue = Queue(name, connection=connection)
        index = connection.lpos(queue.key, job_id)
        if index is None:
            return None
        ahead = int(index)
        if not is_priority(name):
            ahead += int(connection.llen(Queue(priority_twin(name), connection=connection).key))
        return ahead + 1
    except redis.RedisError:
        return None


def lengths(connection: redis.Redis, names: Iterable[str]) -> dict[str, int]:
    names = list(names)
    try:
        with connection.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.llen(Queue(name, connection=connection).key)
            counts = pipe.execute()
    except redis.RedisError:
        raise ServiceUnavailable("The generation queue is unavailable; please try again later.") from None
    return {name: int(count) for name, count in zip(names, counts)}


_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


@contextlib.contextmanager
def user_lock(connection: redis.Redis, owner: str, wait_s: float = 5.0, ttl_ms: int = 10_000) -> Iterator[None]:
    """Serialise one user's generation requests, so that counting their running Items and
    queuing new ones is atomic across API processes (the concurrency limit holds)."""
    key, token = f"aimg:genlock:{owner}", uuid.uuid4().hex
    deadline = time.monotonic() + wait_s
    try:
        while not connection.set(key, token, nx=True, px=ttl_ms):
            if time.monotonic() > deadline:
                raise TooManyRequests("Another generation request of yours is being processed; try again.")
            time.sleep(0.02)
    except redis.RedisError:
        raise ServiceUnavailable("The generation queue is unavailable; please try again later.") from None
    try:
        yield
    finally:
        with contextlib.suppress(redis.RedisError):
            connection.eval(_RELEASE, 1, key, token)
