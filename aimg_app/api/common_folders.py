"""The contract's Common Folder Management chapter."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from .. import context
from ..envelope import ok
from ..services import folders as folders_service
from .base import Blueprint
from .fields import IdList
from .images import ResultListResponse, results

blp = Blueprint("common_folders", __name__, url_prefix="/", description="Common Folder Management.")


class MoveItemsSchema(Schema):
    sourceFolderID = fields.String(required=True, allow_none=True, validate=validate.Length(min=1, max=128))
    destinationFolderID = fields.String(required=True, allow_none=True, validate=validate.Length(min=1, max=128))
    imageIDs = IdList(required=True)


@blp.route("/moveItemsBetweenFolders", methods=["POST"])
@blp.arguments(MoveItemsSchema)
@blp.response(200, ResultListResponse)
def move_items_between_folders(body):
    """Move up to 1,000 Items from one of the caller's folders (null: root) to another."""
    user = context.current_user()
    source = body["sourceFolderID"] if body["sourceFolderID"] not in (None, "root") else None
    destination = body["destinationFolderID"] if body["destinationFolderID"] not in (None, "root") else None
    return ok(results(folders_service.move_items(user, source, destination, body["imageIDs"])))
