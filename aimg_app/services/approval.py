"""The public approval workflow (the contract's two annexes on public Items).

Owner: none -> pending (at most ``MAX_PENDING`` pending per user, abuse level < 1),
pending -> none (withdrawn); ``isPublic`` only once approved. Admins: any -> approved
(``isPublic`` becomes true) or rejected (``isPublic`` becomes false); both are final for
the owner. Each transition is one update conditional on the state it was checked in; a
request that loses a race changes nothing and says so.
"""
from __future__ import annotations

from ..errors import BadRequest, Conflict, Forbidden
from ..models import User
from ..models.base import utcnow
from ..models.item import Item
from . import abuse
from .items import ids_of_user, is_public_folder_id, visibility_changed
from .library import ShownItem, Viewer, shown, visible_item

MAX_PENDING = 50


def _set_public(item: Item, value: bool, extra: dict | None = None) -> bool:
    """Set ``is_public`` (and ``extra``) on ``item`` as read, keeping visibility and counters in step."""
    visible = bool(value and is_public_folder_id(item.folder_id) and not item.is_deleted)
    changed = Item.objects(id=item.id, folder_id=item.folder_id, is_public=item.is_public,
                           public_approval_status=item.public_approval_status,
                           is_deleted=item.is_deleted).update_one(set__is_public=value, set__is_publicly_visible=visible,
                                                       **(extra or {}))
    if changed and visible != item.is_publicly_visible and not item.is_deleted:
        visibility_changed(item.id, item.user_id, item.folder_id, +1 if visible else -1)
    return bool(changed)


def set_item_properties(user: User, viewer: Viewer, image_id: str, is_public: bool | None,
                        status: str | None) -> ShownItem:
    """The owner's setItemProperties. Everything is checked before anything changes."""
    if is_public is None and status is None:
        raise BadRequest("At least one of isPublic or publicApprovalStatus must be provided.")
    if status is not None and status not in ("none", "pending"):
        raise Forbidden("Only administrators can approve or reject an Item.")
    item = visible_item(image_id, viewer)
    if item.user_id != user.id or item.is_deleted:
        raise Forbidden("Only the owner of the Item can change its properties.")
    current = item.public_approval_status
    if status is not None and status != current:
        if current in ("approved", "rejected"):
            raise BadRequest(f"The Item is already {current}: its approval status can no longer be changed.")
        if status == "pending" and not abuse.may_request_public_approval(user):
            raise Forbidden("Your account may not submit Items for public approval.")
    if is_public is not None and is_public != item.is_public:
        if current != "approved" or (status is not None and status != current):
            raise BadRequest("isPublic can only be changed once the Item is approved.")
        if is_public and not abuse.may_generate_and_publish(user):
            raise Forbidden("Your account may not publish content.")

    if status is not None and status != current:
        if status == "pending":
            if not User.objects(id=user.id, pending_approval_count__lt=MAX_PENDING).update_one(
                    inc__pending_approval_count=1):
                raise BadRequest(f"You can have at most {MAX_PENDING} Items pending approval.")
            if not Item.objects(id=item.id, public_approval_status="none", is_deleted=False).update_one(
                    set__public_approval_status="pending"):
                User.objects(id=user.id).update_one(inc__pending_approval_count=-1)
                raise Conflict("The Item changed meanwhile; reload it and try again.")
        else:  # withdraw
            if not Item.objects(id=item.id, public_approval_status="pending", is_deleted=False).update_one(
                    set__public_approval_status="none"):
                raise Conflict("The Item changed meanwhile; reload it and try again.")
            User.objects(id=user.id).update_one(inc__pending_approval_count=-1)
    elif is_public is not None and is_public != item.is_public:
        if not _set_public(item, is_public):
            raise Conflict("The Item changed meanwhile; reload it and try again.")
    return shown([Item.objects(id=item.id).first()], viewer)[0]


def set_public_approval_status(item_id: str, status: str, admin: str) -> tuple[bool, str]:
    """An admin's decision: approved (and public) or rejected (and private)."""
    for _attempt in range(5):
        item = Item.objects(id=item_id).first()
        if item is None or item.is_deleted:
            return False, "Item not found."
        if item.status != "completed":
            return False, "The Item is not completed."
        if item.public_approval_status == status:
            return False, f"The Item is already {status}."
        if status == "approved" and User.objects(id=item.user_id, is_disabled=True).count():
            return False, "The owner of the Item is deleted: it cannot be made public."
        extra = {"set__public_approval_status": status, "set__approver_id": admin, "set__approval_date": utcnow()}
        if _set_public(item, status == "approved", extra):
            if item.public_approval_status == "pending":
                User.objects(id=item.user_id).update_one(inc__pending_approval_count=-1)
            return True, ""
    return False, "The Item changed concurrently; try again."


def unpublish_items_of_user(user_id: str) -> None:
    """A deleted user's Items stop being public (out of every public list, folder preview and
    thumbnail) and their pending requests are withdrawn; approvals stay as they were."""
    for batch in ids_of_user(user_id, is_deleted=False, is_public=True):
        for item_id in batch:
            for _attempt in range(5):
                item = Item.objects(id=item_id).first()
                if item is None or not item.is_public or _set_public(item, False):
                    break
    for batch in ids_of_user(user_id, is_deleted=False, public_approval_status="pending"):
        for item_id in batch:
            if Item.objects(id=item_id, public_approval_status="pending").update_one(set__public_approval_status="none"):
                User.objects(id=user_id).update_one(inc__pending_approval_count=-1)
