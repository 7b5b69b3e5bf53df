"""Patreon memberships: join links to the creator's tiers, member webhooks signed with
``X-Patreon-Signature`` (HMAC-MD5 of the body with the webhook secret).

Settings (``[plugins.patreon]``): ``webhook_secret``, ``creator`` (the campaign's vanity
name, for join links), ``tiers`` (Patreon tier id -> productID).

Webhook endpoint: ``/webhooks/patreon``, triggers ``members:create``, ``members:update``,
``members:delete``, ``members:pledge:create``, ``members:pledge:update``,
``members:pledge:delete``. The member's Patreon user id matches a user who connected
Patreon (connect provider ``Patreon``). Patreon's join links carry nothing of ours back in
the webhook, so otherwise only the member's email can match, and only when Patreon states
it verified the address (the included user's ``is_email_verified``) and the account proved
it too; any other email match is held for review. Patreon does not let a third party cancel
a pledge: ``cancelMembership`` mails the instructions.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from urllib.parse import quote

from aimg_app.plugin_api import (
    CANCELLED,
    EMAIL_UNVERIFIED,
    EMAIL_VENDOR_VERIFIED,
    EXPIRED,
    REFUNDED,
    RENEWED,
    InvalidSignature,
    MalformedWebhook,
    PaymentProcessor,
    SubscriptionEvent,
    WebhookResult,
    hookimpl,
    mapping,
    one_of,
    required,
    vendor_time,
)

TRIGGERS = ("members:create", "members:update", "members:delete", "members:pledge:create", "members:pledge:update",
            "members:pledge:delete")


_time = vendor_time


class PatreonProcessor(PaymentProcessor):
    identifier = "patreon"
    label = "Patreon"

    def __init__(self, settings):
        super().__init__(settings)
        self.tiers: dict[str, str] = {str(k): v for k, v in self.settings.get("tiers", {}).items()}
        self._tier_of_product = {product: tier for tier, product in self.tiers.items()}

    def payment_url(self, checkout):
        tier = self._tier_of_product.get(checkout.price.product_id)
        creator = self.settings.get("creator")
        if not tier or not creator:
            return None
        return f"https://www.patreon.com/checkout/{quote(creator)}?rid={quote(tier)}"

    def parse_webhook(self, request):
        secret = self.settings.get("webhook_secret", "")
        given = request.header("X-Patreon-Signature") or ""
        expected = hmac.new(secret.encode(), request.body, hashlib.md5).hexdigest()
        if not secret or not hmac.compare_digest(given.lower().encode(), expected.encode()):
            raise InvalidSignature("bad X-Patreon-Signature")
        trigger = one_of(request.header("X-Patreon-Event"), TRIGGERS, "X-Patreon-Event")
        payload = request.json()
        required(payload, "data")
        # Patreon sends no delivery id: the signed body itself identifies the delivery.
        event_id = hashlib.sha256(trigger.encode() + b"\n" + request.body).hexdigest()
        return WebhookResult(event_id=event_id, event_type=trigger, events=self._events(trigger, payload,
                                                                                        request.received_at))

    def _events(self, trigger: str, payload: dict, received_at: dt.datetime) -> list[SubscriptionEvent]:
        member = mapping(payload["data"], "data")
        if member.get("type") != "member":
            return []
        [member_id] = required(member, "id")
        attrs = mapping(member.get("attributes"), "attributes")
        relationships = mapping(member.get("relationships"), "relationships")
        patreon_user = mapping(mapping(relationships.get("user"), "user").get("data"), "user").get("id")
        entitled = mapping(relationships.get("currently_entitled_tiers"), "currently_entitled_tiers").get("data") or []
        if not isinstance(entitled, list):
            raise MalformedWebhook("currently_entitled_tiers is not a list")
        tiers = [mapping(t, "tier").get("id") for t in entitled]
        product = next((self.tiers[t] for t in tiers if t in self.tiers), None)
        common = {"subscription_id": member_id, "external_account_id": patreon_user, "email": attrs.get("email"),
                  "payer_id": patreon_user, "email_source": self._email_source(payload, patreon_user)}
        next_charge = _time(attrs.get("next_charge_date"))
        last_charge = _time(attrs.get("last_charge_date"))
        status = attrs.get("patron_status")
        if attrs.get("last_charge_status") in ("Refunded", "Fraud"):
            return [SubscriptionEvent(kind=REFUNDED, occurred_at=received_at, **common)]
        if trigger.endswith(":delete") or status == "former_patron":
            # Patreon keeps the benefits until the end of the paid period.
            return [SubscriptionEvent(kind=CANCELLED, occurred_at=received_at, period_end=next_charge, **common)]
        if status == "declined_patron":
            return [SubscriptionEvent(kind=EXPIRED, occurred_at=received_at, **common)]
        if status == "active_patron" and product and attrs.get("last_charge_status") == "Paid":
            return [SubscriptionEvent(kind=RENEWED, occurred_at=last_charge or received_at, product_id=product,
                                      period_end=next_charge, **common)]
        return []

    @staticmethod
    def _email_source(payload: dict, patreon_user) -> str:
        """Vendor-verified only when the included Patreon user says ``is_email_verified``."""
        included = payload.get("included") or []
        for item in included if isinstance(included, list) else []:
            if isinstance(item, dict) and item.get("type") == "user" and patreon_user and item.get("id") == patreon_user:
                if mapping(item.get("attributes"), "attributes").get("is_email_verified") is True:
                    return EMAIL_VENDOR_VERIFIED
        return EMAIL_UNVERIFIED

    def cancellation_instructions(self, domain):
        return (f"Your {domain.display_name} membership is a Patreon membership. To cancel it, sign in at "
                "https://www.patreon.com, open Settings > Memberships, choose this creator and select "
                "'Edit' > 'Cancel membership'. You keep your PRO tier until the end of the period you paid for.")


@hookimpl
def register_payment_processors():
    return [PatreonProcessor]
