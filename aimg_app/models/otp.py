from __future__ import annotations

import mongoengine as me

from .base import utcnow


class OtpChallenge(me.Document):
    """One emailed one-time password. Only its keyed hash is stored."""

    domain = me.StringField(required=True)
    email = me.StringField(required=True)
    code_hash = me.StringField(required=True)
    sign_up = me.BooleanField(default=False)
    attempts = me.IntField(default=0)
    state = me.StringField(default="active", choices=("active", "used", "burnt", "superseded"))
    created_date = me.DateTimeField(default=utcnow)
    expires_date = me.DateTimeField(required=True)

    meta = {"collection": "otp_challenges", "indexes": [("domain", "email", "-created_date"), "expires_date"]}
