"""ArkPay (card payments): the front-end's own card page posts to processCardSubscription,
which charges through ArkPay's Merchant API (create a transaction, then pay it with the
card); transaction webhooks report refunds and chargebacks.

Settings (``[plugins.arkpay]``): ``api_key``, ``secret_key``, ``api_base``
(``https://arkpay.com/api/v1``). Requests carry ``X-Api-Key`` and a ``Signature``: the
HMAC-SHA256 (hex, secret key) of ``METHOD path\\nbody``; webhooks carry ``Signature``:
the HMAC-SHA256 of the raw body. ArkPay has no recurring billing: a charge pays one
period, which does not renew.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import uuid
from urllib.parse import urlencode, urlsplit

import requests

from aimg_app.plugin_api import (
    PERIOD_DAYS,
    REFUNDED,
    CardCharge,
    InvalidSignature,
    PaymentError,
    PaymentProcessor,
    SubscriptionEvent,
    WebhookResult,
    hookimpl,
    required,
    vendor_time,
)

TIMEOUT_S = 30


def period_end(period: str, start: dt.datetime) -> dt.datetime | None:
    return start + dt.timedelta(days=PERIOD_DAYS[period]) if period in PERIOD_DAYS else None


class ArkPayProcessor(PaymentProcessor):
    identifier = "arkpay"
    label = "Credit card (ArkPay)"
    accepts_cards = True

    def __init__(self, settings):
        super().__init__(settings)
        self.api_base = self.settings.get("api_base", "https://arkpay.com/api/v1").rstrip("/")

    def payment_url(self, checkout):
        # The card form is the front-end's own page (paymentURL); it posts to processCardSubscription.
        if not checkout.payment_page_url:
            return None
        sep = "&" if urlsplit(checkout.payment_page_url).query else "?"
        return f"{checkout.payment_page_url}{sep}{urlencode({'productID': checkout.price.product_id, 'merchantProcessor': self.identifier})}"

    def _post(self, path: str, body: dict) -> dict:
        data = json.dumps(body, separators=(",", ":"))
        full = f"{urlsplit(self.api_base).path}/merchant/api{path}"
        signature = hmac.new(self.settings.get("secret_key", "").encode(), f"POST {full}\n{data}".encode(),
                             hashlib.sha256).hexdigest()
        response = requests.post(f"{self.api_base}/merchant/api{path}", data=data, timeout=TIMEOUT_S, headers={
            "Content-Type": "application/json", "X-Api-Key": self.settings.get("api_key", ""), "Signature": signature})
        if response.status_code >= 500 or response.status_code in (401, 403):
            raise PaymentError("The card payment service is unavailable; please try again later.", status=503)
        try:
            return response.json()
        except ValueError:
            raise PaymentError("The card payment service is unavailable; please try again later.", status=503) from None

    def charge_card(self, card, checkout):
        price, payer = checkout.price, checkout.payer
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        created = self._post("/transactions", {
            "amount": price.value, "currency": price.currency, "merchantTransactionId": str(uuid.uuid4()),
            "description": f"{checkout.domain.display_name} {price.plan_name} ({price.period})", "handlePayment": True,
            "externalCustomerId": payer.user_id})
        transaction = (created.get("transaction") or {}).get("id")
        if not transaction:
            raise PaymentError("The card payment could not be started; please try again later.", status=503)
        address = {"address": card.street, "city": card.city, "state": card.state_or_province,
                   "countryCode": card.country, "zipCode": card.postal_code, "phoneNumber": card.phone_number}
        paid = self._post(f"/transactions/{transaction}/pay", {
            "cardNumber": card.number, "email": card.email or payer.email,
            "cardExpiryDate": f"{card.expiration_month:02d}/{card.expiration_year % 100:02d}", "cvc": card.security_code,
            "holderName": card.holder_name, "customerAddress": {k: v for k, v in address.items() if v},
            "currency": price.currency})
        status = (paid.get("transaction") or {}).get("status")
        if status != "COMPLETED":
            raise PaymentError("Your card was declined.")
        return CardCharge(subscription_id=transaction, occurred_at=now, period_end=period_end(price.period, now),
                          payment_id=transaction, payer_id=payer.user_id, renews=False)

    def parse_webhook(self, request):
        given = request.header("Signature") or ""
        expected = hmac.new(self.settings.get("secret_key", "").encode(), request.body, hashlib.sha256).hexdigest()
        if not self.settings.get("secret_key") or not hmac.compare_digest(given.encode(), expected.encode()):
            raise InvalidSignature("bad ArkPay signature")
        body = request.json()
        [transaction] = required(body, "transaction")
        [_id, status] = required(transaction, "id", "status")
        at = vendor_time(body.get("createdAt")) or request.received_at
        status = str(status)
        events = []
        if status in ("REFUNDED", "CHARGEBACK"):
            events.append(SubscriptionEvent(kind=REFUNDED, subscription_id=transaction["id"], occurred_at=at,
                                            payment_id=transaction["id"]))
        return WebhookResult(event_id=f"{transaction['id']}:{status}", event_type=f"transaction.{status.lower()}",
                             events=events)


@hookimpl
def register_payment_processors():
    return [ArkPayProcessor]
