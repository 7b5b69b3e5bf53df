"""One-time passwords (filled in by the identity work)."""
from __future__ import annotations

from ..errors import Unauthorized


def consume(resources, domain: str, email: str, code: str) -> None:
    raise Unauthorized("The one-time password is invalid or expired.")
