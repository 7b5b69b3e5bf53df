"""The contract's Tags Management chapter."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from .. import context
from ..envelope import ok
from ..services import tags as tags_service
from .base import Blueprint, PaginationArgsSchema, envelope, success_schema
from .fields import IdList

blp = Blueprint("tags", __name__, url_prefix="/", description="Tags Management.")


class TagSchema(Schema):
    name = fields.String(required=True)
    usageCount = fields.Integer()


class TagsListArgs(PaginationArgsSchema):
    tags = IdList()


@blp.route("/getTagsList", methods=["GET"])
@blp.arguments(TagsListArgs, location="query")
@blp.response(200, envelope("TagsListResponse", fields.List(fields.Nested(TagSchema)), paginated=True))
def get_tags_list(args):
    """The tags in use on public Items and Folders and the caller's own (at most 100 a page), most used
    first; totalCount is exact."""
    context.require_session_header()
    viewer = context.current_user(required=False)
    items, metadata = tags_service.tags_list(context.domain().identifier, viewer.id if viewer else None,
                                             args.get("tags"), args["limit"], args.get("skipCount"))
    return ok(items, metadata)


class TagsSchema(Schema):
    tags = fields.List(fields.String(validate=validate.Length(max=256)), required=True)
    imageID = fields.String(validate=validate.Length(min=1, max=128))
    folderID = fields.String(validate=validate.Length(min=1, max=128))


TagsResponse = success_schema("TagsResponse", success=fields.Boolean(required=True),
                              modified=fields.List(fields.String()), actual=fields.List(fields.String()))


@blp.route("/addTagsToItem", methods=["POST"])
@blp.arguments(TagsSchema)
@blp.response(200, TagsResponse)
def add_tags_to_item(body):
    """Add tags to one of the caller's Items, or to a folder (folderID wins when both are given)."""
    user = context.current_user()
    return ok(tags_service.add_tags(user.id, body["tags"], body.get("imageID"), body.get("folderID")))


@blp.route("/removeTagsFromItem", methods=["POST"])
@blp.arguments(TagsSchema)
@blp.response(200, TagsResponse)
def remove_tags_from_item(body):
    """Remove tags from one of the caller's Items or folders."""
    user = context.current_user()
    return ok(tags_service.remove_tags(user.id, body["tags"], body.get("imageID"), body.get("folderID")))


@blp.route("/setTagsForItem", methods=["POST"])
@blp.arguments(TagsSchema)
@blp.response(200, TagsResponse)
def set_tags_for_item(body):
    """Replace the tags of one of the caller's Items or folders."""
    user = context.current_user()
    return ok(tags_service.set_tags(user.id, body["tags"], body.get("imageID"), body.get("folderID")))
