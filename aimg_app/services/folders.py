"""Private and public folders of a user's library: bulk add/remove of at most 1,000 ids a call
(ids that cannot be applied are skipped), at most 4 thumbnails a folder.

Private folder ids are UUIDs, public ones ``p-`` + UUID. An Item is in at most one folder
(none: the root folder); moving it is ``items.move_item``, which keeps every counter in
step. Thumbnails (at most 4, chosen by the owner among the folder's Items) and tags are
small lists edited read-modify-write under the folder's ``rev``; ``sampleImages`` are
recomputed from the folder's newest Items whenever its content changes.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from ..errors import BadRequest, NotFound
from ..models import User
from ..models.base import utcnow
from ..models.folder import Folder, FolderThumbnail
from ..models.item import Item
from ..pagination import PageRequest, paginate
from . import items as items_service
from .library import LIST_SHAPES, Viewer, check_ids

MAX_THUMBNAILS = 4
MAX_BULK = items_service.MAX_BULK_IDS


def _kind(is_public: bool) -> str:
    return "Public folder" if is_public else "Private folder"


@dataclass(frozen=True)
class ShownFolder:
    """A folder as one viewer sees it: what the Folder schema writes."""

    folder: Folder
    viewer: Viewer
    visible: frozenset[str] | None = None  # for others: the thumbnails' Items that are publicly visible

    @property
    def sees_all(self) -> bool:
        return self.viewer.is_admin or self.folder.user_id == self.viewer.user_id

    @property
    def image_count(self) -> int:
        """Others see a public folder's public content only."""
        return self.folder.image_count if self.sees_all else self.folder.public_item_count

    @property
    def thumbnails(self) -> list[FolderThumbnail]:
        """Others never see a thumbnail of an Item they may not see (``with_visible_thumbnails``)."""
        if self.sees_all:
            return list(self.folder.thumbnails)
        return [t for t in self.folder.thumbnails if self.visible is not None and t.image_id in self.visible]


def with_visible_thumbnails(shown: list[ShownFolder]) -> list[ShownFolder]:
    """``shown`` with, for others' folders, which thumbnails are publicly visible: one query a
    page. The thumbnails are kept to visible Items where they change; this holds even so."""
    ids = list({t.image_id for s in shown if not s.sees_all for t in s.folder.thumbnails})
    found = Item.objects(id__in=ids, is_publicly_visible=True).only("id") if ids else []
    visible = frozenset(i.id for i in found)
    return [s if s.sees_all else ShownFolder(s.folder, s.viewer, visible) for s in shown]


def owned_folder(user_id: str, folder_id: str | None, is_public: bool | None) -> Folder:
    """The caller's live folder ``folder_id`` of the given kind (None: either), else 404."""
    folder = Folder.objects(id=folder_id, user_id=user_id, is_deleted=False).first() if folder_id else None
    if folder is None or (is_public is not None and folder.is_public != is_public):
        raise NotFound(f"{_kind(bool(is_public)) if is_public is not None else 'Folder'} not found.")
    return folder


# --- lifecycle ----------------------------------------------------------------------------------


def create_folder(user: User, is_public: bool, name: str, description: str | None) -> Folder:
    folder_id = ("p-" if is_public else "") + str(uuid.uuid4())
    folder = Folder(id=folder_id, domain=user.domain, user_id=user.id, is_public=is_public, name=name,
                    description=description or None)
    folder.save(force_insert=True)
    return folder


def set_properties(user: User, folder_id: str, is_public: bool, name: str | None, description: str | None) -> Folder:
    if name is None and description is None:
        raise BadRequest("At least one of folderName or folderDescription must be provided.")
    folder = owned_folder(user.id, folder_id, is_public)
    updates: dict[str, Any] = {"set__updated_date": utcnow()}
    if name is not None:
        updates["set__name"] = name
    if description is not None:
        updates["set__description"] = description or None
    Folder.objects(id=folder.id, is_deleted=False).update_one(**updates)
    return Folder.objects(id=folder.id).first()


def delete_folder(user: User, folder_id: str, is_public: bool) -> bool:
    """Delete a folder; its Items go to the root folder (each move keeps the counters)."""
    folder = owned_folder(user.id, folder_id, is_public)
    if not Folder.objects(id=folder.id, is_deleted=False).update_one(set__is_deleted=True,
                                                                    set__deleted_date=utcnow()):
        raise NotFound(f"{_kind(is_public)} not found.")
    from . import tags as tags_service

    tags_service.release(folder.domain, folder.tags)
    touched = items_service.Touched()
    while True:
        ids = [i.id for i in Item.objects(folder_id=folder.id, status="completed", is_deleted=False)
               .only("id").limit(MAX_BULK)]
        moved = sum(items_service.move_item(i, None, source=folder.id, touched=touched)[0] for i in ids)
        if not ids or not moved:
            break
    touched.discard(folder.id)
    touched.flush()
    return True


