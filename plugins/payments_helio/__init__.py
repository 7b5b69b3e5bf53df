"""Helio (crypto payments): Pay Link / subscription links and webhooks authenticated with
the webhook's shared token (``Authorization: Bearer <sharedToken>``).

Settings (``[plugins.helio]``): ``shared_token``, ``paylinks`` (productID -> Pay Link id),
``pay_base`` (``https://app.hel.io/pay``). Events: ``CREATED`` (a Pay Link payment: one
period), ``STARTED``/``RENEWED`` (subscriptions), ``ENDED``. The payer is matched by the
email of the payment's customer details.

Helio does not sign the body: the shared token authenticates the sender, over TLS, and is
compared in constant time. A payment grants only with ``transactionStatus`` ``SUCCESS``
(a missing status is refused, never read as success).
"""
from __future__ import annotations

import datetime as dt
import hmac
import json
from urllib.parse import quote

from aimg_app.plugin_api import (
    EXPIRED,
    RENEWED,
    STARTED,
    InvalidSignature,
    MalformedWebhook,
    PaymentProcessor,
    SubscriptionEvent,
    WebhookResult,
    hookimpl,
    mapping,
    one_of,
    required,
    vendor_time,
)


class HelioProcessor(PaymentProcessor):
    identifier = "helio"
    label = "Pay with Crypto (Helio)"

    def __init__(self, settings):
        super().__init__(settings)
        self.paylinks: dict[str, dict] = {k: (v if isinstance(v, dict) else {"id": v})
                                          for k, v in self.settings.get("paylinks", {}).items()}
        self._products = {link["id"]: (product, link) for product, link in self.paylinks.items()}

    def payment_url(self, checkout):
        link = self.paylinks.get(checkout.price.product_id)
        if not link:
            return None
        base = self.settings.get("pay_base", "https://app.hel.io/pay").rstrip("/")
        return f"{base}/{quote(link['id'])}"

    def parse_webhook(self, request):
        token = self.settings.get("shared_token", "")
        given = request.header("Authorization") or ""
        if not token or not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            raise InvalidSignature("bad bearer token")
        body = request.json()
        [kind] = required(body, "event")
        one_of(kind, ("CREATED", "STARTED", "RENEWED", "ENDED"), "event")
        tx = body.get("transactionObject")
        if not tx:
            try:
                tx = json.loads(body.get("transaction") or "{}")
            except (TypeError, ValueError):
                raise MalformedWebhook("transaction is not JSON") from None
        required(tx, "id")
        product, link = self._products.get(tx.get("paylinkId"), (None, {}))
        meta = mapping(tx.get("meta"), "meta")
        at = vendor_time(tx.get("createdAt")) or request.received_at
        sub = body.get("subscriptionId") or mapping(body.get("subscription"), "subscription").get("id") or tx["id"]
        email = mapping(meta.get("customerDetails"), "customerDetails").get("email")
        days = int(link.get("days", 30))
        events = []
        if kind in ("CREATED", "STARTED", "RENEWED") and one_of(
                meta.get("transactionStatus"), ("SUCCESS", "FAILED", "PENDING", "CANCELED"),
                "transactionStatus") == "SUCCESS":
            events.append(SubscriptionEvent(
                kind=RENEWED if kind == "RENEWED" else STARTED, subscription_id=sub, occurred_at=at, email=email,
                product_id=product, period_end=at + dt.timedelta(days=days), renews=kind != "CREATED",
                payment_id=tx.get("id"), payer_id=meta.get("senderPK")))
        elif kind == "ENDED":
            # The transaction in an ENDED payload is the last payment: the end itself is now.
            events.append(SubscriptionEvent(kind=EXPIRED, subscription_id=sub, occurred_at=request.received_at,
                                            email=email))
        return WebhookResult(event_id=f"{kind}:{tx.get('id') or sub}", event_type=kind, events=events)


@hookimpl
def register_payment_processors():
    return [HelioProcessor]
