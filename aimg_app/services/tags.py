"""Tags on Items and Folders.

A tag is lower-cased, then checked against the contract's regular expression as written;
an Item or a Folder carries at most ``MAX_TAGS`` tags. ``Tag.usage_count`` counts the Items
and Folders carrying the tag: each ``$push``/``$pull`` that actually changed a list is
followed by exactly one ``$inc``.
"""
from __future__ import annotations

import re
from typing import Iterable

from ..errors import BadRequest, NotFound
from ..models.base import utcnow
from ..models.folder import Folder
from ..models.item import Item
from ..models.tag import Tag

# The contract's expression, kept as written: ``$-_`` is a range (0x24-0x5F).
TAG_PATTERN = re.compile(r"^[a-z0-9$-_\.\+!\*'\(\)]{1,32}$")
MAX_TAGS = 20
MAX_TAGS_PER_REQUEST = 100
TAGS_LIST_MAX = 100


def normalize(raw: Iterable[str]) -> list[str]:
    """Lower-case, de-duplicate (first occurrence wins); 400 naming every invalid tag."""
    raw = list(raw)
    if len(raw) > MAX_TAGS_PER_REQUEST:
        raise BadRequest(f"tags: at most {MAX_TAGS_PER_REQUEST} tags per request.")
    out: list[str] = []
    bad: list[str] = []
    for tag in raw:
        name = tag.lower()
        if not TAG_PATTERN.match(name):
            bad.append(tag)
        elif name not in out:
            out.append(name)
    if bad:
        shown = ", ".join(repr(b[:40]) for b in bad[:10])
        raise BadRequest(f"tags: invalid tag(s) {shown}; a tag is 1-32 characters matching "
                         r"^[a-z0-9$-_\.\+!\*'\(\)]{1,32}$ after lower-casing.")
    return out


def acquire(domain: str, name: str) -> None:
    Tag.objects(domain=domain, name=name).update_one(upsert=True, inc__usage_count=1,
                                                     set_on_insert__created_date=utcnow())


def release(domain: str, names: Iterable[str]) -> None:
    for name in names:
        Tag.objects(domain=domain, name=name).update_one(inc__usage_count=-1)


# --- targets ----------------------------------------------------------------------------------


def _target(user_id: str, image_id: str | None, folder_id: str | None):
    """(document class, id, domain, current tags) of the caller's Item or Folder; the
    folder wins when both are given (the contract says so)."""
    if folder_id:
        folder = Folder.objects(id=folder_id, user_id=user_id, is_deleted=False).only("id", "domain", "tags").first()
        if folder is None:
            raise NotFound("Folder not found.")
        return Folder, {"id": folder.id, "is_deleted": False}, folder.domain, list(folder.tags)
    if image_id:
        item = Item.objects(id=image_id, user_id=user_id, is_deleted=False).only("id", "domain", "tags", "status").first()
        if item is None or item.status != "completed":
            raise NotFound("Item not found.")
        return Item, {"id": item.id, "is_deleted": False}, item.domain, list(item.tags)
    raise BadRequest("At least one of imageID or folderID must be provided.")


def _add(document, where: dict, domain: str, names: list[str]) -> list[str]:
    added = []
    for name in names:
        # the position check keeps the limit even against a parallel request
        if document.objects(__raw__={f"tags.{MAX_TAGS - 1}": {"$exists": False}}, tags__ne=name, **where).update_one(
                push__tags=name):
            acquire(domain, name)
            added.append(name)
    return added


def _remove(document, where: dict, domain: str, names: list[str]) -> list[str]:
    removed = []
    for name in names:
        if document.objects(tags=name, **where).update_one(pull__tags=name):
            release(domain, [name])
            removed.append(name)
    return removed


def _actual(document, where: dict) -> list[str]:
    found = document.objects(id=where["id"]).only("tags").first()
    return list(found.tags) if found else []


def _check_limit(names: Iterable[str]) -> None:
    if len(set(names)) > MAX_TAGS:
        raise BadRequest(f"tags: at most {MAX_TAGS} tags per Item or Folder.")


def add_tags(user_id: str, tags: list[str], image_id: str | None, folder_id: str | None) -> dict:
    names = normalize(tags)
    document, where, domain, current = _target(user_id, image_id, folder_id)
    _check_limit(current + names)
    added = _add(document, where, domain, [n for n in names if n not in current])
    return {"success": bool(added), "modified": added, "actual": _actual(document, where)}


def remove_tags(user_id: str, tags: list[str], image_id: str | None, folder_id: str | None) -> dict:
    names = normalize(tags)
    document, where, domain, current = _target(user_id, image_id, folder_id)
    removed = _remove(document, where, domain, [n for n in names if n in current])
    return {"success": bool(removed), "modified": removed, "actual": _actual(document, where)}


def set_tags(user_id: str, tags: list[str], image_id: str | None, folder_id: str | None) -> dict:
    names = normalize(tags)
    _check_limit(names)
    document, where, domain, current = _target(user_id, image_id, folder_id)
    _remove(document, where, domain, [n for n in current if n not in names])
    _add(document, where, domain, [n for n in names if n not in current])
    actual = _actual(document, where)
    return {"success": sorted(actual) == sorted(names), "actual": actual}


# --- the list ----------------------------------------------------------------------------------


def _usage(document, domain: str, visible: dict, names: list[str] | None) -> dict[str, int]:
    """Tag name -> how many of ``document`` (Items or Folders) the caller may see carry it."""
    match: dict = {"domain": domain, "is_deleted": False, "tags.0": {"$exists": True}, **visible}
    pipeline: list[dict] = [{"$match": match}, {"$project": {"tags": 1}}, {"$unwind": "$tags"}]
    if names:
        pipeline.append({"$match": {"tags": {"$in": names}}})
    pipeline.append({"$group": {"_id": "$tags", "n": {"$sum": 1}}})
    return {row["_id"]: row["n"] for row in document.objects.aggregate(pipeline)}


def tags_list(domain: str, viewer_id: str | None, names: list[str] | None, limit: int,
              skip: int | None) -> tuple[list[dict], dict]:
    """The tags in use on what the caller may see (at most 100 a page), usage count descending.

    Counted from the Items and Folders themselves, never from the domain-wide ``Tag``
    counters: a tag used only on someone else's private Item or Folder would otherwise be
    listed (its name, and how often it is used, are that user's private data).
    """
    names = [n.lower() for n in names] if names else None
    counts: dict[str, int] = {}
    for document, public, extra in ((Item, {"is_publicly_visible": True}, {"status": "completed"}),
                                    (Folder, {"is_public": True}, {})):
        visible = {"$or": [public, {"user_id": viewer_id}]} if viewer_id else public
        for name, n in _usage(document, domain, {**extra, **visible}, names).items():
            counts[name] = counts.get(name, 0) + n
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    limit = min(limit, TAGS_LIST_MAX)
    rows = ordered[skip or 0:(skip or 0) + limit]
    metadata = {"paginationIndex": "0", "nextPaginationIndex": None, "reversePagination": False, "limit": limit,
                "count": len(rows), "totalCount": len(ordered)}
    if skip is not None:
        metadata["skipCount"] = skip
    return [{"name": name, "usageCount": n} for name, n in rows], metadata
