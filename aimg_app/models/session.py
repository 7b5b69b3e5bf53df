from __future__ import annotations

import mongoengine as me

from .base import utcnow


class Session(me.Document):
    """A front-end session, keyed by the X-Session-ID the front-end chose (a UUID)."""

    id = me.StringField(primary_key=True)
    domain = me.StringField(required=True)
    user_id = me.StringField(null=True)
    is_at_least_18_confirmed = me.BooleanField(default=False)
    created_date = me.DateTimeField(default=utcnow)
    updated_date = me.DateTimeField(default=utcnow)

    meta = {"collection": "sessions", "indexes": ["user_id"]}
