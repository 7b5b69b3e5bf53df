"""Signing in: by password, by one-time password, and creating an account, each binding
the caller's session; signing out. The only place these flows are written."""
from __future__ import annotations

from ..errors import BadRequest, Conflict, Unauthorized
from ..models import Session, User
from ..models.user import LoginProviderLink
from . import login_throttle
from . import otp as otp_service
from . import users as users_service

BAD_CREDENTIALS = "The email or the password is incorrect."


def _require_a_credential(password: str | None, otp: str | None) -> None:
    if not password and not otp:
        raise BadRequest("At least one of password or otp must be provided.")


def create_account(resources, domain: str, session: Session, *, email: str, password: str | None, otp: str | None,
                   username: str | None, is_at_least_18_confirmed: bool | None, ref_list: list[str],
                   rs: str | None) -> User:
    """A new user signed in on ``session``; an OTP proves the email, a bare password does not."""
    _require_a_credential(password, otp)
    email = users_service.normalize_email(email)
    provider = None
    if otp:
        otp_service.consume(resources, domain, email, otp)
        provider = LoginProviderLink(provider_type="internal", provider_id="OTP")
    user = users_service.create_user(domain, email, username=username, password=password, provider=provider,
                                     is_at_least_18_confirmed=bool(is_at_least_18_confirmed), ref_list=ref_list, rs=rs)
    return users_service.bind_session(session, user, is_at_least_18_confirmed)


def authenticate(resources, domain: str, session: Session, client: str, *, email: str, password: str | None,
                 otp: str | None, is_at_least_18_confirmed: bool | None) -> User:
    """Sign in with an OTP (creating the user when the email is new) or a password."""
    _require_a_credential(password, otp)
    email = users_service.normalize_email(email)
    user = _by_otp(resources, domain, session, email, otp) if otp else _by_password(resources, domain, client,
                                                                                      email, password)
    if user is None or user.is_disabled:
        raise Unauthorized("This account is disabled.")
    return users_service.bind_session(session, user, is_at_least_18_confirmed)


def _by_otp(resources, domain: str, session: Session, email: str, otp: str) -> User | None:
    otp_service.consume(resources, domain, email, otp)
    user = users_service.find_by_email(domain, email)
    if user is None:
        try:
            return users_service.create_user(domain, email, provider=LoginProviderLink(
                provider_type="internal", provider_id="OTP"))
        except Conflict:  # created by a parallel sign-in with the same email
            return users_service.find_by_email(domain, email)
    users_service.add_login_provider(user, "internal", "OTP")
    return users_service.email_proven(user, keep_session_id=session.id)


def _by_password(resources, domain: str, client: str, email: str, password: str) -> User:
    login_throttle.attempt(resources, domain, email, client)
    user = users_service.find_by_email(domain, email)
    # The same answer, status and work for an unknown email and a wrong password.
    if not users_service.verify_password(user, password) or user is None or user.is_disabled:
        raise Unauthorized(BAD_CREDENTIALS)
    login_throttle.succeeded(resources, domain, email)
    return user


def sign_out(resources, session: Session) -> bool:
    """Unbind the session from its user and revoke the session's OAuth tokens; False when no
    user was signed in on it."""
    from . import oauth as oauth_service

    user_id = session.user_id
    signed_out = users_service.sign_out(session)
    if signed_out:
        oauth_service.revoke_session_tokens(resources, session.id, user_id)
    return signed_out
