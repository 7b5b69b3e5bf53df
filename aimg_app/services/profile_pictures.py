"""Profile pictures (filled in by the identity work)."""
from __future__ import annotations


def picture_data_uri(resources, user) -> str | None:
    return None
