"""The life of an Item: created queued, then running, then completed or failed (the
generation side), then kept in a library: moved between folders, deleted and restored.

Completion is idempotent: only the first transition to ``completed`` counts, so a job that
runs twice (a worker killed mid-job) never completes an Item twice.

Counters. A completed, non-deleted Item is *in the library*: it counts in its owner's
``item_count`` and in exactly one location, the root (``root_folder_item_count``) or a
folder (``image_count``); when it is also publicly visible (public and in a public folder)
it counts in the owner's and the folder's ``public_item_count``; a ``pending`` approval
request counts in ``pending_approval_count``. Every change of one of those facts is a
conditional update on the Item (on the state it was read in) followed by the ``$inc`` of
exactly the counters it moved, so two racing requests can never both count.
"""
from __future__ import annotations

import uuid
from typing import Any, Iterable

from ..models import User
from ..models.base import utcnow
from ..models.folder import Folder
from ..models.item import Item, VideoFrameEntry

OPEN = ("queued", "running")  # an Item not yet ended
MAX_BULK_IDS = 1000


def create_queued_items(*, user_id: str, domain: str, count: int, mtype: str, params: dict[str, Any],
                        batch_id: str | None = None, workflow_id: str | None = None) -> list[Item]:
    """``count`` queued Items sharing one batch id; ``params`` are Item fields (prompt, model_id...).

    A ``folder_id`` in ``params`` is where the Item lands when it completes.
    """
    batch_id = batch_id or str(uuid.uuid4())
    items = [Item(id=str(uuid.uuid4()), domain=domain, user_id=user_id, batch_id=batch_id, workflow_id=workflow_id,
                  mtype=mtype, status="queued", **params) for _ in range(count)]
    if items:
        Item.objects.insert(items, load_bulk=False)
    return items


def mark_started(item_ids: Iterable[str]) -> None:
    """ComfyUI began generating the queued Items: running, and since when, in one command."""
    Item.objects(id__in=list(item_ids), status="queued").update(set__status="running", set__started_date=utcnow(),
                                                               set__progress=0.0)


def mark_running(item_ids: Iterable[str], progress: float | None = None) -> None:
    """Progress of running Items (``started_date`` is ``mark_started``'s, or completion's)."""
    updates: dict[str, Any] = {"set__status": "running"}
    if progress is not None:
        updates["set__progress"] = max(0.0, min(1.0, float(progress)))
    Item.objects(id__in=list(item_ids), status__in=OPEN).update(**updates)


def complete_item(item_id: str, *, url: str, file_id: str | None, width: int | None, height: int | None,
                  seed: int | None = None, frames: list[dict] | None = None, started: Any = None,
                  **extra: Any) -> Item | None:
    """Complete a queued/running Item; the Item as completed (truthy) only for the call that
    completed it, so that the caller needs no read of it, else None. ``started``: when its
    run started, the Item's ``started_date`` if none was written (its start was not seen:
    a prompt resumed while it executed), in the same command.

    The Item joins its owner's library: the folder it was generated into (when that folder
    is still the owner's), else the root folder.
    """
    now = utcnow()
    updates = {
        "set__status": "completed", "set__url": url, "set__file_id": file_id, "set__width": width,
        "set__height": height, "set__progress": 1.0, "set__completed_date": now, "set__error_message": None,
    }
    if seed is not None:
        updates["set__seed"] = seed
    if frames:
        updates["set__frames"] = [VideoFrameEntry(**frame) for frame in frames]
    for key, value in extra.items():
        updates[f"set__{key}"] = value
    # $max: an unset date (null) sorts first, so it takes ``started``; a date written when the
    # run began executing is later than the run's start and stays.
    starting = {"max__started_date": started} if started is not None else {}
    before = Item.objects(id=item_id, status__in=OPEN).modify(**updates, **starting)
    if before is None:
        return None
    if started is not None and (before.started_date is None or before.started_date < started):
        before.started_date = started
    for name, value in updates.items():  # ``before`` becomes the Item as it is now
        setattr(before, name[len("set__"):], value)
    if before.is_deleted:  # deleted while generating: completed, but not part of the library
        return before
    folder_id = before.folder_id
    if not folder_id:  # the common case, in one command: the library count and the root's
        User.objects(id=before.user_id).update_one(inc__item_count=1, inc__root_folder_item_count=1)
        return before
    User.objects(id=before.user_id).update_one(inc__item_count=1)
    if folder_id and not Folder.objects(id=folder_id, user_id=before.user_id, is_deleted=False).count():
        folder_id = None
        Item.objects(id=item_id).update_one(set__folder_id=None, set__folder_added_date=None)
        before.folder_id = None
    elif folder_id:
        Item.objects(id=item_id).update_one(set__folder_added_date=now)
    location_changed(before.user_id, folder_id, False, +1)
    if folder_id:
        _after_folder_change(folder_id, left_item=None)
        if Folder.objects(id=folder_id, is_deleted=True).count():  # deleted meanwhile
            move_item(item_id, None)
    return before


