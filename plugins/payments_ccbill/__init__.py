"""CCBill: FlexForms payment links with a dynamic-pricing ``formDigest``, and Webhooks.

Settings (``[plugins.ccbill]``): ``client_accnum``, ``client_subacc``, ``flexform_id``,
``salt`` (the subaccount's salt), ``allowed_networks`` (CCBill's webhook source ranges;
defaults to the published ones), ``num_rebills`` (99), ``datalink_username``,
``datalink_password``, ``datalink_url`` (tests).

CCBill does not sign webhooks: its rule is to accept posts from its own networks only,
which this processor enforces (behind a proxy, set ``AIMG_TRUSTED_PROXY_COUNT`` so the
client address is the real one). Since nothing authenticates the content, a sale or a
renewal is granted only once CCBill's DataLink API (``subscriptionManagement.cgi``,
``action=viewSubscriptionStatus``; settings ``datalink_username``/``datalink_password``)
reports the subscription active (1 or 2) with no refund, chargeback or void issued on it;
without DataLink credentials nothing is granted. A renewal must have been billed
(``billedAmount``, ``billedCurrencyCode``) the recurring price and currency of the product the
subscription was bought at.

The FlexForms ``formDigest`` covers the prices and periods only (CCBill's scheme, an
unseparated concatenation), not the pass-through fields, so a buyer may edit the link:
a sale must have been billed exactly the price, currency and periods of the product its
``X-productId`` names, else it is refused.

Events (``?eventType=``): NewSaleSuccess, RenewalSuccess, Cancellation, Expiration,
Refund, Chargeback, Void (others are recorded and change nothing). The buyer is found
through the pass-through fields ``X-userId``/``X-productId`` the payment link carries.
"""
from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import ipaddress
from urllib.parse import urlencode

import requests

from aimg_app.plugin_api import (
    CANCELLED,
    EXPIRED,
    PERIOD_DAYS,
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
    required,
    vendor_time,
)

CCBILL_NETWORKS = ("64.38.240.0/24", "64.38.241.0/24", "64.38.212.0/24", "64.38.215.0/24")
CURRENCY_CODES = {"USD": "840", "EUR": "978", "GBP": "826", "CAD": "124", "AUD": "036", "JPY": "392", "CHF": "756"}
# Days CCBill bills a period for: the plugin API's, but CCBill's shortest period is 2 days.
CCBILL_PERIOD_DAYS = {**PERIOD_DAYS, "daily": 2}
CURRENCY_OF_CODE = {code: name for name, code in CURRENCY_CODES.items()}
DATALINK_URL = "https://datalink.ccbill.com/utils/subscriptionManagement.cgi"
TIMEOUT_S = 20
ACTIVE_STATUSES = ("1", "2")  # 1: cancelled but paid until its end, 2: active; 0: inactive
MST = dt.timezone(dt.timedelta(hours=-7))  # CCBill's timestamps are in Mountain Standard Time


def _time(value: str | None, default: dt.datetime) -> dt.datetime:
    return vendor_time(str(value)[:19] if value else None, "%Y-%m-%d %H:%M:%S", MST) or default


def _date(value: str | None) -> dt.datetime | None:
    return vendor_time(str(value)[:10] if value else None, "%Y-%m-%d")


