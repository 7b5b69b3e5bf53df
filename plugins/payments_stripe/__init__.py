"""Stripe: Checkout Sessions for payment links, signed webhooks, cancel at period end.

Settings (``[plugins.stripe]``): ``api_key`` (secret key), ``webhook_secret`` (the
endpoint's ``whsec_...``), optional ``prices`` (productID -> Stripe price id; without one,
the price is sent inline as ``price_data``), ``tolerance_s`` (300), ``api_base`` (tests).

Webhook endpoint: ``/webhooks/stripe``, events ``invoice.paid``, ``checkout.session.completed``,
``checkout.session.async_payment_succeeded`` (a one-time payment grants only once its
``payment_status`` is ``paid``),
``customer.subscription.updated``, ``customer.subscription.deleted``, ``charge.refunded``,
``charge.dispute.created``. Signatures are verified by the official SDK
(``Stripe-Signature``, HMAC-SHA256 over ``t.payload``, timestamp tolerance).
"""
from __future__ import annotations

import datetime as dt
import logging

try:
    import stripe
except ImportError:  # the ``stripe`` extra is not installed: this processor alone is off
    stripe = None

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
    epoch_seconds,
    hookimpl,
    mapping,
    number,
    one_of,
    required,
)

_INTERVALS = {"daily": "day", "monthly": "month", "yearly": "year"}
_ZERO_DECIMAL = {"JPY"}


