"""Rate limits inside services (the endpoint-level ones use flask-limiter)."""
from __future__ import annotations

from limits import parse

from ..errors import TooManyRequests


def enforce(limiter, limit: str, namespace: str, key: str, message: str) -> None:
    """Count one hit of ``key`` against ``limit`` ("5 per hour"); 429 when over it."""
    if not limiter.hit(parse(limit), namespace, key):
        raise TooManyRequests(message)
