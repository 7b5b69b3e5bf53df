"""OAuth login (filled in by the identity work)."""
from __future__ import annotations


def revoke_session_tokens(resources, session_id: str, user_id: str | None) -> None:
    return None
