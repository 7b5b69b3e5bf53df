"""The session and the user it names, kept a few seconds by each process, so an
authenticated read costs no MongoDB command for them.

Each entry holds the stored documents with the change tokens they were read under: a
random value per session, per user and one for every user at once, in Redis. Every write
to a session or a user replaces its token (``models.changes`` announces each write), and a
request uses its entry only while all its tokens are still the ones in Redis, read in one
command. So a sign-out, a password change, a disable or a deletion in any process signs
the session out on the very next request in every process; the entry's short life bounds
what a write that could not reach Redis leaves stale. Without Redis there is no cache: the
documents are read from MongoDB every time.

Tokens are read before the documents, and written after them: an entry can hold older
documents than its tokens promise only while the write that changes them is in flight.
"""
from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict

import bson
import redis

from .models import Session, User
from .models.changes import on_change

log = logging.getLogger("aimg.identity_cache")

ENTRY_TTL_S = 10.0  # the longest a change Redis never heard of can stay unseen
MAX_BYTES = 32 * 2**20  # what the entries of one process may hold (a user document can be ~100 KB)
TOKEN_TTL_S = 600  # longer than an entry lives: a token lost to expiry is a miss, not a risk
ALL_USERS = "aimg:chg:u:*"

# oldest first (an entry is put at the end when read from MongoDB), so expired ones lead
_entries: "OrderedDict[tuple[str, str], tuple]" = OrderedDict()
_held = 0  # the bytes of the entries' documents
_lock = threading.Lock()
_redis = None  # the Redis of the deployment whose MongoDB mongoengine is bound to


def bind(connection) -> None:
    """Use ``connection`` for the tokens (with the MongoDB ``connect_mongo`` just bound)."""
    global _redis
    _redis = connection
    clear()


def clear() -> None:
    global _held
    with _lock:
        _entries.clear()
        _held = 0


def _size(entry: tuple) -> int:
    return len(entry[3]) + len(entry[4] or b"")


def _keep(where: tuple[str, str], entry: tuple) -> None:
    """Store ``entry``, dropping expired entries and then the oldest past ``MAX_BYTES``."""
    global _held
    with _lock:
        old = _entries.pop(where, None)
        if old is not None:
            _held -= _size(old)
        _entries[where] = entry
        _held += _size(entry)
        now = time.monotonic()
        while _entries:
            first = next(iter(_entries.values()))
            if now - first[0] < ENTRY_TTL_S and _held <= MAX_BYTES:
                break
            _held -= _size(_entries.popitem(last=False)[1])


def _session_key(sid: str) -> str:
    return f"aimg:chg:s:{sid}"


def _user_key(uid: str) -> str:
    return f"aimg:chg:u:{uid}"


def _tokens(keys: list[str]) -> list[bytes]:
    """The current tokens of ``keys``, a new one made for any that has none."""
    pipe = _redis.pipeline(transaction=False)
    for key in keys:
        pipe.set(key, secrets.token_hex(8), nx=True, ex=TOKEN_TTL_S)
        pipe.get(key)
    return pipe.execute()[1::2]


def _read(sid: str) -> tuple[dict | None, dict | None]:
    raw_session = Session._get_collection().find_one({"_id": sid})
    raw_user = None
    if raw_session is not None and raw_session.get("user_id"):
        raw_user = User._get_collection().find_one({"_id": raw_session["user_id"]})
    return raw_session, raw_user


def _documents(raw_session: dict | None, raw_user: dict | None) -> tuple[Session | None, User | None]:
    return (Session._from_son(raw_session) if raw_session is not None else None,
            User._from_son(raw_user) if raw_user is not None else None)


def session_and_user(sid: str) -> tuple[Session | None, User | None]:
    """The stored session ``sid`` (None when there is none) and the user it names (None
    when none, or gone). Fresh documents each call: a caller may change them freely."""
    if _redis is None:
        return _documents(*_read(sid))
    where = (Session._get_db().name, sid)
    with _lock:
        entry = _entries.get(where)
    try:
        if entry is not None:
            born, uid, tokens, session_bson, user_bson = entry
            keys = [_session_key(sid), ALL_USERS] + ([_user_key(uid)] if uid else [])
            if time.monotonic() - born < ENTRY_TTL_S:
                current = _redis.mget(keys)
                codec = Session._get_collection().codec_options
                if current == tokens:
                    return _documents(bson.decode(session_bson, codec),
                                      bson.decode(user_bson, codec) if user_bson is not None else None)
                if uid and current[:2] == tokens[:2] and current[2] is not None:
                    # Only the user changed (its counters, after a generation): the session
                    # stands, and the entry keeps the session's age.
                    raw_user = User._get_collection().find_one({"_id": uid})
                    if raw_user is not None:
                        _keep(where, (born, uid, current, session_bson, bson.encode(raw_user)))
                    return _documents(bson.decode(session_bson, codec), raw_user)
        tokens = _tokens([_session_key(sid), ALL_USERS])
        raw_session = Session._get_collection().find_one({"_id": sid})
        uid = raw_session.get("user_id") if raw_session is not None else None
        raw_user = None
        if uid:
            tokens += _tokens([_user_key(uid)])
            raw_user = User._get_collection().find_one({"_id": uid})
    except redis.exceptions.RedisError as exc:  # Redis unreachable: read without the cache
        log.warning("identity cache bypassed: %s", exc)
        return _documents(*_read(sid))
    if raw_session is not None and (not uid or raw_user is not None):
        _keep(where, (time.monotonic(), uid, tokens, bson.encode(raw_session),
                      bson.encode(raw_user) if raw_user is not None else None))
    return _documents(raw_session, raw_user)


def _changed(collection: str, query: dict) -> None:
    """A write went to ``collection`` through ``query``: replace the tokens it touches."""
    if _redis is None:
        return
    keys = []
    if collection == User._get_collection_name():
        keys = _ids(query.get("_id"), _user_key) or [ALL_USERS]
    elif collection == Session._get_collection_name():
        # Sessions written through anything but their ids (e.g. every session of a user): a
        # reader learns a session's user from the session itself, so only a token it read
        # before the session (its own, or every user's) can tell it the session changed.
        keys = _ids(query.get("_id"), _session_key) or [ALL_USERS]
    if not keys:
        return
    try:
        pipe = _redis.pipeline(transaction=False)
        for key in keys:
            pipe.set(key, secrets.token_hex(8), ex=TOKEN_TTL_S)
        pipe.execute()
    except redis.exceptions.RedisError as exc:  # the write is done; other processes see it within ENTRY_TTL_S
        clear()
        log.warning("could not announce a change of %s to the other processes: %s", collection, exc)


def _ids(value, key) -> list[str]:
    """The keys of the ids a filter names exactly (a value or ``$in``), else none."""
    if isinstance(value, str):
        return [key(value)]
    if isinstance(value, dict) and set(value) == {"$in"}:
        return [key(v) for v in value["$in"] if isinstance(v, str)]
    return []


on_change(_changed)
