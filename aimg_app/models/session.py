from __future__ import annotations

import mongoengine as me

from .base import utcnow
from .changes import Watched


class Session(Watched):
    """A front-end session, keyed by the X-Session-ID the front-end chose (a UUID)."""

    id = me.StringField(primary_key=True)
    domain = me.StringField(required=True)
    user_id = me.StringField(null=True)
    # the user's auth_epoch when this session signed in; a lower one than the user's is signed out
    auth_epoch = me.IntField(default=0)
    is_at_least_18_confirmed = me.BooleanField(default=False)
    created_date = me.DateTimeField(default=utcnow)
    updated_date = me.DateTimeField(default=utcnow)

    meta = {"collection": "sessions", "indexes": ["user_id"]}
