"""G2A: G2A PAY checkout (a quote created through ``createQuote``, then the gateway page)
and its IPN, authenticated by ``hash = SHA-256(transactionId + userOrderId + amount +
secret)``. G2A is also a distribution channel for gift cards (``downloadGiftCards`` with
``distributionProvider=g2a``): those are redeemed with ``redeemGiftCard``.

That hash does not cover the IPN's ``status`` (nor its currency): an IPN is acted on only
once G2A PAY's REST API (``GET /rest/transactions/<transactionId>``, authorised by
``api_hash; SHA-256(api_hash + merchant_email + api_secret)``) reports the same status,
order and amount.

Settings (``[plugins.g2a]``): ``api_hash``, ``api_secret``, ``merchant_email``,
``api_base`` (``https://checkout.pay.g2a.com``), ``rest_base`` (``https://pay.g2a.com``).
A purchase pays one period (no renewal).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import uuid
from urllib.parse import quote

import requests

from aimg_app.plugin_api import (
    PERIOD_DAYS,
    REFUNDED,
    STARTED,
    InvalidSignature,
    MalformedWebhook,
    PaymentError,
    PaymentProcessor,
    SubscriptionEvent,
    WebhookResult,
    hookimpl,
    number,
    one_of,
    required,
    vendor_time,
)

TIMEOUT_S = 15
# Days an order pays for, carried in the order id: the plugin API's, and 0 for a lifetime price.
G2A_ORDER_DAYS = {**PERIOD_DAYS, "lifetime": 0}
STATUSES = ("complete", "refunded", "partial_refunded", "rejected", "canceled", "pending")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class G2AProcessor(PaymentProcessor):
    identifier = "g2a"
    label = "G2A PAY"

    def __init__(self, settings):
        super().__init__(settings)
        self.api_base = self.settings.get("api_base", "https://checkout.pay.g2a.com").rstrip("/")
        self.rest_base = self.settings.get("rest_base", "https://pay.g2a.com").rstrip("/")

    def payment_url(self, checkout):
        if self.settings.get("api_hash") and checkout.price.period in G2A_ORDER_DAYS:
            return checkout.checkout_url
        return None

    def start_checkout(self, checkout):
        price, payer, s = checkout.price, checkout.payer, self.settings
        # The order id carries who pays for what and for how long, so the IPN needs no lookup.
        order = f"{payer.user_id}.{price.product_id}.{G2A_ORDER_DAYS[price.period]}.{uuid.uuid4().hex[:8]}"
        amount = f"{price.value:.2f}"
        back = checkout.redirect_url or (checkout.domain.origins[0] if checkout.domain.origins else "")
        form = {"api_hash": s.get("api_hash", ""), "hash": _sha256(order + amount + price.currency + s.get("api_secret", "")),
                "order_id": order, "amount": amount, "currency": price.currency, "email": payer.email,
                "url_failure": back, "url_ok": back, "items[0][sku]": price.product_id,
                "items[0][name]": price.plan_name, "items[0][amount]": amount, "items[0][qty]": "1",
                "items[0][id]": price.product_id, "items[0][price]": amount, "items[0][url]": back or "https://g2a.com"}
        response = requests.post(f"{self.api_base}/index/createQuote", data=form, timeout=TIMEOUT_S)
        body = response.json() if response.status_code == 200 else {}
        if body.get("status") != "ok" or not body.get("token"):
            raise PaymentError("G2A PAY could not start the payment; please try again later.", status=503)
        return f"{self.api_base}/index/gateway?token={body['token']}"

    def parse_webhook(self, request):
        data = dict(request.form)
        secret = self.settings.get("api_secret", "")
        expected = _sha256(f"{data.get('transactionId', '')}{data.get('userOrderId', '')}{data.get('amount', '')}{secret}")
        if not secret or not hmac.compare_digest(data.get("hash", "").encode(), expected.encode()):
            raise InvalidSignature("bad IPN hash")
        transaction, order, amount, status = required(data, "transactionId", "userOrderId", "amount", "status")
        one_of(status, STATUSES, "status")
        # userOrderId is ours: "<user>.<product>.<days>.<nonce>" (the product may hold dots)
        try:
            user_id, rest = order.split(".", 1)
            product_id, days, _nonce = rest.rsplit(".", 2)
        except ValueError:
            raise MalformedWebhook("userOrderId is not one of our orders") from None
        paid = number(amount, "amount")
        self._confirm(transaction, order, amount, status)
        at = vendor_time(data.get("orderCompleteAt"), "%Y-%m-%d %H:%M:%S") or request.received_at
        common = {"subscription_id": order, "occurred_at": at, "user_id": user_id,
                  "product_id": product_id, "payment_id": transaction}
        events = []
        if status == "complete":
            self._check_charged(request, product_id, days, amount, required(data, "currency")[0])
            until = at + dt.timedelta(days=int(days)) if int(days) else None
            events.append(SubscriptionEvent(kind=STARTED, period_end=until, renews=False,
                                            amount=paid, currency=data["currency"], **common))
        elif status in ("refunded", "partial_refunded", "rejected", "canceled"):
            events.append(SubscriptionEvent(kind=REFUNDED, **common))
        return WebhookResult(event_id=f"{transaction}:{status}", event_type=f"ipn.{status}", events=events)

    @staticmethod
    def _check_charged(request, product_id: str, days: str, amount: str, currency: str) -> None:
        """What G2A charged must be what we sell: the order id names a product and its days,
        and the amount and currency paid (both in the IPN, the amount confirmed by G2A PAY's
        API) must be that product's price; an order id of any other make grants nothing."""
        price = request.price_of(product_id)
        if price is None or price.period not in G2A_ORDER_DAYS:
            raise MalformedWebhook(f"unknown product {product_id[:40]!r}")
        if days != str(G2A_ORDER_DAYS[price.period]):
            raise MalformedWebhook("the order's days are not the product's period")
        if not _same_amount(amount, price.value) or currency.upper() != price.currency.upper():
            raise MalformedWebhook("the amount paid is not the product's price")

    def _confirm(self, transaction: str, order: str, amount: str, status: str) -> None:
        """G2A PAY's own record of the transaction must say what the IPN says."""
        s = self.settings
        token = _sha256(s.get("api_hash", "") + s.get("merchant_email", "") + s.get("api_secret", ""))
        try:
            response = requests.get(f"{self.rest_base}/rest/transactions/{quote(transaction, safe='')}",
                                    timeout=TIMEOUT_S, headers={"Authorization": f"{s.get('api_hash', '')}; {token}"})
        except requests.RequestException:
            raise PaymentError("G2A PAY is unavailable; please try again later.", status=503) from None
        if response.status_code >= 500:
            raise PaymentError("G2A PAY is unavailable; please try again later.", status=503)
        record = response.json() if response.status_code == 200 else {}
        if not (str(record.get("status", "")).lower() == status and record.get("userOrderId") == order
                and _same_amount(record.get("amount"), amount)):
            raise InvalidSignature("G2A PAY does not confirm this transaction")


def _same_amount(a, b) -> bool:
    try:
        return abs(float(a) - float(b)) < 0.005
    except (TypeError, ValueError):
        return False


@hookimpl
def register_payment_processors():
    return [G2AProcessor]
