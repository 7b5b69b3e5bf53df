from __future__ import annotations

import mongoengine as me

from .base import utcnow


class AdminAction(me.Document):
    """One action an admin took in the Admin UI: who, what, on which target, when."""

    id = me.StringField(primary_key=True)
    domain = me.StringField(required=True)
    admin = me.StringField(required=True)  # the name of the admin key
    action = me.StringField(required=True)  # e.g. "approval.approved", "user.abuse"
    target_type = me.StringField(required=True)  # "item", "report", "user"
    target_id = me.StringField(required=True)
    success = me.BooleanField(default=True)
    detail = me.DictField()
    created_date = me.DateTimeField(default=utcnow)

    meta = {
        "collection": "admin_actions",
        "indexes": [
            ("domain", "-created_date", "-id"),
            ("target_id", "-created_date", "-id"),
        ],
    }
