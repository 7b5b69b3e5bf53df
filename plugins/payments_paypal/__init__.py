"""PayPal Subscriptions: subscription checkout links, webhooks verified by PayPal's own
``verify-webhook-signature`` call, cancellation through the API.

Settings (``[plugins.paypal]``): ``client_id``, ``client_secret``, ``webhook_id`` (of the
webhook configured in the PayPal app), ``plans`` (productID -> PayPal plan id ``P-...``),
``api_base`` (``https://api-m.paypal.com``; ``https://api-m.sandbox.paypal.com`` to test).

Webhook endpoint: ``/webhooks/paypal``, events ``BILLING.SUBSCRIPTION.ACTIVATED``,
``PAYMENT.SALE.COMPLETED``, ``BILLING.SUBSCRIPTION.CANCELLED``, ``BILLING.SUBSCRIPTION.EXPIRED``,
``BILLING.SUBSCRIPTION.SUSPENDED``, ``PAYMENT.SALE.REFUNDED``, ``PAYMENT.SALE.REVERSED``.
"""
from __future__ import annotations

import threading
import time

import requests

from aimg_app.plugin_api import (
    CANCELLED,
    EXPIRED,
    REFUNDED,
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
    number,
    one_of,
    required,
    vendor_time,
)

TIMEOUT_S = 15
# PayPal retries a delivery for up to three days; older transmissions are refused.
DEFAULT_TOLERANCE_S = 3 * 86400 + 3600
_HEADERS = ("paypal-transmission-id", "paypal-transmission-time", "paypal-transmission-sig", "paypal-auth-algo",
            "paypal-cert-url")


_time = vendor_time


def _id(resource) -> str:
    return required(resource, "id")[0]


