"""Abuse levels 0-9; each level includes the limits of the ones below: 1 no public-approval
requests; 2 the user's reports are automatically declined; 3 generation concurrency capped at
1; 4 no username or profile-picture change; 5 (and the reserved 6-8) no priority queues; 9 no
generation or publishing (403).

Every feature asks these functions rather than comparing numbers itself.
"""
from __future__ import annotations

from ..errors import Forbidden

MIN_LEVEL, MAX_LEVEL = 0, 9


def may_request_public_approval(user) -> bool:
    """Level 1: cannot submit Items for public approval."""
    return (user.abuse or 0) < 1


def reports_are_auto_declined(user) -> bool:
    """Level 2: the user's reports are stored as automaticallyDeclined."""
    return (user.abuse or 0) >= 2


def generation_concurrency_cap(user) -> int | None:
    """Level 3: at most one generation at a time, whatever the model allows."""
    return 1 if (user.abuse or 0) >= 3 else None


def may_change_profile(user) -> bool:
    """Level 4: cannot change username or profile picture."""
    return (user.abuse or 0) < 4


def may_use_priority_queues(user) -> bool:
    """Level 5 (and the reserved 6-8): never uses the -p1- priority queues."""
    return (user.abuse or 0) < 5


def may_generate_and_publish(user) -> bool:
    """Level 9: generation and publishing refused."""
    return (user.abuse or 0) < 9


def require_generate_and_publish(user) -> None:
    if not may_generate_and_publish(user):
        raise Forbidden("Your account may not generate or publish content.")
