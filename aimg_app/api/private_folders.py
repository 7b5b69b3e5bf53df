"""The contract's Private Folder Management chapter."""
from __future__ import annotations

from .base import Blueprint, PaginationArgsSchema
from .fields import IdList
from .folder_routes import register

blp = Blueprint("private_folders", __name__, url_prefix="/", description="Private Folder Management.")


class SelfFoldersArgs(PaginationArgsSchema):
    folderIDs = IdList()


register(blp, public=False, list_path="/getSelfFolders", list_args=SelfFoldersArgs, suffix="SelfFolder",
         list_doc="The caller's private folders, newest first; totalCount is exact.")
