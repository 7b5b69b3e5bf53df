from __future__ import annotations

import mongoengine as me

from .base import utcnow


class StoredFile(me.Document):
    """Metadata of a file on SeaweedFS; ``fid`` locates the bytes, ``checksum`` guards them."""

    id = me.StringField(primary_key=True)
    fid = me.StringField(required=True)
    file_name = me.StringField(required=True)
    content_type = me.StringField(required=True)
    file_size = me.IntField(required=True)
    checksum = me.StringField(required=True)
    checksum_algorithm = me.StringField(default="sha256")
    custom_metadata = me.DictField()
    owner_id = me.StringField(null=True)
    created_by = me.StringField(null=True)  # admin name for admin uploads
    domain = me.StringField(required=True)
    created_date = me.DateTimeField(default=utcnow)

    meta = {"collection": "files", "indexes": ["owner_id"]}
