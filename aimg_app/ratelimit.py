"""Rate limits, shared by every API process through Redis.

A limit is keyed on something the client cannot mint for free: its address, the target
email or account, the signed-in user, or a session only in its canonical form and only
once it exists server-side. The client address is the socket's peer unless
``AIMG_TRUSTED_PROXY_COUNT`` says how many proxies' ``X-Forwarded-For`` entries to trust
(ProxyFix), so a spoofed header resets nothing. When Redis is down the limiter raises, and
the request fails closed with a 503.
"""
from __future__ import annotations

import ipaddress
import uuid

from flask import request
from flask_limiter import Limiter


def client_key() -> str:
    """The client's address; an IPv6 client counts per /64, since one host is routinely
    handed a whole /64 and could otherwise rotate through it."""
    raw = request.remote_addr or "unknown"
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return raw
    if address.version == 6:
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def _existing_session() -> tuple[str, str | None] | None:
    """(canonical id, user id) of the session the X-Session-ID names, when we hold it; None
    for a fresh or malformed id (a fresh id is free to mint, so it keys nothing)."""
    from . import context

    raw = (request.headers.get("X-Session-ID") or "").strip()
    try:
        sid = str(uuid.UUID(raw))
    except ValueError:
        return None
    found, user = context.stored_session_and_user(sid)  # the view's read too: one per request
    if found is None:
        return None
    # keyed by the user only while the session really signs them in (else it could use up theirs)
    signed_in = found.user_id and context.still_signed_in(found, user) is not None
    return sid, (found.user_id if signed_in else None)


def user_or_session_or_client_key() -> str:
    """The signed-in user, else an existing session, else the client address."""
    session = _existing_session()
    if session is None:
        return f"ip:{client_key()}"
    sid, user_id = session
    return f"user:{user_id}" if user_id else f"session:{sid}"


limiter = Limiter(key_func=client_key, headers_enabled=True, swallow_errors=False)
