"""One-time passwords: 6 CSPRNG digits, stored as a keyed hash, single use, 24 h, attempt-limited.

Only the newest challenge of an email is usable: requesting a new one supersedes the
older ones. Five wrong codes burn the challenge (429 until a new one is requested).
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import secrets
from urllib.parse import urlencode

from ..config import Domain
from ..errors import Conflict, TooManyRequests, Unauthorized
from ..mail import send_mail
from ..models import User
from ..models.base import utcnow
from ..models.otp import OtpChallenge
from .ratelimits import enforce

INVALID = "The one-time password is invalid or expired."
BURNT = "Too many wrong one-time passwords: request a new one."


def _hash(secret: bytes, domain: str, email: str, code: str) -> str:
    return hmac.new(secret, f"{domain}\n{email}\n{code}".encode(), hashlib.sha256).hexdigest()


def magic_link(domain: Domain, email: str, code: str) -> str | None:
    """``<front-end>?b=<base64url {"email","otp"}>`` (the contract's magic link)."""
    if not domain.magic_links:
        return None
    base = domain.magic_link_url or (domain.origins[0] + "/" if domain.origins else None)
    if not base:
        return None
    b = base64.urlsafe_b64encode(json.dumps({"email": email, "otp": code}, separators=(",", ":")).encode()).decode().rstrip("=")
    return f"{base}{'&' if '?' in base else '?'}{urlencode({'b': b})}"


def request_otp(resources, domain: Domain, email: str, *, sign_up: bool, client_key: str) -> None:
    """Issue and mail a new OTP for ``email`` (already normalised)."""
    settings = resources.settings
    limiter = resources.rate_limiter
    enforce(limiter, settings.otp_rate_limit_per_client, "otp-client", client_key,
            "Too many one-time password requests: please wait before asking again.")
    enforce(limiter, settings.otp_rate_limit_per_email, "otp-email", f"{domain.identifier}:{email}",
            "Too many one-time password requests for this email: please wait before asking again.")
    if sign_up and User.objects(domain=domain.identifier, email=email).only("id").first() is not None:
        raise Conflict("An account with this email already exists: sign in instead.")
    code = f"{secrets.randbelow(10**6):06d}"
    now = utcnow()
    OtpChallenge.objects(domain=domain.identifier, email=email, state="active").update(set__state="superseded")
    OtpChallenge(domain=domain.identifier, email=email, code_hash=_hash(resources.secret_key, domain.identifier, email, code),
                 sign_up=sign_up, created_date=now, expires_date=now + dt.timedelta(hours=settings.otp_ttl_hours)).save()
    link = magic_link(domain, email, code)
    text = (f"Your {domain.display_name} one-time password is {code}.\n\n"
            f"It is valid for {settings.otp_ttl_hours} hours and can be used once.\n")
    if link:
        text += f"\nOr sign in directly with this link:\n{link}\n"
    text += "\nIf you did not ask for it, ignore this message.\n"
    send_mail(settings, email, f"Your {domain.display_name} one-time password", text)


def consume(resources, domain: str, email: str, code: str, *, require_sign_up: bool = False) -> None:
    """Accept ``code`` for ``email`` once, or raise (401 invalid/expired, 429 burnt)."""
    challenge = OtpChallenge.objects(domain=domain, email=email).order_by("-created_date").first()
    if challenge is None or challenge.state in ("used", "superseded") or challenge.expires_date <= utcnow():
        raise Unauthorized(INVALID)
    if challenge.state == "burnt":
        raise TooManyRequests(BURNT)
    if require_sign_up and not challenge.sign_up:
        raise Unauthorized("Request the one-time password for the new email with signUp set to true.")
    expected = challenge.code_hash
    given = _hash(resources.secret_key, domain, email, (code or "").strip())
    if not hmac.compare_digest(expected, given):
        max_attempts = resources.settings.otp_max_attempts
        OtpChallenge.objects(id=challenge.id, state="active").update_one(inc__attempts=1)
        burnt = OtpChallenge.objects(id=challenge.id, state="active", attempts__gte=max_attempts).update_one(set__state="burnt")
        if burnt or OtpChallenge.objects(id=challenge.id, state="burnt").count():
            raise TooManyRequests(BURNT)
        raise Unauthorized(INVALID)
    # Single use even under parallel submissions: only one conditional update wins.
    if not OtpChallenge.objects(id=challenge.id, state="active").update_one(set__state="used"):
        raise Unauthorized(INVALID)
