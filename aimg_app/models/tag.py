from __future__ import annotations

import mongoengine as me

from .base import utcnow


class Tag(me.Document):
    """A tag of one domain, created the first time it is applied; ``usage_count`` is the
    number of Items and Folders carrying it, kept with ``$inc``."""

    domain = me.StringField(required=True)
    name = me.StringField(required=True)
    usage_count = me.IntField(default=0)
    created_date = me.DateTimeField(default=utcnow)

    meta = {
        "collection": "tags",
        "indexes": [
            {"fields": ["domain", "name"], "unique": True},
            ("domain", "-usage_count", "name"),
        ],
    }