def delete_public_folders_of_user(user: User) -> None:
    """A deleted user's public folders stop being listed: each is deleted as its owner would
    (their Items move to the root folder; private folders stay, no one else sees them)."""
    for folder_id in [f.id for f in Folder.objects(user_id=user.id, is_public=True, is_deleted=False).only("id")]:
        try:
            delete_folder(user, folder_id, True)
        except NotFound:  # deleted meanwhile
            pass


# --- lists ---------------------------------------------------------------------------------------


def list_self_folders(user: User, viewer: Viewer, args: dict) -> tuple[list[ShownFolder], dict]:
    spec = LIST_SHAPES["selfFolders"]
    qs = Folder.objects(user_id=user.id, is_public=False, is_deleted=False)
    assert set(spec.equality) == {"user_id", "is_public", "is_deleted"}
    if args.get("folderIDs"):
        qs = qs.filter(id__in=args["folderIDs"][:MAX_BULK])
    page = paginate(qs, "created_date", PageRequest.from_args(args), total_count=qs.count,
                    transform=lambda f: ShownFolder(f, viewer))
    return page.items, page.metadata


def list_public_folders(viewer: Viewer, args: dict) -> tuple[list[ShownFolder], dict]:
    if args.get("userID"):
        qs = Folder.objects(user_id=args["userID"], is_public=True, is_deleted=False, domain=viewer.domain)
    else:
        qs = Folder.objects(domain=viewer.domain, is_public=True, is_deleted=False)
    if args.get("folderIDs"):
        qs = qs.filter(id__in=args["folderIDs"][:MAX_BULK])
    page = paginate(qs, "created_date", PageRequest.from_args(args), total_count=qs.count,
                    transform=lambda f: ShownFolder(f, viewer))
    return page.items, page.metadata


# --- content ----------------------------------------------------------------------------------------


def add_items(user: User, folder_id: str, is_public: bool, ids: list[str]) -> bool:
    folder = owned_folder(user.id, folder_id, is_public)
    ids = check_ids(ids, limit=MAX_BULK)
    touched = items_service.Touched()
    moved = [items_service.move_item(i, folder, owner_id=user.id, touched=touched)[0] for i in ids]
    touched.flush()
    return any(moved)


def remove_items(user: User, folder_id: str, is_public: bool, ids: list[str]) -> bool:
    folder = owned_folder(user.id, folder_id, is_public)
    ids = check_ids(ids, limit=MAX_BULK)
    touched = items_service.Touched()
    moved = [items_service.move_item(i, None, owner_id=user.id, source=folder.id, touched=touched)[0] for i in ids]
    touched.flush()
    return any(moved)


def move_items(user: User, source_id: str | None, destination_id: str | None,
               ids: list[str]) -> list[tuple[str, bool, str]]:
    source = owned_folder(user.id, source_id, None).id if source_id else None
    destination = owned_folder(user.id, destination_id, None) if destination_id else None
    ids = check_ids(ids, limit=MAX_BULK)
    touched = items_service.Touched()
    out = [(i, *items_service.move_item(i, destination, owner_id=user.id, source=source, touched=touched))
           for i in ids]
    touched.flush()
    return out


# --- thumbnails -------------------------------------------------------------------------------------


def _eligible_thumbnails(folder: Folder, ids: list[str]) -> dict[str, str]:
    """id -> url of the requested Items that are in the folder (and visible, if public)."""
    where: dict[str, Any] = {"folder_id": folder.id, "user_id": folder.user_id, "is_deleted": False}
    if folder.is_public:
        where["is_publicly_visible"] = True
    return {i.id: i.url or "" for i in Item.objects(id__in=ids, **where).only("id", "url")}


def edit_thumbnails(user: User, folder_id: str, is_public: bool, ids: list[str], mode: str) -> dict:
    """``mode``: add, remove or set. Returns {success, modified, actual}."""
    ids = check_ids(ids, limit=MAX_BULK) if mode != "set" or ids else []
    for _attempt in range(5):
        folder = owned_folder(user.id, folder_id, is_public)
        current = [t.image_id for t in folder.thumbnails]
        urls = {t.image_id: t.url for t in folder.thumbnails}
        if mode == "remove":
            modified = [i for i in ids if i in current]
            new = [i for i in current if i not in modified]
        else:
            eligible = _eligible_thumbnails(folder, ids)
            urls.update(eligible)
            wanted = [i for i in ids if i in eligible]
            if mode == "add":
                modified = [i for i in wanted if i not in current][: max(0, MAX_THUMBNAILS - len(current))]
                new = current + modified
            else:
                new = wanted[:MAX_THUMBNAILS]
                modified = new
        if Folder.objects(id=folder.id, rev=folder.rev, is_deleted=False).update_one(
                set__thumbnails=[FolderThumbnail(image_id=i, url=urls.get(i, "")) for i in new], inc__rev=1,
                set__updated_date=utcnow()):
            success = bool(modified) if mode != "set" else len(new) == len(ids)
            return {"success": success, "modified": modified, "actual": new}
    raise BadRequest("The folder changed concurrently; try again.")
