"""The one place a user's PRO tier is read.

The tier is materialised on the user (``tier``, ``tier_expiration``, ``merchant_processor``)
by the tier engine from subscription events and grants; readers call ``tier_of``/``tier_state``
and never look at those fields directly, so an expired tier reads as 0 even before the
scheduled expiry job has run.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ..models.base import utcnow


@dataclass(frozen=True)
class TierState:
    tier: int
    expiration: dt.datetime | None
    merchant_processor: str


def tier_state(user, now: dt.datetime | None = None) -> TierState:
    if user is None:
        return TierState(0, None, "none")
    now = now or utcnow()
    if not user.tier or (user.tier_expiration is not None and user.tier_expiration <= now):
        return TierState(0, None, "none")
    return TierState(int(user.tier), user.tier_expiration, user.merchant_processor or "none")


def tier_of(user) -> int:
    return tier_state(user).tier


def is_premium(user) -> bool:
    return tier_of(user) > 0


def subscriptions_of(user, extended_price: bool = False) -> list[dict]:
    """The contract's Subscription objects of ``user``: the subscriptions giving a tier now,
    best first. ``price`` only with ``extended_price``."""
    from ..models.base import iso
    from .subscriptions import live_subscriptions

    out = []
    for sub in live_subscriptions(user.id):
        item = {"merchantProcessor": sub.processor, "tier": sub.tier, "productID": sub.product_id,
                "transactionID": sub.vendor_id}
        if sub.expiration is not None:
            item["tierExpiration"] = iso(sub.expiration)
            if sub.renews:
                item["nextBillingDate"] = iso(sub.expiration)
        if sub.payer_id:
            item["payerID"] = sub.payer_id
        if sub.additional_information:
            item["additionalInformation"] = sub.additional_information
        if extended_price and sub.price:
            item["price"] = dict(sub.price)
        out.append(item)
    return out