class PayPalProcessor(PaymentProcessor):
    identifier = "paypal"
    label = "PayPal"

    def __init__(self, settings):
        super().__init__(settings)
        self.api_base = self.settings.get("api_base", "https://api-m.paypal.com").rstrip("/")
        self.plans: dict[str, str] = dict(self.settings.get("plans", {}))
        self._products = {plan: product for product, plan in self.plans.items()}
        self._token: tuple[str, float] | None = None
        self._lock = threading.Lock()

    # -- the REST API ----------------------------------------------------------------------
    def _access_token(self) -> str:
        with self._lock:
            if self._token and self._token[1] > time.monotonic() + 60:
                return self._token[0]
            response = requests.post(f"{self.api_base}/v1/oauth2/token", data={"grant_type": "client_credentials"},
                                     auth=(self.settings.get("client_id", ""), self.settings.get("client_secret", "")),
                                     timeout=TIMEOUT_S)
            if response.status_code != 200:
                raise PaymentError("PayPal is unavailable; please try again later.", status=503)
            body = response.json()
            self._token = (body["access_token"], time.monotonic() + int(body.get("expires_in", 300)))
            return self._token[0]

    def _call(self, method: str, path: str, body=None) -> requests.Response:
        return requests.request(method, f"{self.api_base}{path}", json=body, timeout=TIMEOUT_S,
                                headers={"Authorization": f"Bearer {self._access_token()}"})

    # -- payment links ---------------------------------------------------------------------
    def payment_url(self, checkout):
        # PayPal sends the buyer back to redirectURL: without one there is no link.
        if checkout.price.product_id in self.plans and checkout.redirect_url and self.settings.get("client_id"):
            return checkout.checkout_url
        return None

    def start_checkout(self, checkout):
        if not checkout.redirect_url:
            raise PaymentError("redirectURL is required to pay with PayPal.")
        body = {"plan_id": self.plans[checkout.price.product_id], "custom_id": checkout.payer.user_id,
                "subscriber": {"email_address": checkout.payer.email},
                "application_context": {"brand_name": checkout.domain.display_name, "user_action": "SUBSCRIBE_NOW",
                                        "return_url": checkout.redirect_url, "cancel_url": checkout.redirect_url}}
        response = self._call("POST", "/v1/billing/subscriptions", body)
        if response.status_code not in (200, 201):
            raise PaymentError("PayPal could not start the subscription; please try again later.", status=503)
        approve = next((link["href"] for link in response.json().get("links", []) if link.get("rel") == "approve"), None)
        if not approve:
            raise PaymentError("PayPal could not start the subscription; please try again later.", status=503)
        return approve

    # -- webhooks --------------------------------------------------------------------------
    def parse_webhook(self, request):
        headers = {name: request.header(name) for name in _HEADERS}
        if not all(headers.values()):
            raise InvalidSignature("missing PayPal transmission headers")
        if not self.settings.get("webhook_id"):
            raise InvalidSignature("no webhook_id configured")
        try:
            sent = _time(headers["paypal-transmission-time"])
        except MalformedWebhook:
            raise InvalidSignature("unreadable transmission time") from None
        tolerance = int(self.settings.get("tolerance_s", DEFAULT_TOLERANCE_S))
        if abs((request.received_at - sent).total_seconds()) > tolerance:
            raise InvalidSignature("stale transmission")
        event = request.json()
        required(event, "id", "event_type", "resource")
        verdict = self._call("POST", "/v1/notifications/verify-webhook-signature", {
            "auth_algo": headers["paypal-auth-algo"], "cert_url": headers["paypal-cert-url"],
            "transmission_id": headers["paypal-transmission-id"], "transmission_sig": headers["paypal-transmission-sig"],
            "transmission_time": headers["paypal-transmission-time"], "webhook_id": self.settings.get("webhook_id", ""),
            "webhook_event": event})
        if verdict.status_code != 200 or verdict.json().get("verification_status") != "SUCCESS":
            raise InvalidSignature("PayPal did not verify the transmission")
        return WebhookResult(event_id=event["id"], event_type=event["event_type"], events=self._events(event))

    def _events(self, event) -> list[SubscriptionEvent]:
        kind, res = event["event_type"], mapping(event.get("resource"), "resource")
        at = _time(event.get("create_time"))
        if kind == "BILLING.SUBSCRIPTION.ACTIVATED":
            one_of(res.get("status"), ("ACTIVE",), "subscription status")
            subscriber = mapping(res.get("subscriber"), "subscriber")
            return [SubscriptionEvent(
                kind=STARTED, subscription_id=_id(res), occurred_at=at, user_id=res.get("custom_id"),
                email=subscriber.get("email_address"), product_id=self._products.get(res.get("plan_id")),
                period_end=_time(mapping(res.get("billing_info"), "billing_info").get("next_billing_time")),
                payer_id=subscriber.get("payer_id"))]
        if kind == "PAYMENT.SALE.COMPLETED" and res.get("billing_agreement_id"):
            one_of(res.get("state"), ("completed",), "sale state")
            sub_id = res["billing_agreement_id"]
            # The sale does not say until when it pays: PayPal's subscription does.
            current = self._call("GET", f"/v1/billing/subscriptions/{sub_id}")
            if current.status_code != 200:
                raise PaymentError("PayPal is unavailable; please try again later.", status=503)
            info = current.json()
            amount = mapping(res.get("amount"), "amount")
            return [SubscriptionEvent(
                kind=RENEWED, subscription_id=sub_id, occurred_at=at, user_id=res.get("custom") or info.get("custom_id"),
                product_id=self._products.get(info.get("plan_id")),
                period_end=_time((info.get("billing_info") or {}).get("next_billing_time")), payment_id=_id(res),
                amount=number(amount["total"], "amount") if amount.get("total") else None, currency=amount.get("currency"))]
        if kind == "BILLING.SUBSCRIPTION.CANCELLED":
            return [SubscriptionEvent(kind=CANCELLED, subscription_id=_id(res), occurred_at=at)]
        if kind in ("BILLING.SUBSCRIPTION.EXPIRED", "BILLING.SUBSCRIPTION.SUSPENDED"):
            return [SubscriptionEvent(kind=EXPIRED, subscription_id=_id(res), occurred_at=at)]
        if kind in ("PAYMENT.SALE.REFUNDED", "PAYMENT.SALE.REVERSED"):
            sale = res.get("sale_id") or res.get("id")
            return [SubscriptionEvent(kind=REFUNDED, subscription_id=None, occurred_at=at, payment_id=sale)]
        return []

    def cancel_at_period_end(self, subscription):
        # A cancelled PayPal subscription bills no more; the paid period is kept.
        response = self._call("POST", f"/v1/billing/subscriptions/{subscription.subscription_id}/cancel",
                              {"reason": "Cancelled by the member"})
        if response.status_code not in (200, 204):
            raise PaymentError("PayPal could not cancel the subscription; please try again later.", status=503)
        return True


@hookimpl
def register_payment_processors():
    return [PayPalProcessor]
