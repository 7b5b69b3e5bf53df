"""Per-user key-value pairs, with bounded keys, values and count (see docs/decisions.md)."""
from __future__ import annotations

import re

import mongoengine as me

from ..errors import BadRequest, NotFound
from ..models import User, UserKeyValue
from ..models.base import utcnow

KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
MAX_VALUE_CHARS = 10_000
MAX_KEYS = 100


def validate_key(key: str) -> str:
    if not KEY.match(key or ""):
        raise BadRequest("key must be 1-64 characters of letters, digits, '_', '.', ':' or '-'.")
    return key


def get_value(user: User, key: str) -> str:
    pair = UserKeyValue.objects(user_id=user.id, key=validate_key(key)).first()
    if pair is None:
        raise NotFound(f"No value is stored under '{key}'.")
    return pair.value


def set_value(user: User, key: str, value: str) -> None:
    validate_key(key)
    if len(value) > MAX_VALUE_CHARS:
        raise BadRequest(f"value must be at most {MAX_VALUE_CHARS} characters.")
    if UserKeyValue.objects(user_id=user.id, key=key).update_one(set__value=value, set__updated_date=utcnow()):
        return
    # A new key takes a slot first (atomically, so parallel writes cannot pass the cap).
    if not User.objects(id=user.id, kvp_count__lt=MAX_KEYS).update_one(inc__kvp_count=1):
        raise BadRequest(f"At most {MAX_KEYS} keys can be stored per user.")
    try:
        UserKeyValue(user_id=user.id, key=key, value=value).save(force_insert=True)
    except me.NotUniqueError:  # created in parallel: give the slot back and overwrite
        User.objects(id=user.id).update_one(dec__kvp_count=1)
        UserKeyValue.objects(user_id=user.id, key=key).update_one(set__value=value, set__updated_date=utcnow())


def delete_value(user: User, key: str) -> bool:
    deleted = UserKeyValue.objects(user_id=user.id, key=validate_key(key)).delete()
    if deleted:
        User.objects(id=user.id).update_one(dec__kvp_count=1)
    return bool(deleted)
