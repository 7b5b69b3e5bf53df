"""Generation events per owner (a user, or an anonymous session), pushed to ``GET /events``.

Each owner has one Redis Stream, capped at ``STREAM_MAX`` entries and expiring a day after
its last event, so a reconnecting browser (``Last-Event-ID`` = a stream id) gets what it
missed and nothing twice. ``publish_items`` is the one writer: it reads the Items' current
state, so an event says what ``getItemStatus`` would say at that moment.
"""
from __future__ import annotations

import json
import re
import logging
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable, Iterator

import redis

log = logging.getLogger("aimg.events")

STREAM_MAX = 500  # events kept per owner: far more than one front-end misses between reconnects
STREAM_TTL_S = 86400
MAX_READERS = 10_000  # concurrent streams per API process
BLOCK_MS = 10_000  # one wait for new events; a keep-alive comment is sent after each empty one
KINDS = ("queued", "started", "progress", "completed", "failed", "cancelled")
_STATUS_KIND = {"queued": "queued", "running": "progress", "completed": "completed", "failed": "failed",
                "cancelled": "cancelled"}
_STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")


def stream_key(owner: str) -> str:
    return f"aimg:events:{owner}"


def publish(connection: redis.Redis, owner: str, kind: str, data: dict) -> str | None:
    """Append one event; a Redis failure is logged, never raised (the generation goes on)."""
    try:
        pipe = connection.pipeline(transaction=False)
        pipe.xadd(stream_key(owner), {"event": kind, "data": json.dumps(data, separators=(",", ":"))},
                  maxlen=STREAM_MAX, approximate=True)
        pipe.expire(stream_key(owner), STREAM_TTL_S)
        event_id = pipe.execute()[0]
        return event_id.decode() if isinstance(event_id, bytes) else event_id
    except redis.RedisError:
        log.warning("publishing a generation event failed", extra={"owner": owner, "event": kind})
        return None


def publish_items(connection: redis.Redis, items: Iterable, kind: str | None = None,
                  position: int | None = None) -> None:
    """One event per Item, from its current state (``kind`` defaults to what its status means).
    ``items`` are Item ids (read here, in one query) or the Items as their writer just left
    them (Item documents, or ``ItemView``s): then nothing is read back."""
    from ..models.item import Item
    from .generation import status_of

    items = list(items)
    ids = [i for i in items if isinstance(i, str)]
    known = [i for i in items if not isinstance(i, str)]
    for item in known + (list(Item.objects(id__in=ids)) if ids else []):
        data = asdict(status_of(item, None, position))
        publish(connection, item.user_id, kind or _STATUS_KIND.get(item.status, item.status), data)


@dataclass
class ItemView:
    """An Item as a worker just left it (started, completed), with the fields ``status_of``
    reads: its event costs no read back."""

    id: str
    user_id: str
    status: str
    mtype: str = "image"
    progress: float = 0.0
    ignored_words: list = field(default_factory=list)
    folder_id: str | None = None
    url: str | None = None
    error_message: str | None = None
    frames: list = field(default_factory=list)


_readers: dict[str, redis.Redis] = {}
_readers_lock = threading.Lock()


def reader_connection(url: str) -> redis.Redis:
    """A client whose socket waits longer than one blocking read (the shared one gives up sooner)."""
    with _readers_lock:
        if url not in _readers:
            # One connection per open stream (a blocking read holds it).
            _readers[url] = redis.Redis.from_url(url, socket_timeout=BLOCK_MS / 1000 + 10, socket_connect_timeout=5,
                                                 max_connections=MAX_READERS)
        return _readers[url]


# --- open streams per owner and per client address ----------------------------------------
# Each open stream holds a slot: a member of a Redis sorted set per key, scored by when its
# lease ends. The stream renews the lease at every wake (at most BLOCK_MS apart) and gives
# the slot back when its response is closed (the WSGI server closes it when the client goes
# away, at the next write that fails); a process that dies leaves leases that simply lapse.
SLOT_LEASE_S = 3 * BLOCK_MS / 1000

# Atomically, for every key: forget lapsed slots; if any key is full, take nothing and
# answer its position; else take a slot under every key.
_TAKE = """
local now, lease_end, token = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if redis.call('ZCARD', key) >= tonumber(ARGV[3 + i]) then return i end
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, lease_end, token)
  redis.call('EXPIRE', key, math.ceil(lease_end - now) + 1)
end
return 0
"""


def slot_keys(owner: str, client: str) -> list[str]:
    return [f"aimg:events:slots:owner:{owner}", f"aimg:events:slots:client:{client}"]


def take_slot(connection: redis.Redis, keys: list[str], caps: list[int], token: str) -> int:
    """0 when ``token`` now holds a slot under every key, else the 1-based position of the
    key that is full (nothing taken)."""
    now = time.time()
    return int(connection.eval(_TAKE, len(keys), *keys, now, now + SLOT_LEASE_S, token, *caps))


def renew_slot(connection: redis.Redis, keys: list[str], token: str) -> None:
    until = time.time() + SLOT_LEASE_S
    pipe = connection.pipeline(transaction=False)
    for key in keys:
        pipe.zadd(key, {token: until}, xx=True)
        pipe.expire(key, int(SLOT_LEASE_S) + 1)
    pipe.execute()


def release_slot(connection: redis.Redis, keys: list[str], token: str) -> None:
    try:
        pipe = connection.pipeline(transaction=False)
        for key in keys:
            pipe.zrem(key, token)
        pipe.execute()
    except redis.RedisError:
        log.warning("releasing an events slot failed; its lease lapses by itself")


def valid_event_id(value: str | None) -> str | None:
    return value.strip() if value and _STREAM_ID.match(value.strip()) else None


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else value


def stream(connection: redis.Redis, owner: str, last_id: str | None, max_seconds: float,
           render: Callable[[dict], str], block_ms: int = BLOCK_MS,
           renew: Callable[[], bool | None] | None = None) -> Iterator[str]:
    """Server-Sent Events text for ``owner`` after ``last_id`` (None: from now on), for at most
    ``max_seconds`` (the browser then reconnects with ``Last-Event-ID``). ``render`` turns an
    event's stored GenerationStatus (its fields) into the ``data`` line's JSON; ``renew`` is
    called at every wake (the stream's slot lease); when it answers False the stream ends."""
    key = stream_key(owner)
    if last_id is None:
        try:
            newest = connection.xrevrange(key, count=1)
        except redis.RedisError:
            log.warning("reading generation events failed; the stream ends and the browser reconnects")
            return
        last_id = _text(newest[0][0]) if newest else "0-0"
    deadline = time.monotonic() + max_seconds
    yield "retry: 1000\n\n"
    while time.monotonic() < deadline:
        wait = int(min(block_ms, max(1.0, (deadline - time.monotonic()) * 1000)))
        try:
            answer = connection.xread({key: last_id}, count=100, block=wait)
            # after the wait, before anything is sent: the lease, and whether the owner is still signed in
            if renew is not None and renew() is False:
                return
        except redis.RedisError:
            log.warning("reading generation events failed; the stream ends and the browser reconnects")
            return
        if not answer:
            yield ": keep-alive\n\n"
            continue
        for event_id, fields in answer[0][1]:
            last_id = _text(event_id)
            fields = {_text(k): _text(v) for k, v in fields.items()}
            yield f"id: {last_id}\nevent: {fields['event']}\ndata: {render(json.loads(fields['data']))}\n\n"
