"""The payment event ledger (PostgreSQL ``payment_events``).

A delivery is stored (committed) before anything acts on it. Acting on it happens inside a
transaction holding the row's lock, so a duplicate delivered at the same moment waits and
then finds it applied; a duplicate delivered later finds it applied at once. A delivery
that could not be applied (a fault, or "retry later") stays ``received`` and is applied
when the vendor sends it again.
"""
from __future__ import annotations

import json
import logging
from typing import Callable, Iterable

from psycopg_pool import ConnectionPool

from ..errors import ServiceUnavailable
from ..plugin_api import SubscriptionEvent
from . import subscriptions

log = logging.getLogger("aimg.billing")

MAX_PAYLOAD_CHARS = 64_000


def _clip(text: str | None) -> str | None:
    return None if text is None else text[:MAX_PAYLOAD_CHARS]


def record_rejected(pool: ConnectionPool, processor: str, domain: str, reason: str, payload: str | None,
                    remote_addr: str | None) -> None:
    """Keep a refused delivery (bad signature...) for the record; it is never acted on."""
    with pool.connection() as conn:
        conn.execute("INSERT INTO payment_events (processor, event_id, event_type, domain, status, detail, payload, "
                     "remote_addr, processed_at) VALUES (%s, NULL, 'rejected', %s, 'rejected', %s, %s, %s, now())",
                     (processor, domain, reason[:500], _clip(payload), remote_addr))
    log.warning("payment webhook refused", extra={"processor": processor, "reason": reason[:200]})


def process(pool: ConnectionPool, *, processor: str, domain: str, event_id: str, event_type: str,
            events: Iterable[SubscriptionEvent], payload: str | None = None, remote_addr: str | None = None,
            env: str | None = None, apply: Callable[[SubscriptionEvent], object] | None = None,
            review: str | None = None) -> str:
    """Record the delivery ``event_id`` of ``processor``, then apply its events once.

    Returns ``applied``, ``ignored`` (nothing to act on: unknown user or product, recorded
    with the reason), ``review`` (an authentic payment nothing binds to an account: kept, with
    the reason, for an admin; ``review`` given by the processor means none of ``events`` is
    applied) or ``duplicate``. Raises ServiceUnavailable (the vendor retries) when an
    event refers to something not seen yet.
    """
    events = list(events)
    apply = apply or (lambda event: subscriptions.apply_event(domain, processor, event, env))
    with pool.connection() as conn:
        conn.execute("INSERT INTO payment_events (processor, event_id, event_type, domain, status, payload, remote_addr)"
                     " VALUES (%s, %s, %s, %s, 'received', %s, %s) ON CONFLICT (processor, event_id) DO NOTHING",
                     (processor, event_id, event_type[:200], domain, _clip(payload), remote_addr))
        conn.commit()
        retry: str | None = None
        with conn.transaction():
            row = conn.execute("SELECT id, status FROM payment_events WHERE processor = %s AND event_id = %s FOR UPDATE",
                               (processor, event_id)).fetchone()
            if row[1] in ("applied", "ignored", "review"):
                return "duplicate"
            ignored: list[str] = []
            reviews: list[str] = [review] if review else []
            try:
                for event in [] if review else events:
                    try:
                        apply(event)
                    except subscriptions.Unmatched as exc:
                        ignored.append(str(exc))
                    except subscriptions.Review as exc:
                        reviews.append(str(exc))
            except subscriptions.RetryLater as exc:
                retry = str(exc)
            if retry is None:
                status = "review" if reviews else (
                    "ignored" if ignored and len(ignored) == len(events) or not events else "applied")
                detail = json.dumps(reviews + ignored) if reviews or ignored else None
                conn.execute("UPDATE payment_events SET status = %s, detail = %s, attempts = attempts + 1, "
                             "processed_at = now() WHERE id = %s", (status, detail, row[0]))
            else:
                conn.execute("UPDATE payment_events SET detail = %s, attempts = attempts + 1 WHERE id = %s",
                             (retry[:500], row[0]))
    if retry is not None:
        raise ServiceUnavailable("This event cannot be processed yet; please retry.")
    if status == "review":
        log.warning("payment held for review", extra={"processor": processor, "event_id": event_id})
    return status
