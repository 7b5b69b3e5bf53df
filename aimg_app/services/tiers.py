"""The one place a user's PRO tier is read.

The tier is materialised on the user (``tier``, ``tier_expiration``, ``merchant_processor``)
by the tier engine from subscription events and grants; readers call ``tier_of``/``tier_state``
and never look at those fields directly, so an expired tier reads as 0 even before the
scheduled expiry job has run.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

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


@dataclass(frozen=True)
class ShownSubscription:
    """A subscription giving a tier now, as the Subscription schema writes it; its
    ``price`` only when the caller asked for it (extendedPriceInfo)."""

    subscription: Any  # models.billing.Subscription
    with_price: bool = False


def subscriptions_of(user, extended_price: bool = False) -> list[ShownSubscription]:
    """The subscriptions of ``user`` giving a tier now, best first."""
    from .subscriptions import live_subscriptions

    return [ShownSubscription(sub, extended_price) for sub in live_subscriptions(user.id)]
