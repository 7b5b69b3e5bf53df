from __future__ import annotations

import mongoengine as me

from .base import utcnow


class FolderThumbnail(me.EmbeddedDocument):
    """The contract's ImageThumbnail: an Item of the folder shown as a preview."""

    image_id = me.StringField(required=True)
    url = me.StringField(default="")


class Folder(me.Document):
    """A private (UUID id) or public (``p-`` + UUID id) folder of one user's library.

    ``image_count`` counts the Items in it and ``public_item_count`` the publicly visible
    ones; both change with ``$inc`` in the operation that moves an Item. ``rev`` guards the
    small lists (thumbnails, tags) edited read-modify-write.
    """

    id = me.StringField(primary_key=True)
    domain = me.StringField(required=True)
    user_id = me.StringField(required=True)
    is_public = me.BooleanField(required=True)
    name = me.StringField(required=True)
    description = me.StringField(null=True)
    image_count = me.IntField(default=0)
    public_item_count = me.IntField(default=0)
    sample_images = me.EmbeddedDocumentListField(FolderThumbnail)
    thumbnails = me.EmbeddedDocumentListField(FolderThumbnail)
    tags = me.ListField(me.StringField())
    rev = me.IntField(default=0)
    created_date = me.DateTimeField(default=utcnow)
    updated_date = me.DateTimeField(default=utcnow)
    is_deleted = me.BooleanField(default=False)
    deleted_date = me.DateTimeField(null=True)

    meta = {
        "collection": "folders",
        "indexes": [
            ("user_id", "is_public", "is_deleted", "-created_date", "-id"),
            ("domain", "is_public", "is_deleted", "-created_date", "-id"),
        ],
    }