def fail_item(item_id: str, message: str) -> bool:
    """Fail a queued/running Item with a message a user can read; True if this call failed it."""
    return bool(Item.objects(id=item_id, status__in=OPEN).update_one(
        set__status="failed", set__error_message=message[:1000], set__completed_date=utcnow()))


CANCELLED_MESSAGE = "Cancelled."


def cancel_item(item_id: str) -> bool:
    """End a queued/running Item as cancelled (its owner or an admin asked); True if this call did."""
    return bool(Item.objects(id=item_id, status__in=OPEN).update_one(
        set__status="cancelled", set__error_message=CANCELLED_MESSAGE, set__completed_date=utcnow()))


# --- counters ---------------------------------------------------------------------------------


def location_changed(user_id: str, folder_id: str | None, visible: bool, sign: int) -> None:
    """One library Item arrives at (``sign`` +1) or leaves (-1) a location."""
    if folder_id is None:
        User.objects(id=user_id).update_one(inc__root_folder_item_count=sign)
    elif visible:
        Folder.objects(id=folder_id).update_one(inc__image_count=sign, inc__public_item_count=sign,
                                               set__updated_date=utcnow())
    else:
        Folder.objects(id=folder_id).update_one(inc__image_count=sign, set__updated_date=utcnow())
    if visible:
        User.objects(id=user_id).update_one(inc__public_item_count=sign)


def visibility_changed(item_id: str, user_id: str, folder_id: str | None, sign: int) -> None:
    """A library Item staying in ``folder_id`` became (+1) or stopped being (-1) publicly visible.

    One that stops being visible leaves every public folder's thumbnails (its owner's: only
    the owner's Items can be chosen), so no public preview keeps showing it."""
    User.objects(id=user_id).update_one(inc__public_item_count=sign)
    if sign < 0:
        Folder.objects(user_id=user_id, is_public=True, thumbnails__image_id=item_id).update(
            pull__thumbnails__image_id=item_id, inc__rev=1)
    if folder_id:
        Folder.objects(id=folder_id).update_one(inc__public_item_count=sign)
        refresh_sample_images(folder_id)


def is_public_folder_id(folder_id: str | None) -> bool:
    return bool(folder_id) and folder_id.startswith("p-")


# --- folder side effects -------------------------------------------------------------------

SAMPLE_IMAGES = 4


def refresh_sample_images(folder_id: str) -> None:
    """The folder's automatic preview: its 4 most recently completed Items (the publicly
    visible ones for a public folder, so a preview never shows what others may not see).
    Only the folder owner's completed Items: one still generating has no file to show."""
    from ..models.folder import FolderThumbnail

    if is_public_folder_id(folder_id):
        qs = Item.objects(folder_id=folder_id, is_publicly_visible=True).order_by("-completed_date", "-id")
    else:
        folder = Folder.objects(id=folder_id).only("user_id").first()
        qs = Item.objects(folder_id=folder_id, is_deleted=False, user_id=folder.user_id if folder else None,
                          status="completed").order_by("-folder_added_date", "-id")
    samples = [FolderThumbnail(image_id=i.id, url=i.url or "") for i in qs.only("id", "url").limit(SAMPLE_IMAGES)]
    Folder.objects(id=folder_id).update_one(set__sample_images=samples)


