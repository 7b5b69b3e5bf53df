"""Failed password sign-ins, limited per account and per client (OWASP ASVS 5.0 V6.3);
wrong admin keys, limited per client.

Only failures count. Once either limit is reached every password attempt on that account
(or from that client) is answered 429 until the moving window has room again, the right
password included: otherwise the answer would still tell a guess that hit. The account key
is the email as typed (normalised), so an unknown email is throttled exactly like a known
one and the 429 reveals nothing about who has an account.
"""
from __future__ import annotations

from limits import parse

from ..errors import TooManyRequests

THROTTLED = "Too many failed sign-in attempts: please wait a few minutes before trying again."


def _limits(settings):
    return ((parse(settings.login_failures_per_account), "login-fail-account"),
            (parse(settings.login_failures_per_client), "login-fail-client"))


def _keys(domain: str, email: str, client: str) -> tuple[str, str]:
    return f"{domain}:{email}", client


def check(resources, domain: str, email: str, client: str) -> None:
    """429 when this account or this client has used up its failed attempts."""
    limiter = resources.rate_limiter
    for (limit, namespace), key in zip(_limits(resources.settings), _keys(domain, email, client)):
        if not limiter.test(limit, namespace, key):
            raise TooManyRequests(THROTTLED)


def record_failure(resources, domain: str, email: str, client: str) -> None:
    limiter = resources.rate_limiter
    for (limit, namespace), key in zip(_limits(resources.settings), _keys(domain, email, client)):
        limiter.hit(limit, namespace, key)


ADMIN_KEY_THROTTLED = "Too many wrong X-Administration-Key attempts from this client: please wait."


def check_admin_key(resources, client: str) -> None:
    # Without Redis configured at all (a file-and-SQL-only tool process) there is nothing to
    # count in; a configured Redis that is down fails closed like every other limit.
    if not resources.settings.redis_url:
        return
    if not resources.rate_limiter.test(parse(resources.settings.admin_key_failures_per_client), "admin-key-fail", client):
        raise TooManyRequests(ADMIN_KEY_THROTTLED)


def record_admin_key_failure(resources, client: str) -> None:
    if not resources.settings.redis_url:
        return
    resources.rate_limiter.hit(parse(resources.settings.admin_key_failures_per_client), "admin-key-fail", client)
