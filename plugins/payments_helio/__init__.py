"""Helio (crypto payments): a single-use Charge of the product's Pay Link (or subscription
link) per buyer, created through Helio's API when the buyer follows our checkout link, and
webhooks authenticated with the webhook's shared token (``Authorization: Bearer <sharedToken>``).

Settings (``[plugins.helio]``): ``shared_token``, ``paylinks`` (productID -> Pay Link id),
``api_key`` (public) and ``api_secret`` (Helio's API keys, for Charges), ``api_base``
(``https://api.hel.io``). Events: ``CREATED`` (a Pay Link payment: one period),
``STARTED``/``RENEWED`` (subscriptions), ``ENDED``.

The payer is the account that started the checkout: the Charge carries our reference in
``customerDetails.additionalJSON`` (Helio's pass-through field), which the webhook returns in
the transaction's ``meta.customerDetails``. The customer email is what the buyer typed, and
Helio does not verify it: a payment without our reference is never granted by that email,
it is held for review.

Helio does not sign the body: the shared token authenticates the sender, over TLS, and is
compared in constant time. A payment grants only with ``transactionStatus`` ``SUCCESS``
(a missing status is refused, never read as success).
"""
from __future__ import annotations

import datetime as dt
import hmac
import json

import requests

from aimg_app.plugin_api import (
    EMAIL_UNVERIFIED,
    EXPIRED,
    RENEWED,
    STARTED,
    InvalidSignature,
    MalformedWebhook,
    PaymentError,
    PaymentProcessor,
    SubscriptionEvent,
    WebhookResult,
    hookimpl,
    mapping,
    one_of,
    required,
    vendor_time,
)

TIMEOUT_S = 20
REFERENCE_KEY = "aimgRef"  # our key inside the Charge's additionalJSON


class HelioProcessor(PaymentProcessor):
    identifier = "helio"
    label = "Pay with Crypto (Helio)"

    def __init__(self, settings):
        super().__init__(settings)
        self.paylinks: dict[str, dict] = {k: (v if isinstance(v, dict) else {"id": v})
                                          for k, v in self.settings.get("paylinks", {}).items()}
        self._products = {link["id"]: (product, link) for product, link in self.paylinks.items()}

    def payment_url(self, checkout):
        # A shared Pay Link cannot say who pays: only a Charge made for this buyer can.
        s = self.settings
        if not (checkout.payer and checkout.price.product_id in self.paylinks and s.get("api_key")
                and s.get("api_secret")):
            return None
        return checkout.checkout_url

    def start_checkout(self, checkout):
        link = self.paylinks.get(checkout.price.product_id)
        if not link or not checkout.reference:
            raise PaymentError("This plan cannot be bought with Helio.")
        s = self.settings
        body = {"paymentRequestId": link["id"], "prepareRequestBody": {
            "customerDetails": {"additionalJSON": json.dumps({REFERENCE_KEY: checkout.reference})}}}
        try:
            response = requests.post(f"{s.get('api_base', 'https://api.hel.io').rstrip('/')}/v1/charge/api-key",
                                     params={"apiKey": s.get("api_key", "")}, json=body, timeout=TIMEOUT_S,
                                     headers={"Authorization": f"Bearer {s.get('api_secret', '')}"})
        except requests.RequestException:
            raise PaymentError("Helio is unavailable; please try again later.", status=503) from None
        url = response.json().get("pageUrl") if response.status_code in (200, 201) else None
        if not isinstance(url, str) or not url.startswith("https://"):
            raise PaymentError("Helio could not start the payment; please try again later.", status=503)
        return url

    @staticmethod
    def _reference(details) -> str | None:
        """Our reference from the customer details' additionalJSON (a JSON text, or an object)."""
        extra = details.get("additionalJSON")
        if isinstance(extra, str):
            try:
                extra = json.loads(extra)
            except ValueError:
                return None
        return extra.get(REFERENCE_KEY) if isinstance(extra, dict) else None

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
        details = mapping(meta.get("customerDetails"), "customerDetails")
        email = details.get("email")
        reference = request.reference_of(self._reference(details))
        user_id = reference.user_id if reference is not None and reference.product_id == product else None
        days = int(link.get("days", 30))
        events = []
        if kind in ("CREATED", "STARTED", "RENEWED") and one_of(
                meta.get("transactionStatus"), ("SUCCESS", "FAILED", "PENDING", "CANCELED"),
                "transactionStatus") == "SUCCESS":
            events.append(SubscriptionEvent(
                kind=RENEWED if kind == "RENEWED" else STARTED, subscription_id=sub, occurred_at=at, user_id=user_id,
                email=email, email_source=EMAIL_UNVERIFIED, product_id=product, period_end=at + dt.timedelta(days=days), renews=kind != "CREATED",
                payment_id=tx.get("id"), payer_id=meta.get("senderPK")))
        elif kind == "ENDED":
            # The transaction in an ENDED payload is the last payment: the end itself is now.
            events.append(SubscriptionEvent(kind=EXPIRED, subscription_id=sub, occurred_at=request.received_at,
                                            email=email, email_source=EMAIL_UNVERIFIED))
        return WebhookResult(event_id=f"{kind}:{tx.get('id') or sub}", event_type=kind, events=events)


@hookimpl
def register_payment_processors():
    return [HelioProcessor]
