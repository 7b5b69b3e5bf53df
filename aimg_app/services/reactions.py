"""Likes and dislikes. One Reaction document per (user, Item), unique: a like and a
dislike of the same user exclude each other, and the Item's ``likeCount``/``dislikeCount``
move by exactly one for the request that created, switched or removed the reaction."""
from __future__ import annotations

from mongoengine.errors import NotUniqueError

from ..errors import NotFound
from ..models.item import Item
from ..models.reaction import Reaction
from .library import Viewer, visible_item

_COUNTER = {"like": "like_count", "dislike": "dislike_count"}
_OTHER = {"like": "dislike", "dislike": "like"}


def react(viewer: Viewer, item_id: str, kind: str) -> tuple[bool, str]:
    try:
        visible_item(item_id, viewer)
    except NotFound:
        return False, "Item not found."
    other = _OTHER[kind]
    for _attempt in range(5):
        if Reaction.objects(user_id=viewer.user_id, item_id=item_id, kind=other).update_one(set__kind=kind):
            Item.objects(id=item_id).update_one(**{f"inc__{_COUNTER[kind]}": 1, f"inc__{_COUNTER[other]}": -1})
            return True, ""
        try:
            Reaction(user_id=viewer.user_id, item_id=item_id, kind=kind).save(force_insert=True)
        except NotUniqueError:
            if Reaction.objects(user_id=viewer.user_id, item_id=item_id, kind=kind).count():
                return False, f"The Item is already {kind}d."
            continue  # the other kind was written meanwhile: switch it
        Item.objects(id=item_id).update_one(**{f"inc__{_COUNTER[kind]}": 1})
        return True, ""
    return False, "The reaction changed concurrently; try again."


def unreact(viewer: Viewer, item_id: str, kind: str) -> tuple[bool, str]:
    if Reaction.objects(user_id=viewer.user_id, item_id=item_id, kind=kind).delete():
        Item.objects(id=item_id).update_one(**{f"inc__{_COUNTER[kind]}": -1})
        return True, ""
    return False, f"The Item is not {kind}d."
