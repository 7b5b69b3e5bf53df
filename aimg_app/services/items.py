"""The life of an Item as generation sees it: created queued, then running, then completed
or failed. Completion is idempotent: only the first transition to ``completed`` counts, so
a job that runs twice (a worker killed mid-job) never completes an Item twice.

Counters: an Item joins its owner's ``itemCount`` and ``rootFolderItemCount`` when it
completes (a queued or failed Item is not part of the library).
"""
from __future__ import annotations

import uuid
from typing import Any, Iterable

from ..models import User
from ..models.base import utcnow
from ..models.item import Item, VideoFrameEntry

_OPEN = ("queued", "running")


def create_queued_items(*, user_id: str, domain: str, count: int, mtype: str, params: dict[str, Any],
                        batch_id: str | None = None, workflow_id: str | None = None) -> list[Item]:
    """``count`` queued Items sharing one batch id; ``params`` are Item fields (prompt, model_id...)."""
    batch_id = batch_id or str(uuid.uuid4())
    items = [Item(id=str(uuid.uuid4()), domain=domain, user_id=user_id, batch_id=batch_id, workflow_id=workflow_id,
                  mtype=mtype, status="queued", **params) for _ in range(count)]
    if items:
        Item.objects.insert(items, load_bulk=False)
    return items


def mark_running(item_ids: Iterable[str], progress: float | None = None) -> None:
    updates: dict[str, Any] = {"set__status": "running"}
    if progress is not None:
        updates["set__progress"] = max(0.0, min(1.0, float(progress)))
    Item.objects(id__in=list(item_ids), status__in=_OPEN, started_date=None).update(set__started_date=utcnow())
    Item.objects(id__in=list(item_ids), status__in=_OPEN).update(**updates)


def complete_item(item_id: str, *, url: str, file_id: str | None, width: int | None, height: int | None,
                  seed: int | None = None, frames: list[dict] | None = None, **extra: Any) -> bool:
    """Complete a queued/running Item; True only for the call that completed it."""
    updates = {
        "set__status": "completed", "set__url": url, "set__file_id": file_id, "set__width": width,
        "set__height": height, "set__progress": 1.0, "set__completed_date": utcnow(), "set__error_message": None,
    }
    if seed is not None:
        updates["set__seed"] = seed
    if frames:
        updates["set__frames"] = [VideoFrameEntry(**frame) for frame in frames]
    for key, value in extra.items():
        updates[f"set__{key}"] = value
    changed = Item.objects(id=item_id, status__in=_OPEN).update_one(**updates)
    if changed:
        item = Item.objects(id=item_id).only("user_id").first()
        User.objects(id=item.user_id).update_one(inc__item_count=1, inc__root_folder_item_count=1)
    return bool(changed)


def fail_item(item_id: str, message: str) -> bool:
    """Fail a queued/running Item with a message a user can read; True if this call failed it."""
    return bool(Item.objects(id=item_id, status__in=_OPEN).update_one(
        set__status="failed", set__error_message=message[:1000], set__completed_date=utcnow()))
