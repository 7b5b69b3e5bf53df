"""CCBill: FlexForms payment links with a dynamic-pricing ``formDigest``, and Webhooks.

Settings (``[plugins.ccbill]``): ``client_accnum``, ``client_subacc``, ``flexform_id``,
``salt`` (the subaccount's salt), ``allowed_networks`` (CCBill's webhook source ranges;
defaults to the published ones), ``num_rebills`` (99).

CCBill does not sign webhooks: its rule is to accept posts from its own networks only,
which this processor enforces (behind a proxy, set ``AIMG_TRUSTED_PROXY_COUNT`` so the
client address is the real one). Events (``?eventType=``): NewSaleSuccess,
RenewalSuccess, Cancellation, Expiration, Refund, Chargeback, Void. The buyer is found
through the pass-through fields ``X-userId``/``X-productId`` the payment link carries.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
from urllib.parse import urlencode

from aimg_app.plugin_api import (
    CANCELLED,
    EXPIRED,
    PERIOD_DAYS,
    REFUNDED,
    RENEWED,
    STARTED,
    InvalidSignature,
    PaymentProcessor,
    SubscriptionEvent,
    WebhookResult,
    hookimpl,
)

CCBILL_NETWORKS = ("64.38.240.0/24", "64.38.241.0/24", "64.38.212.0/24", "64.38.215.0/24")
CURRENCY_CODES = {"USD": "840", "EUR": "978", "GBP": "826", "CAD": "124", "AUD": "036", "JPY": "392", "CHF": "756"}
PERIOD_DAYS = {**PERIOD_DAYS, "daily": 2}  # CCBill's shortest period is 2 days
MST = dt.timezone(dt.timedelta(hours=-7))  # CCBill's timestamps are in Mountain Standard Time


def _time(value: str | None, default: dt.datetime) -> dt.datetime:
    if not value:
        return default
    return dt.datetime.strptime(value[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=MST).astimezone(dt.UTC).replace(
        tzinfo=None)


def _date(value: str | None) -> dt.datetime | None:
    return dt.datetime.strptime(value[:10], "%Y-%m-%d") if value else None


class CCBillProcessor(PaymentProcessor):
    identifier = "ccbill"
    label = "CCBill"

    def __init__(self, settings):
        super().__init__(settings)
        self.networks = [ipaddress.ip_network(n) for n in self.settings.get("allowed_networks", CCBILL_NETWORKS)]

    def payment_url(self, checkout):
        s, price = self.settings, checkout.price
        if not (checkout.payer and s.get("flexform_id") and s.get("salt")) or price.currency not in CURRENCY_CODES:
            return None
        amount = f"{price.value:.2f}"
        fields = {"clientAccnum": s.get("client_accnum", ""), "clientSubacc": s.get("client_subacc", ""),
                  "initialPrice": amount, "initialPeriod": str(PERIOD_DAYS.get(price.period, 30)),
                  "currencyCode": CURRENCY_CODES[price.currency]}
        recurring = price.period in PERIOD_DAYS
        if recurring:
            fields.update(recurringPrice=amount, recurringPeriod=fields["initialPeriod"],
                          numRebills=str(s.get("num_rebills", 99)))
            digest = (fields["initialPrice"] + fields["initialPeriod"] + fields["recurringPrice"]
                      + fields["recurringPeriod"] + fields["numRebills"] + fields["currencyCode"] + s["salt"])
        else:
            digest = fields["initialPrice"] + fields["initialPeriod"] + fields["currencyCode"] + s["salt"]
        fields["formDigest"] = hashlib.md5(digest.encode()).hexdigest()
        fields.update({"X-userId": checkout.payer.user_id, "X-productId": price.product_id,
                       "customer_email": checkout.payer.email})
        return f"https://api.ccbill.com/wap-frontflex/flexforms/{s['flexform_id']}?{urlencode(fields)}"

    def parse_webhook(self, request):
        try:
            source = ipaddress.ip_address(request.remote_addr)
        except ValueError:
            raise InvalidSignature("unknown source address") from None
        if not any(source in network for network in self.networks):
            raise InvalidSignature("not from a CCBill network")
        event_type = request.args.get("eventType", "")
        data = request.json() if request.body[:1] in (b"{", b"[") else dict(request.form)
        sub = str(data.get("subscriptionId") or "")
        at = _time(data.get("timestamp"), request.received_at)
        event_id = f"{event_type}:{sub}:{data.get('transactionId') or ''}:{data.get('timestamp') or ''}"
        common = {"subscription_id": sub, "occurred_at": at, "user_id": data.get("X-userId"),
                  "email": data.get("email"), "product_id": data.get("X-productId")}
        events = []
        if event_type == "NewSaleSuccess":
            events.append(SubscriptionEvent(kind=STARTED, period_end=_date(data.get("nextRenewalDate")),
                                            renews=bool(data.get("nextRenewalDate")), payer_id=data.get("clientAccnum"),
                                            payment_id=data.get("transactionId"), **common))
        elif event_type == "RenewalSuccess":
            events.append(SubscriptionEvent(kind=RENEWED, period_end=_date(data.get("nextRenewalDate")),
                                            payment_id=data.get("transactionId"), **common))
        elif event_type == "Cancellation":
            events.append(SubscriptionEvent(kind=CANCELLED, **common))
        elif event_type == "Expiration":
            events.append(SubscriptionEvent(kind=EXPIRED, **common))
        elif event_type in ("Refund", "Chargeback", "Void"):
            events.append(SubscriptionEvent(kind=REFUNDED, **common))
        if not sub and events:
            raise ValueError("subscriptionId is missing")
        return WebhookResult(event_id=event_id, event_type=event_type, events=events)

    def cancellation_instructions(self, domain):
        return (f"Your {domain.display_name} membership is billed by CCBill. To cancel it, visit "
                "https://support.ccbill.com, choose 'Cancel a subscription' and enter the email address or the "
                "subscription id shown on your receipt. You keep your PRO tier until the end of the paid period.")


@hookimpl
def register_payment_processors():
    return [CCBillProcessor]
