"""Billing: plans and their prices, subscriptions (vendor subscriptions and grants alike),
gift cards, and the vendor credentials an admin injects."""
from __future__ import annotations

import mongoengine as me

from .base import utcnow


class PlanPaymentProvider(me.EmbeddedDocument):
    payment_provider = me.StringField(required=True)
    payment_label = me.StringField(null=True)
    payment_url = me.StringField(null=True)  # a fixed link set by the admin; else the processor builds it


class PlanPrice(me.EmbeddedDocument):
    product_id = me.StringField(required=True)
    name = me.StringField(null=True)
    type = me.StringField(required=True)
    period = me.StringField(required=True)
    currency = me.StringField(required=True)
    currency_type = me.StringField(required=True)
    value = me.FloatField(required=True)
    trial_days = me.IntField(null=True)
    payment_providers = me.EmbeddedDocumentListField(PlanPaymentProvider)


class BillingPlan(me.Document):
    """A plan of one domain and environment. ``code`` hides a special plan from everyone who
    does not give that code to ``getBillingPlans``."""

    id = me.StringField(primary_key=True)
    domain = me.StringField(required=True)
    env = me.StringField(required=True)
    name = me.StringField(required=True)
    description = me.StringField(null=True)
    features = me.ListField(me.StringField())
    main_benefits = me.ListField(me.StringField())
    prices = me.EmbeddedDocumentListField(PlanPrice)
    tier = me.IntField(required=True)
    code = me.StringField(null=True)
    created_by = me.StringField(null=True)
    created_date = me.DateTimeField(default=utcnow)

    meta = {
        "collection": "billing_plans",
        "indexes": [
            {"fields": ["domain", "env", "created_date"]},
            {"fields": ["domain", "prices.product_id"]},
        ],
    }


class Subscription(me.Document):
    """One source of a PRO tier for one user: a vendor subscription, a gift card, an admin
    grant. Written only by the tier engine (``services/subscriptions``).

    Events only ever raise the timestamps below (``$max``), so applying them is idempotent
    and commutative: deliveries out of order or twice settle on the same state. ``status``,
    ``expiration`` and ``renews`` are derived from them (and the clock) after each change;
    ``rev`` counts the changes, so a derivation from stale data is never written.
    """

    id = me.StringField(primary_key=True)
    domain = me.StringField(required=True)
    user_id = me.StringField(required=True)
    processor = me.StringField(required=True)  # the contract's merchantProcessor / paymentProvider
    vendor_id = me.StringField(required=True)  # the vendor's subscription id (the contract's transactionID)
    product_id = me.StringField(required=True)
    tier = me.IntField(required=True)
    # facts, raised by events
    last_paid_at = me.DateTimeField(null=True)  # the latest started/renewed event
    paid_until = me.DateTimeField(null=True)  # the furthest period end paid for
    lifetime = me.BooleanField(default=False)  # a payment without an end
    renew_at = me.DateTimeField(null=True)  # the latest event saying "it renews"
    no_renew_at = me.DateTimeField(null=True)  # the latest event saying "it will not renew"
    refunded_at = me.DateTimeField(null=True)
    expired_at = me.DateTimeField(null=True)
    rev = me.IntField(default=0)
    # derived
    status = me.StringField(required=True, choices=("pending", "active", "expired", "refunded"))
    expiration = me.DateTimeField(null=True)  # None: no end
    renews = me.BooleanField(default=False)
    # descriptive
    payer_id = me.StringField(null=True)
    payment_ids = me.ListField(me.StringField())
    additional_information = me.StringField(null=True)
    price = me.DictField()  # the plan price at purchase: type, period, currency, currencyType, value
    env = me.StringField(null=True)
    granted_by = me.StringField(null=True)  # the admin, for admin grants
    created_date = me.DateTimeField(default=utcnow)
    updated_date = me.DateTimeField(default=utcnow)

    meta = {
        "collection": "subscriptions",
        "indexes": [
            {"fields": ["processor", "vendor_id"], "unique": True},
            {"fields": ["user_id", "status"]},
            {"fields": ["status", "expiration"]},
            {"fields": ["processor", "payment_ids"]},
        ],
    }


class GiftCard(me.Document):
    """A gift card. Only the SHA-256 of its normalised code is kept; ``redeemed_by`` is set
    once, by a conditional update, so a code is redeemed at most once."""

    id = me.StringField(primary_key=True)
    domain = me.StringField(required=True)
    code_hash = me.StringField(required=True)
    provider = me.StringField(required=True, choices=("giftcard", "g2a"))
    tier = me.IntField(required=True)
    days = me.IntField(required=True)
    usd_price = me.FloatField(default=0)
    external = me.BooleanField(default=False)
    additional_information = me.StringField(null=True)
    created_by = me.StringField(null=True)
    created_date = me.DateTimeField(default=utcnow)
    redeemed_by = me.StringField(null=True)
    redeemed_date = me.DateTimeField(null=True)

    meta = {
        "collection": "gift_cards",
        "indexes": [{"fields": ["domain", "code_hash"], "unique": True}],
    }


class VendorCredentials(me.Document):
    """Credentials an admin injected for a vendor account (Boosty's admin cookies), encrypted
    at rest; they stop being used at ``expires_date``."""

    id = me.StringField(primary_key=True)  # "<processor>:<domain>:<account>"
    processor = me.StringField(required=True)
    domain = me.StringField(required=True)
    account_id = me.StringField(required=True)
    ciphertext = me.StringField(required=True)
    created_by = me.StringField(null=True)
    created_date = me.DateTimeField(default=utcnow)
    expires_date = me.DateTimeField(required=True)

    meta = {"collection": "vendor_credentials", "indexes": [{"fields": ["processor", "expires_date"]}]}