def _after_folder_change(folder_id: str, left_item: str | None, refresh: bool = True) -> None:
    if left_item is not None:
        Folder.objects(id=folder_id, thumbnails__image_id=left_item).update_one(
            pull__thumbnails__image_id=left_item, inc__rev=1)
    if refresh:
        refresh_sample_images(folder_id)


# --- moving between folders --------------------------------------------------------------------


class Touched(set):
    """Folders whose previews need refreshing once a bulk operation is over."""

    def flush(self) -> None:
        for folder_id in self:
            refresh_sample_images(folder_id)
        self.clear()


def move_item(item_id: str, destination: Folder | None, *, owner_id: str | None = None,
              source: str | None | type(Ellipsis) = ..., touched: Touched | None = None) -> tuple[bool, str]:
    """Move a library Item to ``destination`` (None: the root folder).

    ``owner_id`` restricts to that owner's Items; ``source`` (a folder id, None for the
    root) restricts to Items currently there. A public destination takes only eligible
    Items (public and approved). Returns (moved, message).
    """
    for _attempt in range(5):
        item = Item.objects(id=item_id).only("id", "user_id", "folder_id", "is_public", "public_approval_status",
                                             "is_deleted", "status", "is_publicly_visible").first()
        if item is None or item.is_deleted or (owner_id is not None and item.user_id != owner_id):
            return False, "Item not found."
        if item.status != "completed":
            return False, "The Item is not completed."
        if source is not ... and item.folder_id != source:
            return False, "The Item is not in the source folder."
        dest_id = destination.id if destination is not None else None
        if destination is not None and destination.user_id != item.user_id:
            return False, "The folder belongs to another user."
        if item.folder_id == dest_id:
            return False, "The Item is already in that folder."
        if destination is not None and destination.is_public and not (
                item.is_public and item.public_approval_status == "approved"):
            return False, "Only public, approved Items can be placed in a public folder."
        visible = bool(item.is_public and destination is not None and destination.is_public)
        changed = Item.objects(id=item_id, folder_id=item.folder_id, is_public=item.is_public, is_deleted=False,
                               status="completed").update_one(
            set__folder_id=dest_id, set__folder_added_date=utcnow() if dest_id else None,
            set__is_publicly_visible=visible)
        if not changed:
            continue  # changed under us: read again
        location_changed(item.user_id, item.folder_id, item.is_publicly_visible, -1)
        location_changed(item.user_id, dest_id, visible, +1)
        if item.folder_id:
            _after_folder_change(item.folder_id, left_item=item_id, refresh=touched is None)
            if touched is not None:
                touched.add(item.folder_id)
        if dest_id:
            if touched is not None:
                touched.add(dest_id)
            else:
                refresh_sample_images(dest_id)
            if Folder.objects(id=dest_id, is_deleted=True).count():
                # the folder was deleted while we moved in: its sweep may have passed already
                move_item(item_id, None, source=dest_id, touched=touched)
                return False, "The folder was deleted."
        return True, ""
    return False, "The Item changed concurrently; try again."


# --- deletion and restore ------------------------------------------------------------------------


def _why_not_deleted(item_id: str, owner_id: str | None) -> str:
    item = Item.objects(id=item_id).only("user_id", "is_deleted", "is_protected", "status").first()
    if item is None or (owner_id is not None and item.user_id != owner_id):
        return "Item not found."
    if item.is_deleted:
        return "The Item is already deleted."
    if item.is_protected:
        return "The Item is protected; contact an administrator."
    if item.status in OPEN:
        return "The Item is still being generated."
    return "The Item changed concurrently; try again."


