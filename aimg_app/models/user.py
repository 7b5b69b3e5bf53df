from __future__ import annotations

import mongoengine as me

from .base import utcnow
from .changes import Watched


class LoginProviderLink(me.EmbeddedDocument):
    """How a user can sign in (internal OTP/Password) or an OAuth account linked to them."""

    provider_type = me.StringField(required=True, choices=("internal", "oauth"))
    provider_id = me.StringField(required=True)  # OTP, Password, Google, Discord, GitHub, Patreon
    user_id = me.StringField(null=True)  # the account id at the OAuth provider
    linked_date = me.DateTimeField(default=utcnow)


class ArchivedEmail(me.EmbeddedDocument):
    email = me.StringField(required=True)
    archived_date = me.DateTimeField(default=utcnow)


class User(Watched):
    """A user of one domain. Counters are kept with atomic ``$inc`` by the features that own
    them (never recomputed by scanning); tier fields are written by the tier engine only."""

    id = me.StringField(primary_key=True)
    domain = me.StringField(required=True)
    email = me.StringField(required=True)  # lower-cased
    username = me.StringField(required=True)
    username_lower = me.StringField(required=True)
    password_hash = me.StringField(null=True)
    # True once someone proved they hold the mailbox (OTP, magic link, a provider's verified
    # email); a password set before that is dropped when the owner proves it.
    email_verified = me.BooleanField(default=False)
    # Bumped in the same write that revokes credentials (a password change, the owner
    # proving the email): every session signed in under an older epoch is signed out, even
    # one whose sign-in was still in flight when the credential changed.
    auth_epoch = me.IntField(default=0)
    is_at_least_18_confirmed = me.BooleanField(default=False)
    created_date = me.DateTimeField(default=utcnow)
    updated_date = me.DateTimeField(default=utcnow)
    deleted_date = me.DateTimeField(null=True)
    is_disabled = me.BooleanField(default=False)
    roles = me.ListField(me.StringField())
    ref_list = me.ListField(me.StringField())
    rs = me.StringField(null=True)
    abuse = me.IntField(default=0, min_value=0, max_value=9)
    additional_information = me.StringField(null=True)
    profile_picture_file_id = me.StringField(null=True)
    profile_picture_banned = me.BooleanField(default=False)
    login_providers = me.EmbeddedDocumentListField(LoginProviderLink)
    connect_providers = me.EmbeddedDocumentListField(LoginProviderLink)
    archived_emails = me.EmbeddedDocumentListField(ArchivedEmail)
    # counters
    item_count = me.IntField(default=0)
    root_folder_item_count = me.IntField(default=0)
    public_item_count = me.IntField(default=0)
    flagged_images_count = me.IntField(default=0)
    high_heat_images_count = me.IntField(default=0)
    pending_approval_count = me.IntField(default=0)
    kvp_count = me.IntField(default=0)
    # PRO tier, materialised by the tier engine from subscriptions and grants
    tier = me.IntField(default=0)
    tier_expiration = me.DateTimeField(null=True)
    merchant_processor = me.StringField(default="none")
    tier_revision = me.IntField(default=0)  # bumped by each tier recomputation (optimistic concurrency)

    meta = {
        "collection": "users",
        "indexes": [
            {"fields": ["domain", "email"], "unique": True},
            {"fields": ["domain", "username_lower"], "unique": True},
            {"fields": ["login_providers.provider_id", "login_providers.user_id"]},
        ],
    }


class UserKeyValue(me.Document):
    """A user's key-value pair (``setUserKVP``)."""

    user_id = me.StringField(required=True)
    key = me.StringField(required=True)
    value = me.StringField(required=True)
    updated_date = me.DateTimeField(default=utcnow)

    meta = {"collection": "user_kvps", "indexes": [{"fields": ["user_id", "key"], "unique": True}]}
