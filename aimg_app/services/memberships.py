"""What a member (or an admin) does with a membership: grants, cancellation, card
payments, the pay-by-card email, vendor credentials and the subscriber sync."""
from __future__ import annotations

import datetime as dt
import json
import logging
import uuid

from ..config import Domain
from ..errors import BadRequest, NotFound, Unauthorized
from ..mail import send_mail
from ..models import User
from ..models.base import epoch_ms, iso, utcnow
from ..models.billing import Subscription, VendorCredentials
from ..plugin_api import CANCELLED, STARTED, Payer, PaymentProcessor, SubscriptionEvent, SubscriptionRef
from . import cards, ledger, plans, sealing, subscriptions
from .users import find_by_email, normalize_email

log = logging.getLogger("aimg.billing")

COOKIE_LIFETIME = dt.timedelta(days=7)
_COOKIE_PURPOSE = "vendor-credentials"


def payer_of(user: User | None) -> Payer | None:
    return Payer(user_id=user.id, email=user.email, username=user.username) if user is not None else None


# --- admin grants -------------------------------------------------------------------------


def grant(resources, domain: Domain, body: dict, admin: str) -> dict:
    """setAdminProvidedPremiumTier for one email or many (all must be users of the domain)."""
    emails = ([body["email"]] if body.get("email") else []) + list(body.get("emails") or [])
    if not emails:
        raise BadRequest("At least one of email and emails must be provided.")
    normalized = list(dict.fromkeys(normalize_email(e) for e in emails))
    users = {email: find_by_email(domain.identifier, email) for email in normalized}
    missing = [email for email, user in users.items() if user is None]
    if missing:
        raise NotFound(f"No user of this domain has the email(s): {', '.join(missing[:5])}.")
    until = body.get("deactivationDate")
    if until is not None and until.tzinfo is not None:
        until = until.astimezone(dt.UTC).replace(tzinfo=None)
    product_id = body["productId"]
    last = None
    for email, user in users.items():
        vendor_id = f"admin:{domain.identifier}:{product_id}:{user.id}"

        def apply(_event, user=user, vendor_id=vendor_id):
            return subscriptions.set_grant(domain.identifier, user, "admin", vendor_id, product_id, body["tier"],
                                           body["isActive"], until, admin, domain.environment,
                                           body.get("additionalInformation"))

        marker = SubscriptionEvent(kind=STARTED, subscription_id=vendor_id, occurred_at=utcnow(), user_id=user.id)
        ledger.process(resources.pg, processor="admin", domain=domain.identifier,
                       event_id=f"{vendor_id}:{uuid.uuid4()}", event_type="admin.grant",
                       events=[marker], apply=apply,
                       payload=json.dumps({"admin": admin, "userId": user.id, "productId": product_id,
                                           "tier": body["tier"], "isActive": body["isActive"], "until": iso(until)}))
        last = Subscription.objects(processor="admin", vendor_id=vendor_id).first()
    out = {"domain": domain.identifier, "paymentProvider": "admin", "productId": product_id, "tier": body["tier"],
           "isActive": body["isActive"], "createdDate": iso(last.created_date), "updatedDate": iso(last.updated_date),
           "env": domain.environment}
    if until is not None:
        out["deactivationDate"] = iso(until)
    if body.get("additionalInformation"):
        out["additionalInformation"] = body["additionalInformation"]
    if body.get("emails"):
        out["emails"] = normalized
    else:
        out["_id"] = last.id
        out["email"] = normalized[0]
    return out


# --- cancellation -------------------------------------------------------------------------


def cancel(resources, domain: Domain, user: User) -> dict:
    """Stop every renewing subscription of ``user`` at period end where the vendor allows;
    mail instructions for the others."""
    renewing = [s for s in subscriptions.live_subscriptions(user.id) if s.renews]
    if not renewing:
        return {"success": False, "message": "You have no membership that renews."}
    processors = resources.payment_processors
    ends: list[dt.datetime] = []
    instructions: list[str] = []
    for sub in renewing:
        processor: PaymentProcessor | None = processors.get(sub.processor)
        ref = SubscriptionRef(subscription_id=sub.vendor_id, product_id=sub.product_id, user_id=user.id,
                              email=user.email, payer_id=sub.payer_id, period_end=sub.expiration)
        if processor is not None and processor.cancel_at_period_end(ref):
            now = utcnow()
            event = SubscriptionEvent(kind=CANCELLED, subscription_id=sub.vendor_id, occurred_at=now, user_id=user.id)
            ledger.process(resources.pg, processor=sub.processor, domain=domain.identifier,
                           event_id=f"cancel:{sub.id}:{epoch_ms(now)}", event_type="member.cancel", events=[event])
            if sub.expiration is not None:
                ends.append(sub.expiration)
        elif processor is not None:
            instructions.append(processor.cancellation_instructions(domain))
        else:
            instructions.append(f"Your membership is billed through '{sub.processor}'. Cancel it in that account.")
    messages = []
    if ends:
        messages.append(f"Your membership will not renew; you keep your PRO tier until {iso(max(ends))}.")
    elif len(instructions) < len(renewing):
        messages.append("Your membership will not renew.")
    if instructions:
        send_mail(resources.settings, user.email, f"How to cancel your {domain.display_name} membership",
                  "\n\n".join(instructions))
        messages.append("We sent you an email with the instructions to cancel your membership.")
    return {"success": True, "message": " ".join(messages)}


