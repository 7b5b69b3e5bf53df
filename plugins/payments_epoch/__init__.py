"""Epoch: FlexPost join links and postbacks. Postbacks are authenticated by Epoch's
``epoch_digest``: the HMAC-MD5 (with the merchant's HMAC key) of every other parameter,
sorted by name, each name immediately followed by its value.

That text has no separators, so one signed parameter set can be re-split into another
(``email=a.member_id...`` reads as ``email=a.`` plus ``member_id=...``). Two rules close it:

- the join links we hand to buyers are never signed with that key (nor in that format):
  they carry nothing whose change costs us anything, since the price is Epoch's own
  ``pi_code`` and the product is taken from the postback's ``pi_code``, never from the
  buyer-editable ``x_productid``;
- a postback must carry every field its meaning rests on (``trans_type``, ``ans`` for
  sales, ``member_id``, ``transaction_id``, ``pi_code``): nothing defaults to "initial
  sale" or "approved".

A special plan (offered only with its code) is the exception: its ``pi_code`` alone buys it
from Epoch, so a buyer who learnt it could build a join link by hand. Its sale is granted only
with the reference we issued for that buyer and product (``x_ref``, an Epoch pass-through
``x_`` field echoed in the postback); without it the sale is held for review.

Settings (``[plugins.epoch]``): ``hmac_key``, ``co_code`` (company code), ``pi_codes``
(productID -> Epoch product code), ``join_url`` (``https://join.epoch.com/``).

Postback endpoint: ``/webhooks/epoch`` (GET or POST). ``trans_type``: ``I`` initial,
``R`` rebill, ``C`` cancel, ``X`` expire, ``CR`` credit (refund), ``CB`` chargeback;
``ans`` starting with ``Y`` means approved, ``N`` declined. The answer is the plain text ``OK``.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from urllib.parse import urlencode

from aimg_app.plugin_api import (
    CANCELLED,
    EXPIRED,
    PERIOD_DAYS,
    REFUNDED,
    RENEWED,
    STARTED,
    InvalidSignature,
    MalformedWebhook,
    PaymentProcessor,
    SubscriptionEvent,
    WebhookResult,
    hookimpl,
    one_of,
    required,
    vendor_time,
)

TRANS_TYPES = ("I", "R", "C", "X", "CR", "CB")
_HEX_MD5 = re.compile(r"^[0-9a-fA-F]{32}$")
# Epoch's digest covers names and values run together, so a signed set can be re-cut at
# other boundaries. A re-cut that creates a field needs that field's name inside a value.
# So only Epoch's own postback fields (and the two we pass through) are accepted, no value
# may contain the name of a field that decides a grant, and the few fields sorting before
# "ans" and "email" have exact shapes (an email's domain holds no "_", digits swallow no name).
POSTBACK_FIELDS = frozenset({
    "ans", "amount", "country", "currency", "email", "epoch_digest", "ipaddress", "localamount", "localcurrency",
    "member_id", "name", "next_rebill", "order_id", "payment_type", "pi_code", "postalcode", "prepaid", "reseller",
    "session_id", "site", "submerchant_id", "trans_amount", "trans_currency", "trans_datetime", "trans_type",
    "transaction_id", "username", "zip", "x_userid", "x_productid", "x_ref",
})
_DECIDING = ("member_id", "transaction_id", "trans_type", "trans_datetime", "pi_code", "next_rebill", "order_id",
             "x_userid", "x_productid", "x_ref")
_SHAPES = {
    "amount": re.compile(r"^[0-9.]{0,20}$"),
    "country": re.compile(r"^[A-Za-z]{0,3}$"),
    "currency": re.compile(r"^[A-Za-z]{0,3}$"),
    "email": re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                        r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"),
    "x_userid": re.compile(r"^[A-Za-z0-9-]{1,64}$"),
    "x_ref": re.compile(r"^[A-Za-z0-9_.-]{1,400}$"),
}


def _check_fields(params: dict) -> None:
    unknown = sorted(set(params) - POSTBACK_FIELDS)
    if unknown:
        raise MalformedWebhook(f"not an Epoch postback field: {unknown[0][:40]!r}")
    for name, shape in _SHAPES.items():
        if name in params and not shape.match(params[name]):
            raise MalformedWebhook(f"{name} is not in Epoch's format")
    for name, value in params.items():
        if name != "epoch_digest" and any(field in value for field in _DECIDING):
            raise MalformedWebhook(f"{name} holds the name of another field")


def epoch_digest(key: str, params: dict) -> str:
    """Epoch's own digest of a postback (its canonical form, which we cannot change)."""
    text = "".join(f"{name}{params[name]}" for name in sorted(params) if name != "epoch_digest")
    return hmac.new(key.encode(), text.encode(), hashlib.md5).hexdigest()


