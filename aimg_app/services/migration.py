"""``migrateLibrary``: a user's non-deleted Items and Folders move to another user.

Items move in batches; within a batch each update moves one class of Items (by location,
visibility and approval state) and is conditional on the source owner, so every moved
Item is counted exactly once and both users' counters move by exactly what moved.
"""
from __future__ import annotations

from ..errors import BadRequest, NotFound
from ..models import User
from ..models.folder import Folder
from ..models.item import Item
from ..models.report import Report
from .items import MAX_BULK_IDS

# (conditions, counters each moved Item carries)
_CLASSES = (
    ({"status": "completed", "folder_id": None, "public_approval_status": "pending"},
     ("item_count", "root_folder_item_count", "pending_approval_count")),
    ({"status": "completed", "folder_id": None, "public_approval_status__ne": "pending"},
     ("item_count", "root_folder_item_count")),
    ({"status": "completed", "folder_id__ne": None, "is_publicly_visible": True},
     ("item_count", "public_item_count")),
    ({"status": "completed", "folder_id__ne": None, "is_publicly_visible": False, "public_approval_status": "pending"},
     ("item_count", "pending_approval_count")),
    ({"status": "completed", "folder_id__ne": None, "is_publicly_visible": False,
      "public_approval_status__ne": "pending"}, ("item_count",)),
    ({"status__ne": "completed"}, ()),
)


def migrate_library(source_id: str, destination_id: str) -> dict:
    if source_id == destination_id:
        raise BadRequest("The source and destination users must differ.")
    source = User.objects(id=source_id).first()
    destination = User.objects(id=destination_id).first()
    if source is None:
        raise NotFound("Source user not found.")
    if destination is None:
        raise NotFound("Destination user not found.")
    if destination.is_disabled:
        raise BadRequest("The destination user is disabled.")
    if source.domain != destination.domain:
        raise BadRequest("The users belong to different domains.")
    folders = Folder.objects(user_id=source.id, is_deleted=False).update(set__user_id=destination.id)
    moved_items = 0
    while True:
        batch = [i.id for i in Item.objects(user_id=source.id, is_deleted=False).only("id").limit(MAX_BULK_IDS)]
        if not batch:
            break
        counters: dict[str, int] = {}
        for conditions, carried in _CLASSES:
            n = Item.objects(id__in=batch, user_id=source.id, is_deleted=False, **conditions).update(
                set__user_id=destination.id)
            moved_items += n
            for name in carried:
                counters[name] = counters.get(name, 0) + n
        Report.objects(item_id__in=batch, author_id=source.id).update(set__author_id=destination.id)
        counters = {k: v for k, v in counters.items() if v}
        if counters:
            User.objects(id=source.id).update_one(**{f"inc__{k}": -v for k, v in counters.items()})
            User.objects(id=destination.id).update_one(**{f"inc__{k}": v for k, v in counters.items()})
    return {"success": True, "message": f"Moved {moved_items} Items and {folders} Folders."}
