"""Gift cards: creation (codes from a CSPRNG, stored as hashes) and single-use redemption."""
from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
import uuid

import mongoengine as me
import redis
from psycopg_pool import ConnectionPool

from ..errors import BadRequest, Conflict, NotFound, ServiceUnavailable
from ..models import User
from ..models.base import utcnow
from ..models.billing import GiftCard
from ..plugin_api import STARTED, SubscriptionEvent
from . import ledger, subscriptions
from .tiers import tier_state

# 32 symbols without look-alikes (0/O, 1/I): 16 of them carry 80 bits.
ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
CODE_SYMBOLS = 16
EXTERNAL_CODE = re.compile(r"^[A-Za-z0-9-]{4,128}$")
LOCK_TIMEOUT_S = 30  # one user's redemption in progress; far longer than one takes


def normalize(code: str) -> str:
    return re.sub(r"[\s-]", "", code or "").upper()


def code_hash(code: str) -> str:
    return hashlib.sha256(normalize(code).encode()).hexdigest()


def new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(CODE_SYMBOLS))
    return "-".join(raw[i:i + 4] for i in range(0, CODE_SYMBOLS, 4))


def product_id(card: GiftCard) -> str:
    return f"{card.provider}-tier{card.tier}-{card.days}d"


def create_cards(domain: str, *, provider: str, tier: int, days: int, count: int, usd_price: float,
                 external_codes: list[str], info: str | None, admin: str) -> list[str]:
    """Create the cards and return their codes (the only time the codes exist in clear)."""
    if external_codes:
        codes = []
        for code in external_codes:
            if not EXTERNAL_CODE.match(code) or len(normalize(code)) < 4:
                raise BadRequest("externalCodes must be 4-128 letters, digits or '-' each.")
            codes.append(code)
        if len({normalize(c) for c in codes}) != len(codes):
            raise BadRequest("externalCodes contains the same code twice.")
        taken = GiftCard.objects(domain=domain, code_hash__in=[code_hash(c) for c in codes]).count()
        if taken:
            raise Conflict(f"{taken} of the external codes already exist.")
    else:
        codes = [new_code() for _ in range(count)]
    cards = [GiftCard(id=str(uuid.uuid4()), domain=domain, code_hash=code_hash(code), provider=provider, tier=tier,
                      days=days, usd_price=usd_price, external=bool(external_codes), additional_information=info,
                      created_by=admin) for code in codes]
    try:
        GiftCard.objects.insert(cards, load_bulk=False)
    except me.NotUniqueError:
        raise Conflict("A code already exists; nothing was created.") from None
    return codes


def redeem(pool: ConnectionPool, redis_client: redis.Redis, domain: str, user: User, code: str,
           env: str | None) -> dict:
    """Redeem ``code`` for ``user``: once only, whoever asks first."""
    card = GiftCard.objects(domain=domain, code_hash=code_hash(code)).first()
    if card is None:
        raise NotFound("This gift card code is not valid.")
    if card.redeemed_by is not None:
        raise Conflict("This gift card has already been redeemed.")
    # Where a card starts depends on the user's tier, read below and changed by the grant:
    # one user's redemptions run one at a time (every API process shares the lock), so two
    # cards redeemed at once each add their own period instead of both starting at the same
    # end. The lock lapses by itself if its holder dies.
    lock = redis_client.lock(f"aimg:giftcard:redeem:{user.id}", timeout=LOCK_TIMEOUT_S,
                             blocking_timeout=LOCK_TIMEOUT_S)
    if not lock.acquire():
        raise ServiceUnavailable("Another gift card of yours is being redeemed; please try again.")
    try:
        return _redeem(pool, domain, user, card, env)
    finally:
        try:
            lock.release()
        except redis.exceptions.LockError:
            pass  # lapsed already


def _redeem(pool: ConnectionPool, domain: str, user: User, card: GiftCard, env: str | None) -> dict:
    user = User.objects(id=user.id).first()
    current = tier_state(user)
    is_expiring = current.tier > 0 and subscriptions.expiring(user.id, current.tier)
    if current.tier >= card.tier and not is_expiring:
        raise Conflict("You already have an active Premium Tier equal to or higher than this gift card's tier.")
    now = utcnow()
    # The one atomic step that makes a code single-use.
    if not GiftCard.objects(id=card.id, redeemed_by=None).update_one(set__redeemed_by=user.id, set__redeemed_date=now):
        raise Conflict("This gift card has already been redeemed.")
    start = current.expiration if is_expiring and current.tier == card.tier and current.expiration else now
    period_end = start + dt.timedelta(days=card.days)
    event = SubscriptionEvent(kind=STARTED, subscription_id=f"giftcard:{card.id}", occurred_at=now, user_id=user.id,
                              product_id=product_id(card), tier=card.tier, period_end=period_end, renews=False,
                              payer_id=user.id, amount=card.usd_price, currency="USD")
    try:
        ledger.process(pool, processor=card.provider, domain=domain, event_id=f"giftcard:{card.id}",
                       event_type="giftcard.redeemed", events=[event], env=env,
                       payload=f'{{"giftCard": "{card.id}", "userId": "{user.id}"}}')
    except Exception:
        # Give the card back: nothing was granted (the ledger row, if any, stays 'received').
        GiftCard.objects(id=card.id, redeemed_by=user.id).update_one(set__redeemed_by=None, set__redeemed_date=None)
        raise
    state = tier_state(User.objects(id=user.id).first())
    return {"productID": product_id(card), "tier": card.tier, "tierExpiration": state.expiration or period_end}
