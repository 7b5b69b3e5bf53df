"""Generation queues on Redis (RQ): names, enqueueing, positions, lengths, per-user locks.

One queue per legacy model (``gen-<model>``) and per workflow template (``wf-<template>``),
each with a ``-p1-`` priority twin (``gen-p1-<model>``) for PRO users. Workers listen to
every priority queue before any normal one, so a priority job is taken first. Positions
and lengths are read from Redis (``LPOS``/``LLEN``), never by scanning documents.
"""
from __future__ import annotations

import contextlib
import time
from typing import Iterable, Iterator

import redis
from redis.exceptions import LockError
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


def enqueue_run(connection: redis.Redis, name: str, workflow_state_id: str, *, job_timeout: int,
                at_front: bool = False) -> Job:
    """Queue the run of a workflow state; the job id is the state's id (one job per run).
    ``at_front``: a run taken back from a dead worker goes before the waiting ones. The
    request's id goes with it: the worker logs every line of the job under it."""
    from ..jsonlog import request_id_var

    request_id = request_id_var.get()
    if request_id is None and at_front:  # queued again: the id of the request that first queued it stays
        with contextlib.suppress(Exception):
            request_id = (Job.fetch(workflow_state_id, connection=connection).meta or {}).get("requestId")
    try:
        return Queue(name, connection=connection).enqueue(
            JOB_FUNCTION, workflow_state_id, job_id=workflow_state_id, job_timeout=job_timeout,
            result_ttl=3600, failure_ttl=7 * 86400, at_front=at_front,
            description=f"workflow {workflow_state_id}" + (" (requeued)" if at_front else ""),
            meta={"requestId": request_id})
    except redis.RedisError:
        raise ServiceUnavailable("The generation queue is unavailable; please try again later.") from None


def take_next(connection: redis.Redis, names: list[str], timeout_s: float) -> str | None:
    """Pop the next job id of ``names`` (in that order, so priority queues first), waiting
    up to ``timeout_s``; the job id is the run's WorkflowState id. None when none came."""
    keys = [Queue(name, connection=connection).key for name in names]
    popped = connection.blpop(keys, timeout=timeout_s)
    if popped is None:
        return None
    _key, job_id = popped
    return job_id.decode() if isinstance(job_id, bytes) else job_id


def forget(connection: redis.Redis, job_id: str, ttl_s: int = 3600) -> None:
    """A run taken with ``take_next`` has ended: its RQ job hash expires like a finished job's."""
    with contextlib.suppress(redis.RedisError):
        connection.expire(Job.key_for(job_id), ttl_s)


def remove_queued(connection: redis.Redis, name: str, job_id: str) -> bool:
    """Take a job out of its queue if it is still waiting there; True if it was."""
    removed = connection.lrem(Queue(name, connection=connection).key, 0, job_id)
    if removed:
        with contextlib.suppress(Exception):
            Job.fetch(job_id, connection=connection).set_status(JobStatus.CANCELED)
    return bool(removed)


def is_waiting(connection: redis.Redis, name: str, job_id: str) -> bool:
    """Whether the job is in its queue's list (a worker has not popped it)."""
    return connection.lpos(Queue(name, connection=connection).key, job_id) is not None


def position(connection: redis.Redis, name: str, job_id: str) -> int | None:
    """1-based place of a waiting job among all the jobs a worker would take before it (its
    queue, plus the whole priority twin for a normal job); None when it is not waiting."""
    try:
        with connection.pipeline(transaction=False) as pipe:  # one round trip
            pipe.lpos(Queue(name, connection=connection).key, job_id)
            if not is_priority(name):
                pipe.llen(Queue(priority_twin(name), connection=connection).key)
            index, *twin = pipe.execute()
        if index is None:
            return None
        return int(index) + sum(int(n) for n in twin) + 1
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


@contextlib.contextmanager
def user_lock(connection: redis.Redis, owner: str, wait_s: float = 5.0, ttl_ms: int = 10_000) -> Iterator[None]:
    """Serialise one user's generation requests, so that counting their running Items and
    queuing new ones is atomic across API processes (the concurrency limit holds)."""
    lock = connection.lock(f"aimg:genlock:{owner}", timeout=ttl_ms / 1000, sleep=0.01, blocking_timeout=wait_s)
    try:
        acquired = lock.acquire()
    except redis.RedisError:
        raise ServiceUnavailable("The generation queue is unavailable; please try again later.") from None
    if not acquired:
        raise TooManyRequests("Another generation request of yours is being processed; try again.")
    try:
        yield
    finally:
        with contextlib.suppress(redis.RedisError, LockError):
            lock.release()


# --- workers seen alive ------------------------------------------------------------------------

WORKERS_KEY = "aimg:workers"  # sorted set: worker name -> last heartbeat (epoch s)
WORKERS_INFO_KEY = "aimg:workers:info"  # hash: worker name -> JSON of what it serves
WORKER_ALIVE_S = 30.0  # a worker that has not beaten for this long counts as gone


def worker_heartbeat(connection: redis.Redis, name: str, info: dict) -> None:
    import json
    import time

    pipe = connection.pipeline(transaction=False)
    pipe.zadd(WORKERS_KEY, {name: time.time()})
    pipe.hset(WORKERS_INFO_KEY, name, json.dumps(info, separators=(",", ":")))
    pipe.execute()


def worker_gone(connection: redis.Redis, name: str) -> None:
    with contextlib.suppress(redis.RedisError):
        connection.zrem(WORKERS_KEY, name)
        connection.hdel(WORKERS_INFO_KEY, name)


def live_workers(connection: redis.Redis, within_s: float = WORKER_ALIVE_S) -> list[dict]:
    """The workers that beat within ``within_s``: name, last heartbeat and what each serves."""
    import json
    import time

    now = time.time()
    beats = connection.zrangebyscore(WORKERS_KEY, now - within_s, "+inf", withscores=True)
    connection.zremrangebyscore(WORKERS_KEY, "-inf", now - 24 * 3600)  # long gone: forget them
    names = [n.decode() if isinstance(n, bytes) else n for n, _ in beats]
    infos = connection.hmget(WORKERS_INFO_KEY, names) if names else []
    out = []
    for (name, beat), info in zip(zip(names, (b for _, b in beats)), infos):
        out.append({"name": name, "lastHeartbeat": beat, **(json.loads(info) if info else {})})
    return out


def workers_alive(connection: redis.Redis) -> bool:
    """Whether any generation worker has beaten recently (``worker_heartbeat``)."""
    try:
        return connection.zcount(WORKERS_KEY, time.time() - WORKER_ALIVE_S, "+inf") > 0
    except redis.RedisError:
        return True  # unknown: say nothing rather than something false
