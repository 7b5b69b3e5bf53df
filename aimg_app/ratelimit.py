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


def existing_session_key() -> str | None:
    """``session:<canonical uuid>`` when the X-Session-ID names a session we already hold,
    else None (a fresh id is free to mint, so it keys nothing)."""
    from .models import Session

    raw = (request.headers.get("X-Session-ID") or "").strip()
    try:
        sid = str(uuid.UUID(raw))
    except ValueError:
        return None
    if Session.objects(id=sid).only("id").first() is None:
        return None
    return f"session:{sid}"


def user_or_session_or_client_key() -> str:
    """The signed-in user, else an existing session, else the client address."""
    from .models import Session

    session_key = existing_session_key()
    if session_key is not None:
        user_id = Session.objects(id=session_key.split(":", 1)[1]).scalar("user_id").first()
        return f"user:{user_id}" if user_id else session_key
    return f"ip:{client_key()}"


limiter = Limiter(key_func=client_key, headers_enabled=True, swallow_errors=False)
