"""A throwaway plugin implementing every hook, so each hook has a test through the API."""
from __future__ import annotations

import mongoengine as me
from flask import Blueprint, jsonify, request

from aimg_app.models.base import from_epoch_ms, utcnow
from aimg_app.plugin_api import (AffiliateAd, AffiliateAdProvider, BadRequest, CardCharge, InvalidSignature,
                                 LoginProvider, OAuthIdentity, PaymentProcessor, SubscriptionEvent, WebhookResult,
                                 hookimpl)


class Note(me.Document):
    """A tiny paginated collection; its index serves the list's filter and sort."""

    text = me.StringField(required=True)
    created_date = me.DateTimeField(default=utcnow)
    meta = {"collection": "test_notes", "indexes": [("-created_date", "-id")]}


class TestAds(AffiliateAdProvider):
    identifier = "test_ads"
    label = "Test ads"

    def ads(self, domain):
        if not self.settings.get("enabled"):
            return []
        return [AffiliateAd(f"test ad for {domain.identifier}", "https://ads.example/test", 1000)]


@hookimpl
def register_affiliate_ad_providers():
    return [TestAds]


blueprint = Blueprint("test_plugin", __name__, url_prefix="/test-plugin")


@blueprint.route("/notes", methods=["POST"])
def add_notes():
    """Create notes: {"notes": [{"text": str, "createdMs": int}]}."""
    for raw in request.get_json()["notes"]:
        Note(text=raw["text"], created_date=from_epoch_ms(raw["createdMs"]) if "createdMs" in raw else utcnow()).save()
    return jsonify({"hasError": False, "payload": None})


@blueprint.route("/notes", methods=["GET"])
def list_notes():
    from aimg_app.api.base import PaginationArgsSchema
    from aimg_app.api.base import Parser
    from aimg_app.pagination import PageRequest, paginate

    args = Parser().parse(PaginationArgsSchema(), request, location="query")
    page = paginate(Note.objects, "created_date", PageRequest.from_args(args), total_count=Note.objects.count(),
                    transform=lambda n: n.text)
    return jsonify({"hasError": False, "payload": page.items, "metadata": page.metadata})


@blueprint.route("/boom")
def boom():
    raise RuntimeError("internal detail that must never reach a client: /etc/secret")


@blueprint.route("/refuse")
def refuse():
    raise BadRequest("refused by the plugin")


@hookimpl
def register_blueprints():
    return [blueprint]


class TestLogin(LoginProvider):
    """Configured through settings like any provider (tests point it at the fake provider)."""

    identifier = "testlogin"
    label = "TestLogin"

    def identity(self, http):
        info = http.get(self.userinfo_url, timeout=10).json()
        return OAuthIdentity(info["sub"], info["email"], info["email_verified"])


@hookimpl
def register_login_providers():
    return [TestLogin]


class TestPayments(PaymentProcessor):
    """A processor whose webhooks carry a shared token: enough to drive the tier engine."""

    identifier = "other"
    label = "Test payments"
    accepts_cards = True

    def payment_url(self, checkout):
        return f"https://pay.example/test?product={checkout.price.product_id}"

    def parse_webhook(self, request):
        if request.header("X-Test-Token") != "test-token":
            raise InvalidSignature("bad token")
        body = request.json()
        from aimg_app.models.base import from_epoch_ms

        events = [SubscriptionEvent(kind=e["kind"], subscription_id=e.get("subscription"),
                                    occurred_at=from_epoch_ms(e["at"]), user_id=e.get("user"),
                                    email=e.get("email"), product_id=e.get("product"), tier=e.get("tier"),
                                    period_end=from_epoch_ms(e["until"]) if e.get("until") else None,
                                    renews=e.get("renews", True), payment_id=e.get("payment"))
                  for e in body["events"]]
        return WebhookResult(event_id=body["id"], event_type="test", events=events)

    def cancel_at_period_end(self, subscription):
        return True

    def charge_card(self, card, checkout):
        from aimg_app.models.base import utcnow
        import datetime as dt

        if card.number.endswith("0002"):
            from aimg_app.plugin_api import PaymentError

            raise PaymentError("Your card was declined.")
        return CardCharge(subscription_id=f"card-{checkout.payer.user_id}", occurred_at=utcnow(),
                          period_end=utcnow() + dt.timedelta(days=30), payment_id=f"pay-{utcnow().timestamp()}")


@hookimpl
def register_payment_processors():
    return [TestPayments]
