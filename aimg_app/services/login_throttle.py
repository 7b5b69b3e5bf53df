"""Password sign-in attempts, limited per account and per client (OWASP ASVS 5.0 V6.3);
wrong admin keys, limited per client.

An attempt is counted before the password is checked, not after: a burst of parallel
guesses would otherwise all be checked before the first failure is counted. Past either
limit every attempt on that account (or from that client) is answered 429 until the moving
window has room again, the right password included (otherwise the answer would still tell a
guess that hit). A successful sign-in clears the account's count, so the owner signing in
now and then never locks themselves out. The account key is the email as typed
(normalised), so an unknown email is throttled exactly like a known one and the 429 reveals
nothing about who has an account.
"""
from __future__ import annotations

from limits import parse

from ..errors import TooManyRequests

THROTTLED = "Too many failed sign-in attempts: please wait a few minutes before trying again."


def attempt(resources, domain: str, email: str, client: str) -> None:
    """Count one password attempt; 429 when this account or this client has none left."""
    limiter, settings = resources.rate_limiter, resources.settings
    if not limiter.hit(parse(settings.login_failures_per_account), "login-account", f"{domain}:{email}"):
        raise TooManyRequests(THROTTLED)
    if not limiter.hit(parse(settings.login_failures_per_client), "login-client", client):
        raise TooManyRequests(THROTTLED)


def succeeded(resources, domain: str, email: str) -> None:
    resources.rate_limiter.clear(parse(resources.settings.login_failures_per_account), "login-account",
                                 f"{domain}:{email}")


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
