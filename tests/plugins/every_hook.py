"""A throwaway plugin implementing every hook, so each hook has a test through the API."""
from __future__ import annotations

import mongoengine as me
from flask import Blueprint, jsonify, request

from aimg_app.models.base import from_epoch_ms, utcnow
from aimg_app.plugin_api import (AffiliateAd, AffiliateAdProvider, BadRequest, CardCharge, GenerationModel,
                                 InvalidSignature, LoginProvider, OAuthIdentity, PaymentProcessor, ReportQueue,
                                 SamplePrompt, SubscriptionEvent, TemplateParameter, WebhookResult, WorkflowTemplate,
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


class TestBlankTemplate(WorkflowTemplate):
    """A model-free template (EmptyImage -> SaveImage), like the graph used to observe ComfyUI."""

    identifier = "test-blank"
    label = "Test blank image"
    main_output_node = "2"
    max_concurrent = (0, 3, 5)

    def graph(self):
        return {"1": {"class_type": "EmptyImage", "inputs": {"width": "{{W}}", "height": "{{H}}", "batch_size": "{{N}}",
                                                            "color": "{{COLOR}}"}},
                "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "test/{{LABEL}}"}}}

    def parameters(self):
        return [TemplateParameter("Width", "number", "{{W}}", "width", default_value="64", min="8", max="512",
                                  increment="8", option_name="width"),
                TemplateParameter("Height", "number", "{{H}}", "height", default_value="64", min="8", max="512",
                                  increment="8", option_name="height"),
                TemplateParameter("Batch Size", "number", "{{N}}", "images", default_value="1", min="1", max="4",
                                  increment="1", option_name="batchSize"),
                TemplateParameter("Color", "number", "{{COLOR}}", "0xRRGGBB", default_value="0", min="-100",
                                  max="16777215", increment="1"),
                TemplateParameter("Label", "string", "{{LABEL}}", "file prefix", default_value="blank", max="40")]

    def file_groups(self):
        return {"test-group": ["a.safetensors", "b.safetensors"]}


class TestBlankModel(GenerationModel):
    """A legacy model on the blank template (no prompt parameters: it maps only sizes)."""

    identifier = "test-model"
    label = "Test model"
    workflow_template = "test-blank"
    allowed_widths = (64, 128)
    allowed_heights = (64, 128)
    default_resolution = (64, 64)
    max_resolution = 128 * 64
    tier0_concurrent = 2
    sample_prompts = (SamplePrompt("a test prompt", "nothing"),)

    def template_values(self, request):
        return {"Width": request["width"], "Height": request["height"], "Label": "legacy"}


@hookimpl
def register_workflow_templates():
    return [TestBlankTemplate]


@hookimpl
def register_models():
    return [TestBlankModel]


@hookimpl
def filter_prompt(prompt, user):
    return [word for word in ("forbiddenword",) if word in prompt.lower()]


class TestSystemQueue(ReportQueue):
    """A system queue that reports every Item whose prompt mentions "report-me"."""

    identifier = "Test System Queue"
    label = "Test system queue"
    system = True

    def review(self, item):
        return "the prompt asked for it" if "report-me" in item.prompt else None


class TestUserQueue(ReportQueue):
    identifier = "Test User Queue"
    label = "Test user queue"


@hookimpl
def register_report_queues():
    return [TestUserQueue, TestSystemQueue]
