"""The nine folder endpoints, shared by the Private and the Public Folder chapters (the
two chapters are the same API over the two kinds of folder)."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from .. import context
from ..envelope import ok
from ..services import folders as folders_service
from ..services.library import Viewer
from .base import ContractSchema, envelope, success_schema
from .fields import IdList, Timestamp, derived

FOLDER_ID = fields.String(required=True, validate=validate.Length(min=1, max=128))
NAME = validate.Length(min=1, max=100)
DESCRIPTION = validate.Length(max=2000)


class ThumbnailSchema(Schema):
    imageID = fields.String(required=True, attribute="image_id")
    url = fields.String(required=True)


class FolderSchema(ContractSchema):
    """The contract's Folder, read from a ``folders.ShownFolder``."""

    id = fields.String(required=True, attribute="folder.id")
    name = fields.String(required=True, attribute="folder.name")
    description = derived(fields.String, lambda s: s.folder.description or None)
    userID = fields.String(required=True, attribute="folder.user_id")
    isPublic = fields.Boolean(required=True, attribute="folder.is_public")
    imageCount = fields.Integer(required=True, attribute="image_count")
    sampleImages = fields.List(fields.Nested(ThumbnailSchema), required=True, attribute="folder.sample_images")
    thumbnails = fields.List(fields.Nested(ThumbnailSchema), required=True, attribute="thumbnails")
    createdDate = Timestamp(required=True, attribute="folder.created_date")
    updatedDate = Timestamp(required=True, attribute="folder.updated_date")
    tags = fields.List(fields.String(), required=True, attribute="folder.tags")


class CreateFolderSchema(Schema):
    name = fields.String(required=True, validate=NAME)
    description = fields.String(validate=DESCRIPTION)


class FolderPropertiesSchema(Schema):
    folderID = FOLDER_ID
    folderName = fields.String(validate=NAME)
    folderDescription = fields.String(validate=DESCRIPTION)


class FolderIdArgs(Schema):
    folderID = FOLDER_ID


class FolderImagesSchema(Schema):
    folderID = FOLDER_ID
    imageIDs = IdList(required=True)


FolderResponse = envelope("FolderResponse", fields.Nested(FolderSchema))
FolderListResponse = envelope("FolderListResponse", fields.List(fields.Nested(FolderSchema)), paginated=True)
SuccessResponse = success_schema("FolderSuccessResponse", success=fields.Boolean(required=True))
ThumbnailsResponse = success_schema("ThumbnailsResponse", success=fields.Boolean(required=True),
                                    modified=fields.List(fields.String()), actual=fields.List(fields.String()))


def viewer(user=None) -> Viewer:
    user = user if user is not None else context.current_user(required=False)
    return Viewer(user.id if user else None, context.admin_name() is not None, context.domain().identifier)


def register(blp, *, public: bool, list_path: str, list_args: type[Schema], list_doc: str, suffix: str) -> None:
    """Mount the folder endpoints of one kind on ``blp`` (``suffix``: SelfFolder or PublicFolder)."""
    noun = "public" if public else "private"

    @blp.route(list_path, methods=["GET"])
    @blp.arguments(list_args, location="query")
    @blp.response(200, FolderListResponse)
    def list_folders(args):
        if public:
            context.require_session_header()
            items, metadata = folders_service.list_public_folders(viewer(), args)
            items = folders_service.with_visible_thumbnails(items)
        else:
            user = context.current_user()
            items, metadata = folders_service.list_self_folders(user, viewer(user), args)
        return ok(items, metadata)

    list_folders.__doc__ = list_doc

    @blp.route(f"/create{suffix}", methods=["POST"])
    @blp.arguments(CreateFolderSchema)
    @blp.response(200, FolderResponse)
    def create_folder(body):
        user = context.current_user()
        folder = folders_service.create_folder(user, public, body["name"], body.get("description"))
        return ok(folders_service.ShownFolder(folder, viewer(user)))

    create_folder.__doc__ = f"Create a {noun} folder owned by the caller."

    @blp.route(f"/set{suffix}Properties", methods=["POST"])
    @blp.arguments(FolderPropertiesSchema)
    @blp.response(200, FolderResponse)
    def set_folder_properties(body):
        user = context.current_user()
        folder = folders_service.set_properties(user, body["folderID"], public, body.get("folderName"),
                                                body.get("folderDescription"))
        return ok(folders_service.ShownFolder(folder, viewer(user)))

    set_folder_properties.__doc__ = f"Rename a {noun} folder or change its description (empty string clears it)."

    @blp.route(f"/delete{suffix}", methods=["DELETE"])
    @blp.arguments(FolderIdArgs, location="query")
    @blp.response(200, SuccessResponse)
    def delete_folder(args):
        user = context.current_user()
        return ok({"success": folders_service.delete_folder(user, args["folderID"], public)})

    delete_folder.__doc__ = f"Delete a {noun} folder; its Items move to the root folder."

    plural = "Public" if public else "Self"

    @blp.route(f"/addImagesTo{suffix}", methods=["POST"])
    @blp.arguments(FolderImagesSchema)
    @blp.response(200, SuccessResponse)
    def add_images(body):
        user = context.current_user()
        return ok({"success": folders_service.add_items(user, body["folderID"], public, body["imageIDs"])})

    add_images.__doc__ = (f"Move up to 1,000 of the caller's Items into a {noun} folder"
                          + (" (public, approved Items only)." if public else "."))

    @blp.route(f"/removeImagesFrom{suffix}", methods=["POST"])
    @blp.arguments(FolderImagesSchema)
    @blp.response(200, SuccessResponse)
    def remove_images(body):
        user = context.current_user()
        return ok({"success": folders_service.remove_items(user, body["folderID"], public, body["imageIDs"])})

    remove_images.__doc__ = f"Move up to 1,000 Items out of a {noun} folder to the root folder."

    for mode, verb in (("add", "addThumbnailImagesFor"), ("remove", "removeThumbnailImagesFor"),
                       ("set", "setThumbnailImagesFor")):
        def make(mode=mode):
            def thumbnails(body):
                user = context.current_user()
                return ok(folders_service.edit_thumbnails(user, body["folderID"], public, body["imageIDs"], mode))
            thumbnails.__name__ = f"{mode}_thumbnails"
            thumbnails.__doc__ = f"{mode.capitalize()} thumbnails of a {noun} folder (at most 4, among its Items)."
            return thumbnails

        view = make()
        blp.route(f"/{verb}{plural}Folder", methods=["POST"])(
            blp.arguments(FolderImagesSchema)(blp.response(200, ThumbnailsResponse)(view)))
