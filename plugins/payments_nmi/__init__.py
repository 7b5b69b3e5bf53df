"""NMI (Network Merchants) gateway: card subscriptions through the Direct Post API
(``recurring=add_subscription``), webhooks signed with ``Webhook-Signature:
t=<nonce>,s=<HMAC-SHA256(signing key, nonce + "." + body)>``, cancellation through
``recurring=delete_subscription``.

Settings (``[plugins.nmi]``): ``security_key``, ``signing_key`` (webhooks), ``plans``
(productID -> NMI plan id), ``api_base`` (``https://secure.nmi.com``).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from urllib.parse import parse_qsl, urlencode, urlsplit

import requests

from aimg_app.plugin_api import (
    CANCELLED,
    PERIOD_DAYS,
    REFUNDED,
    RENEWED,
    CardCharge,
    InvalidSignature,
    PaymentError,
    PaymentProcessor,
    SubscriptionEvent,
    WebhookResult,
    hookimpl,
    mapping,
    required,
    vendor_time,
)

TIMEOUT_S = 30


class NmiProcessor(PaymentProcessor):
    identifier = "nmi"
    label = "Credit card (NMI)"
    accepts_cards = True

    def __init__(self, settings):
        super().__init__(settings)
        self.api_base = self.settings.get("api_base", "https://secure.nmi.com").rstrip("/")
        self.plans: dict[str, str] = dict(self.settings.get("plans", {}))

    def payment_url(self, checkout):
        if not checkout.payment_page_url or checkout.price.product_id not in self.plans:
            return None
        sep = "&" if urlsplit(checkout.payment_page_url).query else "?"
        return f"{checkout.payment_page_url}{sep}{urlencode({'productID': checkout.price.product_id, 'merchantProcessor': self.identifier})}"

    def _transact(self, fields: dict) -> dict:
        response = requests.post(f"{self.api_base}/api/transact.php", timeout=TIMEOUT_S,
                                 data={"security_key": self.settings.get("security_key", ""), **fields})
        if response.status_code != 200:
            raise PaymentError("The card payment service is unavailable; please try again later.", status=503)
        return dict(parse_qsl(response.text))

    def charge_card(self, card, checkout):
        plan = self.plans.get(checkout.price.product_id)
        if not plan:
            raise PaymentError("This product cannot be paid by card here.")
        names = card.holder_name.split(" ", 1)
        answer = self._transact({
            "recurring": "add_subscription", "plan_id": plan, "ccnumber": card.number,
            "ccexp": f"{card.expiration_month:02d}{card.expiration_year % 100:02d}", "cvv": card.security_code,
            "first_name": names[0], "last_name": names[1] if len(names) > 1 else "", "address1": card.street or "",
            "city": card.city or "", "state": card.state_or_province or "", "zip": card.postal_code or "",
            "country": card.country or "", "email": card.email or checkout.payer.email,
            "phone": card.phone_number or "", "order_id": checkout.payer.user_id})
        if answer.get("response") != "1" or not answer.get("subscription_id"):
            raise PaymentError("Your card was declined.")
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        days = PERIOD_DAYS.get(checkout.price.period)
        return CardCharge(subscription_id=answer["subscription_id"], occurred_at=now,
                          period_end=now + dt.timedelta(days=days) if days else None,
                          payment_id=answer.get("transactionid"), payer_id=checkout.payer.user_id, renews=bool(days))

    def parse_webhook(self, request):
        header = request.header("Webhook-Signature") or ""
        parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
        nonce, signature = parts.get("t", ""), parts.get("s", "")
        key = self.settings.get("signing_key", "")
        expected = hmac.new(key.encode(), nonce.encode() + b"." + request.body, hashlib.sha256).hexdigest()
        if not key or not nonce or not hmac.compare_digest(signature.encode(), expected.encode()):
            raise InvalidSignature("bad Webhook-Signature")
        event = request.json()
        required(event, "event_id", "event_type", "event_body")
        body = mapping(event["event_body"], "event_body")
        at = vendor_time(mapping(body.get("action"), "action").get("date"), "%Y%m%d%H%M%S") or request.received_at
        kind = event["event_type"]
        events = []
        subscription = mapping(body.get("subscription"), "subscription")
        sub = subscription.get("subscription_id") or body.get("subscription_id")
        if kind == "transaction.sale.success" and sub:
            until = subscription.get("next_charge_date")
            events.append(SubscriptionEvent(kind=RENEWED, subscription_id=sub, occurred_at=at,
                                            period_end=vendor_time(until, "%Y%m%d"),
                                            payment_id=body.get("transaction_id")))
        elif kind == "recurring.subscription.delete" and sub:
            events.append(SubscriptionEvent(kind=CANCELLED, subscription_id=sub, occurred_at=at))
        elif kind in ("transaction.refund.success", "chargeback.batch.complete"):
            original = body.get("original_transaction_id") or body.get("transaction_id")
            events.append(SubscriptionEvent(kind=REFUNDED, subscription_id=None, occurred_at=at, payment_id=original))
        return WebhookResult(event_id=event["event_id"], event_type=kind, events=events)

    def cancel_at_period_end(self, subscription):
        answer = self._transact({"recurring": "delete_subscription", "subscription_id": subscription.subscription_id})
        if answer.get("response") != "1":
            raise PaymentError("The subscription could not be cancelled; please try again later.", status=503)
        return True


@hookimpl
def register_payment_processors():
    return [NmiProcessor]