_SETTING = {"clientAccnum": "client_accnum", "clientSubacc": "client_subacc"}


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
                  "initialPrice": amount, "initialPeriod": str(CCBILL_PERIOD_DAYS.get(price.period, 30)),
                  "currencyCode": CURRENCY_CODES[price.currency]}
        recurring = price.period in CCBILL_PERIOD_DAYS
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
        [event_type] = required(request.args, "eventType")
        data = request.json() if request.body[:1] in (b"{", b"[") else dict(request.form)
        if not isinstance(data, dict):
            raise MalformedWebhook("the body is not an object")
        if event_type not in ("NewSaleSuccess", "RenewalSuccess", "Cancellation", "Expiration", "Refund",
                              "Chargeback", "Void"):
            return WebhookResult(event_id=f"{event_type}:{data.get('transactionId') or data.get('timestamp') or ''}:"
                                          f"{data.get('subscriptionId') or ''}", event_type=event_type)
        [sub, stamp] = required(data, "subscriptionId", "timestamp")
        sub = str(sub)
        for name in ("clientAccnum", "clientSubacc"):
            ours = self.settings.get(_SETTING[name])
            if data.get(name) and ours and str(data[name]) != str(ours):
                raise InvalidSignature(f"{name} is not this merchant's")
        at = _time(stamp, request.received_at)
        event_id = f"{event_type}:{sub}:{data.get('transactionId') or ''}:{stamp}"
        common = {"subscription_id": sub, "occurred_at": at, "user_id": data.get("X-userId"),
                  "email": data.get("email"), "product_id": data.get("X-productId")}
        events = []
        if event_type == "NewSaleSuccess":
            [transaction, _product] = required(data, "transactionId", "X-productId")
            self._check_billed(data, request.price_of(data["X-productId"]))
            self._confirm_active(sub)
            events.append(SubscriptionEvent(kind=STARTED, period_end=_date(data.get("nextRenewalDate")),
                                            renews=bool(data.get("nextRenewalDate")), payer_id=data.get("clientAccnum"),
                                            payment_id=transaction, **common))
        elif event_type == "RenewalSuccess":
            [transaction, until] = required(data, "transactionId", "nextRenewalDate")
            self._check_renewal_billed(data, request.subscription_price(sub) or request.price_of(data.get("X-productId")))
            self._confirm_active(sub)
            events.append(SubscriptionEvent(kind=RENEWED, period_end=_date(until), payment_id=transaction, **common))
        elif event_type == "Cancellation":
            events.append(SubscriptionEvent(kind=CANCELLED, **common))
        elif event_type == "Expiration":
            events.append(SubscriptionEvent(kind=EXPIRED, **common))
        else:
            events.append(SubscriptionEvent(kind=REFUNDED, **common))
        return WebhookResult(event_id=event_id, event_type=event_type, events=events)

    def _check_billed(self, data, price) -> None:
        """What CCBill billed must be the product's price: the link's pass-through fields are
        not covered by its digest, so a buyer could name a dearer product than they paid for."""
        if price is None:
            raise InvalidSignature("X-productId names no product we sell")
        days = str(CCBILL_PERIOD_DAYS.get(price.period, 30))
        billed_currency, billed_initial, initial_period = required(
            data, "billedCurrencyCode", "billedInitialPrice", "initialPeriod")
        wanted = [(str(billed_currency), CURRENCY_CODES.get(price.currency)), (str(initial_period), days)]
        amounts = [billed_initial]
        if price.period in CCBILL_PERIOD_DAYS:
            billed_recurring, recurring_period = required(data, "billedRecurringPrice", "recurringPeriod")
            wanted.append((str(recurring_period), days))
            amounts.append(billed_recurring)
        try:
            paid = all(abs(float(a) - price.value) < 0.005 for a in amounts)
        except (TypeError, ValueError):
            paid = False
        if not paid or any(given != expected for given, expected in wanted):
            raise InvalidSignature("the sale was not billed at this product's price")

    @staticmethod
    def _check_renewal_billed(data, price) -> None:
        """A renewal pays one more period only when CCBill billed the product's recurring price
        in its currency. (A subscription we do not hold, naming no product, grants nothing.)"""
        amount, currency = required(data, "billedAmount", "billedCurrencyCode")
        if price is None:
            return
        try:
            paid = abs(float(amount) - price.value) < 0.005
        except (TypeError, ValueError):
            paid = False
        if not paid or str(currency) != CURRENCY_CODES.get(price.currency):
            raise InvalidSignature("the renewal was not billed at this product's price")

    def _confirm_active(self, subscription_id: str) -> None:
        """CCBill's DataLink must report the subscription active before it grants anything."""
        s = self.settings
        if not (s.get("datalink_username") and s.get("datalink_password")):
            raise InvalidSignature("no DataLink credentials to confirm the subscription with CCBill")
        params = {"clientAccnum": s.get("client_accnum", ""), "clientSubacc": s.get("client_subacc", ""),
                  "usingSubacc": s.get("client_subacc", ""), "username": s["datalink_username"],
                  "password": s["datalink_password"], "action": "viewSubscriptionStatus",
                  "subscriptionId": subscription_id}
        try:
            response = requests.get(s.get("datalink_url", DATALINK_URL), params=params, timeout=TIMEOUT_S)
        except requests.RequestException:
            raise PaymentError("CCBill is unavailable; please try again later.", status=503) from None
        if response.status_code != 200:
            raise PaymentError("CCBill is unavailable; please try again later.", status=503)
        rows = list(csv.reader(io.StringIO(response.text)))
        record = dict(zip(rows[0], rows[1])) if len(rows) >= 2 else {}
        if record.get("subscriptionStatus") not in ACTIVE_STATUSES:
            raise InvalidSignature("CCBill does not confirm this subscription as active")
        # "Active" alone still counts a subscription CCBill refunded, charged back or voided.
        if any(record.get(name) != "0" for name in ("refundsIssued", "chargebacksIssued", "voidsIssued")):
            raise InvalidSignature("CCBill reports a refund, chargeback or void on this subscription")

    def cancellation_instructions(self, domain):
        return (f"Your {domain.display_name} membership is billed by CCBill. To cancel it, visit "
                "https://support.ccbill.com, choose 'Cancel a subscription' and enter the email address or the "
                "subscription id shown on your receipt. You keep your PRO tier until the end of the paid period.")


@hookimpl
def register_payment_processors():
    return [CCBillProcessor]
