"""The contract's Public Folder Management chapter."""
from __future__ import annotations

from marshmallow import fields, validate

from .base import Blueprint, PaginationArgsSchema
from .fields import IdList
from .folder_routes import register

blp = Blueprint("public_folders", __name__, url_prefix="/", description="Public Folder Management.")


class PublicFoldersArgs(PaginationArgsSchema):
    userID = fields.String(validate=validate.Length(min=1, max=128))
    folderIDs = IdList()


register(blp, public=True, list_path="/getPublicFolders", list_args=PublicFoldersArgs, suffix="PublicFolder",
         list_doc="Public folders (of one user, or all), newest first; totalCount is exact.")
