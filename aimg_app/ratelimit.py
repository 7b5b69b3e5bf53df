"""Rate limits, shared by every API process through Redis.

The client address is the socket's peer unless ``AIMG_TRUSTED_PROXY_COUNT`` says how many
proxies' ``X-Forwarded-For`` entries to trust (ProxyFix), so a spoofed header resets nothing.
When Redis is down the limiter raises, and the request fails closed with a 503.
"""
from __future__ import annotations

from flask import request
from flask_limiter import Limiter


def client_key() -> str:
    return request.remote_addr or "unknown"


def session_or_client_key() -> str:
    sid = request.headers.get("X-Session-ID", "").strip().lower()
    return f"session:{sid}" if sid else f"ip:{client_key()}"


limiter = Limiter(key_func=client_key, headers_enabled=True, swallow_errors=False)