def _list(value, name: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedWebhook(f"{name} is not a list")
    return value


def _latest(stamps) -> dt.datetime | None:
    """The latest of some Unix timestamps (None when there is none)."""
    return max((t for t in map(epoch_seconds, stamps) if t is not None), default=None)


class StripeProcessor(PaymentProcessor):
    identifier = "stripe"
    label = "Stripe"

    def __init__(self, settings):
        super().__init__(settings)
        base = self.settings.get("api_base")
        self._client = stripe.StripeClient(
            self.settings.get("api_key") or "sk_unconfigured", max_network_retries=1,
            base_addresses={"api": base} if base else None)

    @property
    def configured(self) -> bool:
        return bool(self.settings.get("api_key") and self.settings.get("webhook_secret"))

    def payment_url(self, checkout):
        return checkout.checkout_url if self.configured else None

    def start_checkout(self, checkout):
        price, payer = checkout.price, checkout.payer
        origin = checkout.domain.origins[0] if checkout.domain.origins else f"https://{checkout.domain.identifier}"
        back = checkout.redirect_url or f"{origin}/pro"
        metadata = {"userId": payer.user_id, "productId": price.product_id}
        recurring = price.period in _INTERVALS
        line = {"quantity": 1}
        if price.product_id in self.settings.get("prices", {}):
            line["price"] = self.settings["prices"][price.product_id]
        else:
            factor = 1 if price.currency in _ZERO_DECIMAL else 100
            line["price_data"] = {"currency": price.currency.lower(), "unit_amount": int(round(price.value * factor)),
                                  "product_data": {"name": f"{price.plan_name} ({price.period})"}}
            if recurring:
                line["price_data"]["recurring"] = {"interval": _INTERVALS[price.period]}
        params = {"mode": "subscription" if recurring else "payment", "line_items": [line],
                  "success_url": back, "cancel_url": back, "client_reference_id": payer.user_id,
                  "customer_email": payer.email, "metadata": metadata}
        if recurring:
            params["subscription_data"] = {"metadata": metadata}
            if price.trial_days:
                params["subscription_data"]["trial_period_days"] = price.trial_days
        else:
            params["payment_intent_data"] = {"metadata": metadata}
        try:
            session = self._client.v1.checkout.sessions.create(params=params)
        except stripe.StripeError:
            raise PaymentError("Stripe could not start the checkout; please try again later.", status=503) from None
        return session.url

    def parse_webhook(self, request):
        header = request.header("Stripe-Signature")
        if not header:
            raise InvalidSignature("no Stripe-Signature header")
        try:
            stripe.Webhook.construct_event(request.body, header, self.settings.get("webhook_secret") or "",
                                           tolerance=int(self.settings.get("tolerance_s", 300)))
        except stripe.SignatureVerificationError as exc:
            raise InvalidSignature(str(exc)[:200]) from None
        event = request.json()
        required(event, "id", "type", "created", "data")
        return WebhookResult(event_id=event["id"], event_type=event["type"], events=self._events(event))

    def _events(self, event) -> list[SubscriptionEvent]:
        [obj] = required(mapping(event["data"], "data"), "object")
        kind, obj, at = event["type"], mapping(obj, "data.object"), epoch_seconds(event["created"])
        if kind == "invoice.paid":
            one_of(obj.get("status"), ("paid",), "invoice status")
            parent = mapping(mapping(obj.get("parent"), "parent").get("subscription_details"), "subscription_details")
            sub_id = obj.get("subscription") or parent.get("subscription")
            meta = mapping(mapping(obj.get("subscription_details"), "subscription_details").get("metadata")
                           or parent.get("metadata"), "metadata")
            if not sub_id:
                return []
            period_end = _latest(mapping(mapping(line, "line").get("period"), "period").get("end")
                                 for line in _list(mapping(obj.get("lines"), "lines").get("data"), "lines"))
            factor = 1 if str(obj.get("currency") or "").upper() in _ZERO_DECIMAL else 100
            return [SubscriptionEvent(
                kind=STARTED if obj.get("billing_reason") == "subscription_create" else RENEWED,
                subscription_id=sub_id, occurred_at=at, user_id=meta.get("userId"), email=obj.get("customer_email"),
                product_id=meta.get("productId"), period_end=period_end, payer_id=obj.get("customer"),
                payment_id=obj.get("payment_intent") or required(obj, "id")[0],
                amount=number(obj.get("amount_paid") or 0, "amount_paid") / factor,
                currency=str(obj.get("currency") or "").upper() or None)]
        if kind in ("checkout.session.completed", "checkout.session.async_payment_succeeded") \
                and obj.get("mode") == "payment":
            # A session completes before a delayed payment method has paid: only "paid" grants.
            if one_of(obj.get("payment_status"), ("paid", "unpaid", "no_payment_required"),
                      "payment_status") != "paid":
                return []
            meta = mapping(obj.get("metadata"), "metadata")
            return [SubscriptionEvent(kind=STARTED, subscription_id=required(obj, "id")[0], occurred_at=at,
                                      user_id=obj.get("client_reference_id") or meta.get("userId"),
                                      product_id=meta.get("productId"), period_end=None, renews=False,
                                      payer_id=obj.get("customer"), payment_id=obj.get("payment_intent"))]
        if kind == "customer.subscription.updated":
            meta = mapping(obj.get("metadata"), "metadata")
            period_end = epoch_seconds(obj.get("current_period_end")) or _latest(
                mapping(item, "item").get("current_period_end")
                for item in _list(mapping(obj.get("items"), "items").get("data"), "items"))
            if obj.get("cancel_at_period_end") or obj.get("cancel_at"):
                return [SubscriptionEvent(kind=CANCELLED, subscription_id=required(obj, "id")[0], occurred_at=at,
                                          user_id=meta.get("userId"), product_id=meta.get("productId"),
                                          period_end=period_end)]
            return []
        if kind == "customer.subscription.deleted":
            return [SubscriptionEvent(kind=EXPIRED, subscription_id=required(obj, "id")[0], occurred_at=at)]
        if kind in ("charge.refunded", "charge.dispute.created"):
            payment = obj.get("payment_intent") or obj.get("invoice")
            if not payment:
                return []
            return [SubscriptionEvent(kind=REFUNDED, subscription_id=None, occurred_at=at, payment_id=payment)]
        return []

    def cancel_at_period_end(self, subscription):
        try:
            self._client.v1.subscriptions.update(subscription.subscription_id, params={"cancel_at_period_end": True})
        except stripe.StripeError:
            raise PaymentError("Stripe could not cancel the subscription; please try again later.", status=503) from None
        return True


@hookimpl
def register_payment_processors():
    if stripe is None:
        logging.getLogger("aimg.plugins").warning(
            "payment processor 'stripe' not registered: the stripe package is not installed "
            "(pip install 'aimg[stripe]')")
        return []
    return [StripeProcessor]
