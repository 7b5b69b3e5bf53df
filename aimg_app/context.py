"""Who and where a request comes from: request id, domain, session, admin.

Views call these helpers; they read the request headers once and cache the answer on ``g``.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import uuid

import mongoengine as me
from flask import current_app, request

from . import identity_cache
from .config import Domain
from .errors import BadRequest, Forbidden, Unauthorized
from .models import Session, User
from .models.base import utcnow
from .resources import Resources

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
LAST_SEEN_RESOLUTION = dt.timedelta(minutes=1)


def _state() -> dict:
    """Per-request cache. Not ``flask.g``: ``g`` lives on the app context, which requests
    made inside an outer app context (tests, CLI tools) would share."""
    return request.environ.setdefault("aimg.state", {})


def resources() -> Resources:
    return current_app.extensions["aimg"]


def request_id() -> str:
    state = _state()
    if "request_id" not in state:
        given = request.headers.get("X-Request-ID", "")
        state["request_id"] = given if _REQUEST_ID.match(given) else str(uuid.uuid4())
    return state["request_id"]


def domain() -> Domain:
    state = _state()
    if "domain" not in state:
        state["domain"] = resources().settings.domain_for_host(request.host)
    return state["domain"]


def session_id_header() -> str | None:
    """The X-Session-ID header, validated: absent -> None, malformed -> 400."""
    raw = request.headers.get("X-Session-ID")
    if raw is None or raw.strip() == "":
        return None
    try:
        return str(uuid.UUID(raw.strip()))
    except ValueError:
        raise BadRequest("X-Session-ID must be a valid UUID.") from None


def _session_and_user(sid: str) -> tuple[Session | None, User | None]:
    """The session ``sid`` and the user it names (``identity_cache``: no MongoDB command
    while neither changed). Whether that user is still signed in is ``current_user``'s rule."""
    return identity_cache.session_and_user(sid)


def _stored(sid: str) -> tuple[Session | None, User | None]:
    """``_session_and_user``, read once per request whoever asks first (a rate limit's key,
    the view)."""
    state = _state()
    if state.get("stored_id") != sid:
        state["stored_id"], state["stored"] = sid, _session_and_user(sid)
    return state["stored"]


def stored_session_and_user(sid: str) -> tuple[Session | None, User | None]:
    """The session ``sid`` as stored (None when there is none; nothing is created) and the
    user it names (not yet checked: ``still_signed_in``)."""
    return _stored(sid)


def _same_site(session: Session | None) -> None:
    """A session belongs to one site; the same id on another site is refused, not shared
    (also when a parallel request on the other site created it a moment before)."""
    if session is not None and session.domain != domain().identifier:
        raise BadRequest("X-Session-ID belongs to another domain.")


def current_session(create: bool = True) -> Session | None:
    """The caller's session. An unknown (valid) id starts an anonymous session; with no
    header, ``create`` makes a new id (returned to the client in the payload)."""
    state = _state()
    if "session" in state:
        return state["session"]
    sid = session_id_header()
    session = user = None
    if sid is not None:
        session, user = _stored(sid)
        _same_site(session)
    if session is None and (sid is not None or create):
        session = Session(id=sid or str(uuid.uuid4()), domain=domain().identifier)
        try:
            session.save(force_insert=True)
        except me.NotUniqueError:  # a parallel request created it first, maybe on another site
            session, user = _session_and_user(session.id)
            _same_site(session)
    elif session is not None and utcnow() - (session.updated_date or dt.datetime.min) > LAST_SEEN_RESOLUTION:
        # Last-seen at a minute's resolution: a read does not cost a write each time.
        Session.objects(id=session.id).update_one(set__updated_date=utcnow())
    state["session"] = session
    state["session_user"] = (session.user_id if session else None, user)  # whom the join was for
    return session


def require_session_header() -> str:
    sid = session_id_header()
    if sid is None:
        raise BadRequest("The X-Session-ID header is required.")
    return sid


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


def admin_name() -> str | None:
    """The admin whose personal X-Administration-Key came with the request, else None.

    Every configured key is compared (in constant time, over fixed-length digests), so
    neither the position of a match nor the key's length shows in the timing.
    """
    state = _state()
    if "admin_name" in state:
        return state["admin_name"]
    given = request.headers.get("X-Administration-Key", "")
    found = None
    if given:
        from .ratelimit import client_key
        from .services import login_throttle

        # Guessing keys is throttled per client like guessing passwords (then 429).
        login_throttle.check_admin_key(resources(), client_key())
        given_digest = _digest(given)
        for name, key in resources().settings.admin_keys.items():
            if hmac.compare_digest(given_digest, _digest(key)) and found is None:
                found = name
        if found is None:
            login_throttle.record_admin_key_failure(resources(), client_key())
    state["admin_name"] = found
    return found


def require_admin() -> str:
    name = admin_name()
    if name is None:
        raise Forbidden("This endpoint requires a valid X-Administration-Key header.")
    return name


def still_signed_in(session: Session, user: User | None) -> User | None:
    """``user`` if ``session`` (bound to them) still signs them in: not disabled, not bound
    before a credential change, and of the session's site."""
    if user is None or user.is_disabled or (session.auth_epoch or 0) < (user.auth_epoch or 0) \
            or user.domain != session.domain:
        return None
    return user


def signed_in_user_of(sid: str) -> User | None:
    """Who ``sid`` signs in now, read afresh (for a long-lived response, e.g. an event stream)."""
    session, user = _session_and_user(sid)
    return still_signed_in(session, user) if session is not None and session.user_id else None


def current_user(required: bool = True) -> User | None:
    """The signed-in user of the caller's session; 401 when ``required`` and there is none
    (no session, signed out, revoked by a password change, or the user is disabled)."""
    state = _state()
    if "user" not in state:
        session = current_session(create=False) if session_id_header() else None
        user = None
        if session is not None and session.user_id:
            joined_for, user = state.get("session_user", (None, None))
            if joined_for != session.user_id:  # signed in during this request: not the joined user
                user = User.objects(id=session.user_id).first()
            user = still_signed_in(session, user)
        state["user"] = user
    if state["user"] is None and required:
        raise Unauthorized("You are not signed in.")
    return state["user"]