# --- card payments ------------------------------------------------------------------------


def card_subscription(resources, domain: Domain, user: User | None, body: dict, checkout_factory) -> dict:
    processor = resources.payment_processors.get(body["merchantProcessor"])
    if processor is None or not processor.accepts_cards:
        raise BadRequest("merchantProcessor does not accept card payments.")
    product = plans.offered_product(domain, body["productID"], body.get("code"))
    if product is None:
        raise NotFound("productID names no billing plan price.")
    if not any(p.payment_provider == processor.identifier for p in product.price.payment_providers):
        raise BadRequest("This product cannot be paid with the chosen merchantProcessor.")
    if user is None:
        if not body.get("billingEmail"):
            raise Unauthorized("Sign in (or give the billingEmail of your account) to subscribe.")
        user = find_by_email(domain.identifier, normalize_email(body["billingEmail"]))
        if user is None:
            raise Unauthorized("Sign in (or give the billingEmail of your account) to subscribe.")
    email = normalize_email(body["billingEmail"]) if body.get("billingEmail") else user.email
    card = cards.validate_card(body, email)
    checkout = checkout_factory(processor.identifier, product, payer_of(user))
    charge = processor.charge_card(card, checkout)
    event = SubscriptionEvent(kind=STARTED, subscription_id=charge.subscription_id, occurred_at=charge.occurred_at,
                              user_id=user.id, product_id=product.price.product_id, period_end=charge.period_end,
                              renews=charge.renews, payer_id=charge.payer_id, payment_id=charge.payment_id,
                              amount=product.price.value, currency=product.price.currency)
    # Only what identifies the purchase is recorded: never card data.
    ledger.process(resources.pg, processor=processor.identifier, domain=domain.identifier,
                   event_id=f"charge:{charge.payment_id or charge.subscription_id}", event_type="card.charge",
                   events=[event], env=domain.environment,
                   payload=json.dumps({"productID": product.price.product_id, "userId": user.id,
                                       "subscriptionId": charge.subscription_id}))
    return {"success": True, "message": f"Your payment was accepted: PRO tier {product.plan.tier} is active."}


def pay_with_card_email(settings, domain: Domain, email: str) -> bool:
    origin = domain.origins[0] if domain.origins else f"https://{domain.identifier}"
    text = (f"Hello,\n\nyou asked how to pay for your {domain.display_name} membership with a credit card.\n\n"
            f"1. Open {origin}/pro and sign in with this email address.\n"
            "2. Choose a plan and the \"Pay with card\" option.\n"
            "3. Enter your card details; your PRO tier starts as soon as the payment is accepted.\n\n"
            "If you did not ask for this email, you can ignore it.")
    send_mail(settings, email, f"Pay for your {domain.display_name} membership with a card", text)
    return True


# --- vendor credentials and polling -------------------------------------------------------


def store_credentials(resources, processor: str, domain: str, account_id: str, value, admin: str) -> VendorCredentials:
    now = utcnow()
    record_id = f"{processor}:{domain}:{account_id}"
    ciphertext = sealing.encrypt_json(resources.secret_key, _COOKIE_PURPOSE, {"accountId": account_id, "cookies": value})
    VendorCredentials.objects(id=record_id).update_one(
        upsert=True, set__processor=processor, set__domain=domain, set__account_id=account_id,
        set__ciphertext=ciphertext, set__created_by=admin, set__created_date=now,
        set__expires_date=now + COOKIE_LIFETIME)
    return VendorCredentials.objects(id=record_id).first()


def current_credentials(resources, processor: str, now: dt.datetime | None = None) -> list[tuple[str, dict]]:
    """(domain, credentials) of every unexpired record of ``processor``."""
    out = []
    for record in VendorCredentials.objects(processor=processor, expires_date__gt=now or utcnow()):
        value = sealing.decrypt_json(resources.secret_key, _COOKIE_PURPOSE, record.ciphertext)
        if value is not None:
            out.append((record.domain, value))
    return out


def poll_processors(resources, now: dt.datetime | None = None) -> dict[str, int]:
    """Ask every processor for its subscribers' state (Boosty with the injected cookies,
    the whitelist with its settings) and apply what changed. Returns events per processor."""
    now = now or utcnow()
    counts: dict[str, int] = {}
    settings = resources.settings
    for identifier, processor in resources.payment_processors.items():
        targets: list[tuple[Domain, dict | None]] = []
        stored = current_credentials(resources, identifier, now)
        for domain_id, credentials in stored:
            domain = settings.domain_by_identifier(domain_id)
            if domain is not None:
                targets.append((domain, credentials))
        if not stored:
            targets = [(domain, None) for domain in settings.domains]
        for domain, credentials in targets:
            try:
                events = processor.poll_subscriptions(domain, credentials)
            except Exception:  # one vendor failing must not stop the others
                log.exception("polling a payment processor failed", extra={"processor": identifier})
                continue
            for event in events:
                # The same observed state twice is the same ledger event: it changes nothing.
                event_id = ":".join(["poll", event.subscription_id or event.payment_id or "", event.kind,
                                     iso(event.period_end) or "-"])
                ledger.process(resources.pg, processor=identifier, domain=domain.identifier, event_id=event_id,
                               event_type=f"poll.{event.kind}", events=[event], env=domain.environment)
            counts[identifier] = counts.get(identifier, 0) + len(events)
    return counts
