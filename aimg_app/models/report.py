from __future__ import annotations

import mongoengine as me

from .base import utcnow

REPORT_STATUSES = ("pending", "accepted", "declined", "automaticallyDeclined")


class Report(me.Document):
    """A report of one Item, by a user (``reporter_id``) or by a system queue (None)."""

    id = me.StringField(primary_key=True)
    domain = me.StringField(required=True)
    item_id = me.StringField(required=True)
    author_id = me.StringField(required=True)  # the Item's owner when reported
    reporter_id = me.StringField(null=True)
    # one pending report per (item, reporter or system queue): a partial unique index
    reporter_key = me.StringField(required=True)
    status = me.StringField(default="pending", choices=REPORT_STATUSES)
    queues = me.ListField(me.StringField())
    additional_information = me.StringField(null=True)
    approval_additional_information = me.StringField(null=True)
    approver_id = me.StringField(null=True)
    processed_date = me.DateTimeField(null=True)
    download_count = me.IntField(default=0)
    download_last_date = me.DateTimeField(null=True)
    reported_date = me.DateTimeField(default=utcnow)

    meta = {
        "collection": "reports",
        "indexes": [
            {"fields": ["item_id", "reporter_key"], "unique": True,
             "partialFilterExpression": {"status": "pending"}, "name": "one_pending_report"},
            ("item_id", "status"),
            ("domain", "-reported_date", "-id"),
            ("domain", "status", "-reported_date", "-id"),
            ("domain", "status", "queues", "-reported_date", "-id"),
            ("author_id", "-reported_date", "-id"),
        ],
    }