def _time(value: str | None, default: dt.datetime) -> dt.datetime:
    return vendor_time(value[:19] if value else None, "%Y-%m-%d %H:%M:%S") or default


class EpochProcessor(PaymentProcessor):
    identifier = "epoch"
    label = "Epoch"

    def __init__(self, settings):
        super().__init__(settings)
        self.pi_codes: dict[str, str] = dict(self.settings.get("pi_codes", {}))
        self._product_of = {code: product for product, code in self.pi_codes.items()}

    def payment_url(self, checkout):
        s = self.settings
        pi_code = self.pi_codes.get(checkout.price.product_id)
        if not (checkout.payer and pi_code and s.get("hmac_key") and s.get("co_code")):
            return None
        params = {"co_code": s["co_code"], "pi_code": pi_code, "x_userid": checkout.payer.user_id,
                  "x_ref": checkout.reference, "email": checkout.payer.email}
        if checkout.redirect_url:
            params["pi_returnurl"] = checkout.redirect_url
        return f"{s.get('join_url', 'https://join.epoch.com/')}?{urlencode(params)}"

    def parse_webhook(self, request):
        params = dict(request.args)
        params.update(request.form)
        key = self.settings.get("hmac_key", "")
        given = params.get("epoch_digest", "")
        if not key or not _HEX_MD5.match(given) or not hmac.compare_digest(
                given.lower().encode(), epoch_digest(key, params).encode()):
            raise InvalidSignature("bad epoch_digest")
        _check_fields(params)
        [trans_type, member, transaction] = required(params, "trans_type", "member_id", "transaction_id")
        one_of(trans_type, TRANS_TYPES, "trans_type")
        at = _time(params.get("trans_datetime"), request.received_at)
        common = {"subscription_id": member, "occurred_at": at, "user_id": params.get("x_userid"),
                  "email": params.get("email")}
        events = []
        if trans_type in ("I", "R"):
            [answer] = required(params, "ans")
            if trans_type == "I":
                [pi_code] = required(params, "pi_code")
                product = self._product_of.get(pi_code)
                if product is None:
                    raise MalformedWebhook(f"unknown pi_code {pi_code[:40]!r}")
                common["product_id"] = product
            if answer[:1].upper() == "Y" and trans_type == "I":
                price = request.price_of(common["product_id"])
                if price is not None and price.code_only:
                    reference = request.reference_of(params.get("x_ref"))
                    if reference is None or reference.product_id != common["product_id"]:
                        return WebhookResult(event_id=f"{trans_type}:{transaction}", event_type=f"postback.{trans_type}",
                                             response_text="OK", review="a special plan's sale without our reference")
                    common["user_id"] = reference.user_id
            if answer[:1].upper() == "Y":
                until = self._paid_until(params, trans_type, common.get("product_id"), at, request)
                events.append(SubscriptionEvent(kind=STARTED if trans_type == "I" else RENEWED, period_end=until,
                                                payment_id=transaction, payer_id=member, **common))
            elif answer[:1].upper() != "N":
                raise MalformedWebhook(f"unknown ans {answer[:40]!r}")
        elif trans_type == "C":
            events.append(SubscriptionEvent(kind=CANCELLED, **common))
        elif trans_type == "X":
            events.append(SubscriptionEvent(kind=EXPIRED, **common))
        else:
            events.append(SubscriptionEvent(kind=REFUNDED, **common))
        return WebhookResult(event_id=f"{trans_type}:{transaction}", event_type=f"postback.{trans_type}",
                             events=events, response_text="OK")

    @staticmethod
    def _paid_until(params, trans_type, product_id, at, request) -> dt.datetime | None:
        """Until when a sale pays: Epoch's ``next_rebill``; for an initial sale without one,
        the product's own period (no end only for a lifetime product, never by omission)."""
        if params.get("next_rebill"):
            return vendor_time(params["next_rebill"][:10], "%Y-%m-%d")
        if trans_type == "R":
            raise MalformedWebhook("missing next_rebill")
        price = request.price_of(product_id)
        if price is not None and price.period == "lifetime":
            return None
        if price is None or price.period not in PERIOD_DAYS:
            raise MalformedWebhook("missing next_rebill")
        return at + dt.timedelta(days=PERIOD_DAYS[price.period])

    def cancellation_instructions(self, domain):
        return (f"Your {domain.display_name} membership is billed by Epoch. To cancel it, visit "
                "https://epoch.com, choose 'Billing support' > 'Cancel membership' and enter the email address "
                "of your purchase. You keep your PRO tier until the end of the paid period.")


@hookimpl
def register_payment_processors():
    return [EpochProcessor]
