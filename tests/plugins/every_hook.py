"""A throwaway plugin implementing every hook, so each hook has a test through the API."""
from __future__ import annotations

import mongoengine as me
from flask import Blueprint, jsonify, request

from aimg_app.models.base import from_epoch_ms, utcnow
from aimg_app.plugin_api import AffiliateAd, AffiliateAdProvider, BadRequest, ReportQueue, hookimpl


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
