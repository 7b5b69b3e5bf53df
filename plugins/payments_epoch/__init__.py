"""Epoch: FlexPost join links and postbacks, both authenticated by ``epoch_digest``: the
HMAC-MD5 (with the merchant's HMAC key) of every other parameter, sorted by name, each
name immediately followed by its value.

Settings (``[plugins.epoch]``): ``hmac_key``, ``co_code`` (company code), ``pi_codes``
(productID -> Epoch product code), ``join_url`` (``https://join.epoch.com/``).

Postback endpoint: ``/webhooks/epoch`` (GET or POST). ``trans_type``: ``I`` initial,
``R`` rebill, ``C`` cancel, ``X`` expire, ``CR`` credit (refund), ``CB`` chargeback;
``ans`` starting with ``Y`` means approved. The answer is the plain text ``OK``.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from urllib.parse import urlencode

from aimg_app.plugin_api import (
    CANCELLED,
    EXPIRED,
    REFUNDED,
    RENEWED,
    STARTED,
    InvalidSignature,
    PaymentProcessor,
    SubscriptionEvent,
    WebhookResult,
    hookimpl,
)


def epoch_digest(key: str, params: dict) -> str:
    text = "".join(f"{name}{params[name]}" for name in sorted(params) if name != "epoch_digest")
    return hmac.new(key.encode(), text.encode(), hashlib.md5).hexdigest()


def _time(value: str | None, default: dt.datetime) -> dt.datetime:
    if not value:
        return default
    return dt.datetime.strptime(value[:19], "%Y-%m-%d %H:%M:%S")


class EpochProcessor(PaymentProcessor):
    identifier = "epoch"
    label = "Epoch"

    def payment_url(self, checkout):
        s = self.settings
        pi_code = s.get("pi_codes", {}).get(checkout.price.product_id)
        if not (checkout.payer and pi_code and s.get("hmac_key") and s.get("co_code")):
            return None
        params = {"co_code": s["co_code"], "pi_code": pi_code, "x_userid": checkout.payer.user_id,
                  "x_productid": checkout.price.product_id, "email": checkout.payer.email}
        if checkout.redirect_url:
            params["pi_returnurl"] = checkout.redirect_url
        params["epoch_digest"] = epoch_digest(s["hmac_key"], params)
        return f"{s.get('join_url', 'https://join.epoch.com/')}?{urlencode(params)}"

    def parse_webhook(self, request):
        params = dict(request.args)
        params.update(request.form)
        key = self.settings.get("hmac_key", "")
        given = params.get("epoch_digest", "")
        if not key or not hmac.compare_digest(given.lower().encode(), epoch_digest(key, params).encode()):
            raise InvalidSignature("bad epoch_digest")
        trans_type = params.get("trans_type", "I")
        approved = params.get("ans", "Y").upper().startswith("Y")
        sub = params.get("member_id") or params.get("order_id")
        at = _time(params.get("trans_datetime"), request.received_at)
        until = dt.datetime.strptime(params["next_rebill"][:10], "%Y-%m-%d") if params.get("next_rebill") else None
        common = {"subscription_id": sub, "occurred_at": at, "user_id": params.get("x_userid"),
                  "email": params.get("email"), "product_id": params.get("x_productid")}
        events = []
        if trans_type in ("I", "R") and approved:
            events.append(SubscriptionEvent(kind=STARTED if trans_type == "I" else RENEWED, period_end=until,
                                            payment_id=params.get("transaction_id"), payer_id=params.get("member_id"),
                                            **common))
        elif trans_type == "C":
            events.append(SubscriptionEvent(kind=CANCELLED, **common))
        elif trans_type == "X":
            events.append(SubscriptionEvent(kind=EXPIRED, **common))
        elif trans_type in ("CR", "CB"):
            events.append(SubscriptionEvent(kind=REFUNDED, **common))
        if events and not sub:
            raise ValueError("member_id is missing")
        event_id = f"{trans_type}:{params.get('transaction_id') or sub}"
        return WebhookResult(event_id=event_id, event_type=f"postback.{trans_type}", events=events, response_text="OK")

    def cancellation_instructions(self, domain):
        return (f"Your {domain.display_name} membership is billed by Epoch. To cancel it, visit "
                "https://epoch.com, choose 'Billing support' > 'Cancel membership' and enter the email address "
                "of your purchase. You keep your PRO tier until the end of the paid period.")


@hookimpl
def register_payment_processors():
    return [EpochProcessor]
