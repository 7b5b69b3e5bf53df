from __future__ import annotations

import mongoengine as me

from .base import utcnow


class OAuthState(me.Document):
    """One started OAuth login: what to do when the provider sends the user back."""

    state = me.StringField(required=True, unique=True)
    provider = me.StringField(required=True)
    domain = me.StringField(required=True)
    session_id = me.StringField(required=True)
    redirect_url = me.StringField(required=True)
    callback_url = me.StringField(required=True)
    code_verifier = me.StringField(null=True)
    ref_list = me.ListField(me.StringField())
    rs = me.StringField(null=True)
    is_at_least_18_confirmed = me.BooleanField(default=False)
    used = me.BooleanField(default=False)
    created_date = me.DateTimeField(default=utcnow)
    expires_date = me.DateTimeField(required=True)

    meta = {"collection": "oauth_states", "indexes": ["expires_date"]}


class OAuthToken(me.Document):
    """The provider's token of a signed-in session, kept to revoke it at sign-out."""

    session_id = me.StringField(required=True)
    user_id = me.StringField(required=True)
    provider = me.StringField(required=True)
    token = me.DictField()
    created_date = me.DateTimeField(default=utcnow)

    meta = {"collection": "oauth_tokens", "indexes": ["session_id"]}
