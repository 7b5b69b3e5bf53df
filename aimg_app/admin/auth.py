"""Who is signed in to the Admin UI.

The session holds the admin's name, an HMAC of their key (so removing or rotating a key in
``AIMG_ADMIN_KEYS`` ends the sessions it opened), an absolute expiry and a random id; never
the key. Signing out records that id in Redis until the session would have expired, so a
copy of the cookie is worth nothing after the sign-out (a Redis that cannot answer signs
everyone out: it fails closed).
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from flask import current_app, session

from . import SESSION_LIFETIME, derived_secret


def _settings():
    return current_app.extensions["aimg"].settings


def match_key(given: str) -> str | None:
    """The name of the admin whose key is ``given``. Every key is compared, in constant time,
    over fixed-length digests, so neither a match's position nor a key's length shows."""
    found = None
    if not given:
        return None
    given_digest = hashlib.sha256(given.encode()).digest()
    for name, key in _settings().admin_keys.items():
        if hmac.compare_digest(given_digest, hashlib.sha256(key.encode()).digest()) and found is None:
            found = name
    return found


def _key_check(key: str) -> str:
    return hmac.new(derived_secret("key-check"), key.encode(), hashlib.sha256).hexdigest()[:32]


def sign_in(name: str) -> None:
    session.clear()  # a fresh session (and CSRF token) for the signed-in admin
    session.permanent = True
    session["admin"] = name
    session["kc"] = _key_check(_settings().admin_keys[name])
    session["exp"] = int(time.time() + SESSION_LIFETIME.total_seconds())
    session["sid"] = secrets.token_urlsafe(18)


def _signed_out_key(sid: str) -> str:
    return f"aimg:admin:signed-out:{sid}"


def sign_out() -> None:
    sid, exp = session.get("sid"), session.get("exp")
    if isinstance(sid, str) and isinstance(exp, int) and exp > time.time():
        current_app.extensions["aimg"].redis.set(_signed_out_key(sid), "1", ex=max(1, int(exp - time.time()) + 1))
    session.clear()


def current_admin() -> str | None:
    name = session.get("admin")
    if not name or not isinstance(session.get("exp"), int) or session["exp"] <= time.time():
        return None
    key = _settings().admin_keys.get(name)
    if key is None or not hmac.compare_digest(str(session.get("kc", "")), _key_check(key)):
        return None
    sid = session.get("sid")
    if not isinstance(sid, str):
        return None
    import redis

    try:
        if current_app.extensions["aimg"].redis.exists(_signed_out_key(sid)):
            return None
    except redis.RedisError:
        return None
    return name
