"""The tier engine: subscription events in, users' PRO tiers out.

Every change of a tier comes from a ``SubscriptionEvent`` (a vendor's webhook, a card
charge, a gift card, an admin grant) recorded in the payment ledger. An event only raises
timestamps of its subscription (``$max``), so applying it twice, or events in any order,
gives the same state; the subscription's status is derived from those facts, and the
user's tier (``User.tier``, ``tier_expiration``, ``merchant_processor``) from all of their
live subscriptions: the highest tier wins, and of equal tiers the one lasting longest.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
import uuid

import mongoengine as me

from ..models import User
from ..models.base import utcnow
from ..models.billing import Subscription
from ..plugin_api import (
    CANCELLED,
    EMAIL_TRUSTED,
    EMAIL_VENDOR_VERIFIED,
    EXPIRED,
    REFUNDED,
    RENEWED,
    STARTED,
    SubscriptionEvent,
)
from . import plans as plans_service

log = logging.getLogger("aimg.billing")

FOREVER = dt.datetime.max


class RetryLater(Exception):
    """The event cannot be applied yet (it refers to a payment not seen yet): the vendor should retry."""


class Unmatched(Exception):
    """The event names no known user or product: it is recorded and ignored."""


class Review(Exception):
    """The payer matched only by an email nobody proved for this payment: recorded for an
    admin to review, nothing granted."""


def _naive(value: dt.datetime | None) -> dt.datetime | None:
    if value is None or value.tzinfo is None:
        return value
    return value.astimezone(dt.UTC).replace(tzinfo=None)


# --- who and what -------------------------------------------------------------------------


def _find_user(domain: str, processor: str, event: SubscriptionEvent) -> User:
    user = None
    if event.user_id:
        user = User.objects(id=event.user_id, domain=domain).first()
    if user is None and event.external_account_id:
        link = {"$elemMatch": {"provider_id": {"$regex": f"^{re.escape(processor)}$", "$options": "i"},
                               "user_id": event.external_account_id}}
        user = User.objects(__raw__={"domain": domain, "connect_providers": link}).first()
    if user is None and event.email:
        user = User.objects(domain=domain, email=event.email.strip().lower()).first()
        # An address the payer typed (or that the vendor never checked) says nothing about who
        # paid: a typo, or an attacker paying with the victim's address, would land the grant
        # on the wrong account, and so would an account opened with an address before its owner.
        trusted = event.email_source == EMAIL_TRUSTED or (
            event.email_source == EMAIL_VENDOR_VERIFIED and user is not None and user.email_verified)
        if user is not None and not trusted:
            raise Review(f"payer matched only by an unverified email (user {user.id}, {event.email_source})")
    if user is None:
        raise Unmatched("no user of this domain matches the payer")
    return user


def _find_or_create(domain: str, processor: str, event: SubscriptionEvent, env: str | None) -> Subscription:
    if not event.subscription_id:
        sub = Subscription.objects(processor=processor, payment_ids=event.payment_id).first()
        if sub is None:
            raise RetryLater(f"payment {event.payment_id} is not known yet")
        return sub
    sub = Subscription.objects(processor=processor, vendor_id=event.subscription_id).first()
    if sub is not None:
        return sub
    # A refund, chargeback, cancellation or expiry usually names only the subscription: when
    # it comes before its purchase, the vendor must deliver it again later (503), never
    # have it answered "ignored" and lost. Only a sale naming no payer or product we know
    # is ignored.
    sale = event.kind in (STARTED, RENEWED)
    try:
        user = _find_user(domain, processor, event)
    except Review:
        if sale:
            raise
        raise RetryLater(f"subscription {event.subscription_id} is not known yet") from None
    except Unmatched:
        if sale:
            raise
        raise RetryLater(f"subscription {event.subscription_id} is not known yet") from None
    product = plans_service.find_product(domain, event.product_id)
    tier = event.tier if event.tier is not None else (product.plan.tier if product else None)
    if tier is None:
        if not sale:
            raise RetryLater(f"subscription {event.subscription_id} is not known yet")
        raise Unmatched(f"unknown product {event.product_id!r}")
    sub = Subscription(id=str(uuid.uuid4()), domain=domain, user_id=user.id, processor=processor,
                       vendor_id=event.subscription_id, product_id=event.product_id or "unknown", tier=tier,
                       status="pending", price=product.price_info() if product else {}, env=env,
                       payer_id=event.payer_id, additional_information=event.additional_information)
    try:
        sub.save(force_insert=True)
    except me.NotUniqueError:  # a parallel delivery created it first
        sub = Subscription.objects(processor=processor, vendor_id=event.subscription_id).first()
    return sub


# --- applying events ----------------------------------------------------------------------


def _end_of_period(sub: Subscription, paid_at: dt.datetime) -> dt.datetime | None:
    """A payment whose event names no end pays for one period of the price bought: never
    for ever by omission (None for a lifetime price, or a price we cannot read)."""
    from ..plugin_api.payments import PERIOD_DAYS

    days = PERIOD_DAYS.get((sub.price or {}).get("period") or "")
    return paid_at + dt.timedelta(days=days) if days else None


def apply_event(domain: str, processor: str, event: SubscriptionEvent, env: str | None = None) -> Subscription:
    """Apply one event (idempotent, order-independent); recompute the user's tier."""
    sub = _find_or_create(domain, processor, event, env)
    at = _naive(event.occurred_at)
    update: dict = {"inc__rev": 1, "set__updated_date": utcnow()}
    if event.kind in (STARTED, RENEWED):
        update["max__last_paid_at"] = at
        period_end = _naive(event.period_end) if event.period_end is not None else _end_of_period(sub, at)
        if period_end is not None:
            update["max__paid_until"] = period_end
        elif (sub.price or {}).get("period") == "lifetime":
            update["set__lifetime"] = True  # no end only for what was sold without one
        update["max__renew_at" if event.renews else "max__no_renew_at"] = at
    elif event.kind == CANCELLED:
        update["max__no_renew_at"] = at
        if event.period_end is not None:
            update["max__paid_until"] = _naive(event.period_end)
    elif event.kind == REFUNDED:
        update["max__refunded_at"] = at
    elif event.kind == EXPIRED:
        update["max__expired_at"] = at
    if event.payment_id:
        update["add_to_set__payment_ids"] = event.payment_id
    if event.payer_id and not sub.payer_id:
        update["set__payer_id"] = event.payer_id
    Subscription.objects(id=sub.id).update_one(**update)
    sub = settle(sub.id)
    recompute_tier(sub.user_id)
    return sub


