"""A payment vendor's webhook: verified by its processor, kept in the ledger before it is
acted on, applied once.

A processor signals a delivery it refuses with the plugin API's exceptions
(``InvalidSignature``, ``MalformedWebhook``): recorded as rejected, answered 400, so the
vendor stops retrying a delivery that can never succeed. Any other exception is the
plugin's bug: it propagates (logged, 500), and the vendor retries the delivery once the bug
is fixed, so no payment is lost to it.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import BadRequest
from ..plugin_api import InvalidSignature, MalformedWebhook, PaymentProcessor, WebhookRequest
from . import ledger


@dataclass(frozen=True)
class Received:
    outcome: str  # "applied", "duplicate", ...
    response_text: str | None  # what the vendor expects back, when it expects text


def receive(resources, processor: PaymentProcessor, domain, incoming: WebhookRequest, payload: str) -> Received:
    """``payload``: the delivery as text (body, else query string), as the ledger keeps it."""
    try:
        result = processor.parse_webhook(incoming)
    except InvalidSignature as exc:
        ledger.record_rejected(resources.pg, processor.identifier, domain.identifier, str(exc) or "invalid signature",
                               payload, incoming.remote_addr)
        raise BadRequest("The webhook could not be verified.") from None
    except MalformedWebhook as exc:
        ledger.record_rejected(resources.pg, processor.identifier, domain.identifier, f"malformed payload: {exc}",
                               payload, incoming.remote_addr)
        raise BadRequest("The webhook payload is malformed.") from None
    outcome = ledger.process(resources.pg, processor=processor.identifier, domain=domain.identifier,
                             event_id=result.event_id, event_type=result.event_type, events=result.events,
                             payload=payload, remote_addr=incoming.remote_addr, env=domain.environment,
                             review=result.review)
    return Received(outcome, result.response_text)
