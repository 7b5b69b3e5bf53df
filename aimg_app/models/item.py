from __future__ import annotations

import mongoengine as me

from .base import utcnow

ITEM_STATUSES = ("queued", "running", "completed", "failed", "cancelled")
APPROVAL_STATUSES = ("none", "pending", "approved", "rejected")


class VideoFrameEntry(me.EmbeddedDocument):
    frame_number = me.IntField(required=True)
    frame_count = me.IntField(required=True)
    url = me.StringField(required=True)
    file_id = me.StringField(null=True)


class Item(me.Document):
    """A generated image or video. Created queued by the generation services, completed (or
    failed) by a worker through ``services.items``; the library features own the rest."""

    id = me.StringField(primary_key=True)
    domain = me.StringField(required=True)
    user_id = me.StringField(required=True)
    batch_id = me.StringField(null=True)
    workflow_id = me.StringField(null=True)
    mtype = me.StringField(required=True, choices=("image", "video"))
    media_type = me.StringField(default="StaticImage")
    status = me.StringField(default="queued", choices=ITEM_STATUSES)
    error_message = me.StringField(null=True)
    progress = me.FloatField(default=0.0)
    queue_name = me.StringField(null=True)
    job_id = me.StringField(null=True)
    # the result
    url = me.StringField(null=True)
    file_id = me.StringField(null=True)
    width = me.IntField(null=True)
    height = me.IntField(null=True)
    frames = me.EmbeddedDocumentListField(VideoFrameEntry)
    # how it was made
    generator_version = me.StringField(default="1", choices=("1", "2"))
    model_id = me.StringField(null=True)
    model_name = me.StringField(null=True)
    workflow_template_name = me.StringField(null=True)
    workflow_run_parameters = me.ListField(me.DictField())  # [{"name": str, "value": str}]
    prompt = me.StringField(default="")
    negprompt = me.StringField(null=True)
    filtered_prompt = me.StringField(null=True)
    filtered_negprompt = me.StringField(null=True)
    ignored_words = me.ListField(me.StringField())
    steps = me.IntField(null=True)
    seed = me.IntField(null=True)
    subseed = me.IntField(default=0)
    subseed_strength = me.FloatField(default=0.0)
    sampler = me.StringField(null=True)
    cfgscale = me.FloatField(null=True)
    restore_faces = me.BooleanField(default=False)
    lora = me.ListField(me.StringField())
    lora_strength = me.ListField(me.FloatField())
    # lifecycle
    created_date = me.DateTimeField(default=utcnow)
    started_date = me.DateTimeField(null=True)
    completed_date = me.DateTimeField(null=True)
    # library
    view_count = me.IntField(default=0)
    like_count = me.IntField(default=0)
    dislike_count = me.IntField(default=0)
    tags = me.ListField(me.StringField())
    is_public = me.BooleanField(default=False)
    public_approval_status = me.StringField(default="none", choices=APPROVAL_STATUSES)
    approver_id = me.StringField(null=True)
    approval_date = me.DateTimeField(null=True)
    folder_id = me.StringField(null=True)
    folder_added_date = me.DateTimeField(null=True)
    is_protected = me.BooleanField(default=False)
    is_deleted = me.BooleanField(default=False)
    deleted_date = me.DateTimeField(null=True)
    # derived: is_public and in a public folder; kept in step by every update that changes
    # either fact (conditional on the other), so public lists are one index range
    is_publicly_visible = me.BooleanField(default=False)
    is_flagged = me.BooleanField(default=False)  # an accepted report deleted it (counted once)

    # Every paginated list of Items is one range of one of these (newest first by
    # completed_date, ties by _id); ``services.library.LIST_SHAPES`` names which.
    meta = {
        "collection": "items",
        "indexes": [
            ("user_id", "status", "-created_date"),
            ("batch_id",),
            ("workflow_id",),
            ("user_id", "is_deleted", "status", "-completed_date", "-id"),
            ("user_id", "folder_id", "is_deleted", "status", "-completed_date", "-id"),
            ("user_id", "mtype", "is_deleted", "status", "-completed_date", "-id"),
            ("user_id", "public_approval_status", "is_deleted", "status", "-completed_date", "-id"),
            ("domain", "is_deleted", "status", "-completed_date", "-id"),
            ("domain", "public_approval_status", "is_deleted", "status", "-completed_date", "-id"),
            ("domain", "is_publicly_visible", "-completed_date", "-id"),
            ("user_id", "is_publicly_visible", "-completed_date", "-id"),
            ("folder_id", "is_publicly_visible", "-completed_date", "-id"),
            ("folder_id", "is_deleted", "-folder_added_date", "-id"),
            # getFile finds the Item a file belongs to (services.files.check_item_file)
            ("file_id",),
            ("frames.file_id",),
            # the reaper's Items still open under a run that ended (``runs.ended_with_open_items``)
            ("status", "created_date"),
        ],
    }
