"""Idempotent submits: an ``Idempotency-Key`` makes a repeated request answer the first
answer again (for 24 h) instead of doing the work twice."""
from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Callable

import redis

from ..errors import BadRequest, Conflict, ServiceUnavailable

TTL_S = 24 * 3600
PENDING_TTL_S = 120
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def run_once(connection: redis.Redis, *, scope: str, key: str | None, request: Any, work: Callable[[], Any]) -> Any:
    """``work()`` once per (``scope``, ``key``); a repeat with the same request returns the
    stored answer; the same key with another request is 409; a failed ``work`` stores nothing."""
    if key is None:
        return work()
    if not _KEY.match(key):
        raise BadRequest("Idempotency-Key must be 1-255 printable ASCII characters.")
    fingerprint = hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()
    rkey = "aimg:idem:" + hashlib.sha256(f"{scope}\n{key}".encode()).hexdigest()
    try:
        claimed = connection.set(rkey, json.dumps({"pending": True, "fingerprint": fingerprint}), nx=True,
                                 ex=PENDING_TTL_S)
        if not claimed:
            stored = json.loads(connection.get(rkey) or "{}")
            if stored.get("fingerprint") != fingerprint:
                raise Conflict("This Idempotency-Key was already used with a different request.")
            if stored.get("pending"):
                raise Conflict("A request with this Idempotency-Key is still being processed.")
            return stored["answer"]
    except redis.RedisError:
        raise ServiceUnavailable("Please try again later.") from None
    try:
        answer = work()
    except BaseException:
        connection.delete(rkey)
        raise
    connection.set(rkey, json.dumps({"fingerprint": fingerprint, "answer": answer}), ex=TTL_S)
    return answer