def set_grant(domain: str, user: User, processor: str, vendor_id: str, product_id: str, tier: int, active: bool,
              until: dt.datetime | None, admin: str | None, env: str | None, info: str | None) -> Subscription:
    """An admin grant: the admin's latest word replaces the previous one (no ``$max`` here, so
    a grant can be shortened or switched off)."""
    now = utcnow()
    sub = Subscription.objects(processor=processor, vendor_id=vendor_id).first()
    if sub is None:
        sub = Subscription(id=str(uuid.uuid4()), domain=domain, user_id=user.id, processor=processor,
                           vendor_id=vendor_id, product_id=product_id, tier=tier, status="pending", env=env)
        try:
            sub.save(force_insert=True)
        except me.NotUniqueError:
            sub = Subscription.objects(processor=processor, vendor_id=vendor_id).first()
    until = _naive(until)
    Subscription.objects(id=sub.id).update_one(
        inc__rev=1, set__tier=tier, set__last_paid_at=now, set__paid_until=until, set__lifetime=until is None,
        set__renew_at=None, set__no_renew_at=now, set__refunded_at=None, set__expired_at=None if active else now,
        set__granted_by=admin, set__additional_information=info, set__env=env, set__updated_date=now)
    sub = settle(sub.id)
    recompute_tier(sub.user_id)
    return sub