def delete_item(item_id: str, *, owner_id: str | None = None, touched: Touched | None = None) -> tuple[bool, str]:
    """Soft-delete one Item (restorable): it leaves its folder and loses its tags. No effect on an
    Item that does not exist, is not ``owner_id``'s, is protected or is already deleted."""
    from . import tags as tags_service

    before = Item.objects(id=item_id, is_deleted=False, is_protected=False, status__in=("completed", "failed"),
                          **({"user_id": owner_id} if owner_id else {})).modify(
        set__is_deleted=True, set__deleted_date=utcnow(), set__folder_id=None, set__folder_added_date=None,
        set__tags=[], set__is_publicly_visible=False)
    if before is None:
        return False, _why_not_deleted(item_id, owner_id)
    if before.status == "completed":
        incs = {"inc__item_count": -1}
        if before.public_approval_status == "pending":
            incs["inc__pending_approval_count"] = -1
        User.objects(id=before.user_id).update_one(**incs)
        location_changed(before.user_id, before.folder_id, before.is_publicly_visible, -1)
        if before.folder_id:
            _after_folder_change(before.folder_id, left_item=item_id, refresh=touched is None)
            if touched is not None:
                touched.add(before.folder_id)
    tags_service.release(before.domain, before.tags)
    return True, ""


def restore_item(item_id: str) -> tuple[bool, str]:
    """Restore a deleted Item whose owner is not disabled to the root folder; its tags are not
    restored."""
    item = Item.objects(id=item_id).only("user_id", "is_deleted").first()
    if item is None:
        return False, "Item not found."
    if not item.is_deleted:
        return False, "The Item is not deleted."
    owner = User.objects(id=item.user_id).only("is_disabled").first()
    if owner is None or owner.is_disabled:
        return False, "The owner of the Item is disabled."
    before = Item.objects(id=item_id, is_deleted=True).modify(set__is_deleted=False, set__deleted_date=None,
                                                              set__folder_id=None, set__is_publicly_visible=False)
    if before is None:
        return False, "The Item is not deleted."
    if before.status == "completed":
        incs = {"inc__item_count": 1, "inc__root_folder_item_count": 1}
        if before.public_approval_status == "pending":
            incs["inc__pending_approval_count"] = 1
        User.objects(id=before.user_id).update_one(**incs)
    return True, ""


def ids_of_user(user_id: str, **conditions) -> Iterable[list[str]]:
    """The user's Item ids matching ``conditions``, in batches (never one huge list)."""
    last = None
    while True:
        qs = Item.objects(user_id=user_id, **conditions)
        if last is not None:
            qs = qs.filter(id__gt=last)
        batch = [i.id for i in qs.order_by("id").only("id").limit(MAX_BULK_IDS)]
        if not batch:
            return
        yield batch
        last = batch[-1]


def delete_items_of_user(user_id: str) -> list[tuple[str, bool, str]]:
    """Soft-delete every Item of a user, batch by batch: (id, deleted, why not) each
    (protected Items stay, and say so)."""
    results = []
    touched = Touched()
    for batch in ids_of_user(user_id, is_deleted=False):
        results += [(item_id, *delete_item(item_id, touched=touched)) for item_id in batch]
    touched.flush()
    return results


def delete_all_items_of_user(user_id: str) -> int:
    """Soft-delete every deletable Item of a user (protected ones stay); the number deleted."""
    return sum(1 for _id, done, _why in delete_items_of_user(user_id) if done)


def restore_all_items_of_user(user_id: str) -> list[tuple[str, bool, str]]:
    results = []
    for batch in ids_of_user(user_id, is_deleted=True):
        results += [(item_id, *restore_item(item_id)) for item_id in batch]
    return results


def set_protected_toggle(item_id: str) -> tuple[bool, str]:
    """Flip an Item's protected flag; the message is the new state ("true"/"false")."""
    for _attempt in range(5):
        item = Item.objects(id=item_id).only("is_protected").first()
        if item is None:
            return False, "Item not found."
        if Item.objects(id=item_id, is_protected=item.is_protected).update_one(set__is_protected=not item.is_protected):
            return True, "true" if not item.is_protected else "false"
    return False, "The Item changed concurrently; try again."
