from __future__ import annotations

import mongoengine as me

from .base import utcnow


class Reaction(me.Document):
    """One user's like or dislike of one Item: at most one per (user, item), so like and
    dislike exclude each other and a repeated request cannot count twice."""

    user_id = me.StringField(required=True)
    item_id = me.StringField(required=True)
    kind = me.StringField(required=True, choices=("like", "dislike"))
    created_date = me.DateTimeField(default=utcnow)

    meta = {
        "collection": "reactions",
        "indexes": [
            {"fields": ["user_id", "item_id"], "unique": True},
            ("item_id",),
        ],
    }