def derive(sub: Subscription, now: dt.datetime) -> tuple[str, dt.datetime | None, bool]:
    """(status, expiration, renews) from the subscription's facts at ``now``."""
    ended = max((t for t in (sub.refunded_at, sub.expired_at) if t is not None), default=None)
    if sub.last_paid_at is None:
        return ("refunded" if sub.refunded_at else "expired" if sub.expired_at else "pending"), None, False
    if ended is not None and ended >= sub.last_paid_at:
        status = "refunded" if sub.refunded_at is not None and sub.refunded_at == ended else "expired"
        return status, ended, False
    expiration = None if sub.lifetime else sub.paid_until
    renews = sub.renew_at is not None and (sub.no_renew_at is None or sub.renew_at > sub.no_renew_at)
    if expiration is not None and expiration <= now:
        return "expired", expiration, False
    return "active", expiration, renews


def settle(sub_id: str, now: dt.datetime | None = None) -> Subscription:
    """Write the derived fields, unless the facts changed meanwhile (then derive again)."""
    for _ in range(20):
        sub = Subscription.objects(id=sub_id).first()
        status, expiration, renews = derive(sub, now or utcnow())
        if (status, expiration, renews) == (sub.status, sub.expiration, sub.renews):
            return sub
        if Subscription.objects(id=sub_id, rev=sub.rev).update_one(set__status=status, set__expiration=expiration,
                                                                     set__renews=renews):
            sub.status, sub.expiration, sub.renews = status, expiration, renews
            return sub
    raise RuntimeError("subscription kept changing while being settled")


def live_subscriptions(user_id: str, now: dt.datetime | None = None) -> list[Subscription]:
    """The user's subscriptions that give a tier now, best first."""
    now = now or utcnow()
    subs = [s for s in Subscription.objects(user_id=user_id, status="active")
            if (s.expiration is None or s.expiration > now) and s.tier > 0]
    return sorted(subs, key=lambda s: (s.tier, s.expiration or FOREVER), reverse=True)


def recompute_tier(user_id: str, now: dt.datetime | None = None) -> None:
    """Materialise the user's tier from their live subscriptions (optimistic: a recomputation
    that raced with another one reads again)."""
    for _ in range(20):
        user = User.objects(id=user_id).only("id", "tier_revision").first()
        if user is None:
            return
        revision = user.tier_revision or 0
        live = live_subscriptions(user_id, now)
        best = live[0] if live else None
        match = {"_id": user_id, "tier_revision": revision}
        if revision == 0:
            match = {"_id": user_id, "$or": [{"tier_revision": 0}, {"tier_revision": {"$exists": False}}]}
        done = User.objects(__raw__=match).update_one(
            set__tier=best.tier if best else 0, set__tier_expiration=best.expiration if best else None,
            set__merchant_processor=best.processor if best else "none", set__tier_revision=revision + 1)
        if done:
            return
    raise RuntimeError("tier kept changing while being recomputed")


def expiring(user_id: str, tier: int, now: dt.datetime | None = None) -> bool:
    """Whether the user's ``tier`` is enqueued for expiration: every live subscription of that
    tier has an end and will not renew."""
    same = [s for s in live_subscriptions(user_id, now) if s.tier == tier]
    return bool(same) and all(s.expiration is not None and not s.renews for s in same)


def expire_lapsed(now: dt.datetime | None = None, limit: int = 1000) -> int:
    """The scheduled expiry: settle subscriptions whose end has passed and recompute their
    users' tiers (and any user whose materialised tier has lapsed). Returns how many users."""
    now = now or utcnow()
    users: set[str] = set()
    for sub in Subscription.objects(status="active", expiration__lte=now).limit(limit):
        settle(sub.id, now)
        users.add(sub.user_id)
    for user in User.objects(tier__gt=0, tier_expiration__lte=now).only("id").limit(limit):
        users.add(user.id)
    for user_id in users:
        recompute_tier(user_id, now)
    if users:
        log.info("expired lapsed tiers", extra={"users": len(users)})
    return len(users)
