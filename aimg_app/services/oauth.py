"""OAuth 2.0 login (authorization code, with PKCE where the provider supports it) via authlib.

``start`` checks the front-end's ``redirectURL`` against the domain's origins (no open
redirect), records a single-use ``state`` and answers the provider's authorization URL
plus a browser binding: a signed token carrying the state and the PKCE verifier that the
view sets as a short-lived, HttpOnly, ``SameSite=Lax`` cookie on the 302 (RFC 9700 §4.7).
``finish`` consumes the state (a forged, altered, expired or replayed one changes
nothing), then requires that cookie: a login link finished by any other browser than the
one that started it (login CSRF: the victim completing the attacker's flow) links nothing.
Only then is the code exchanged, the account read, the user signed in on the session that
started the flow, and the front-end URL answered carrying ``?b=<base64url envelope>``.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
import secrets
from urllib.parse import urlencode, urlsplit

from authlib.common.errors import AuthlibBaseError
from authlib.integrations.requests_client import OAuth2Session

from ..config import Domain
from ..errors import ApiError, BadRequest, NotFound, Unauthorized
from ..models import Session, User
from ..models.base import utcnow
from ..models.oauth import OAuthState, OAuthToken
from ..models.user import LoginProviderLink
from ..plugin_api import LoginProvider
from . import sealing
from . import users as users_service

log = logging.getLogger("aimg.oauth")
STATE_TTL = dt.timedelta(minutes=15)
_BINDING_PURPOSE = "oauth-browser-binding"


def binding_cookie_name(state: str) -> str:
    """One cookie per started flow (two tabs may log in at once); the name reveals nothing."""
    return "aimg_oauth_" + hashlib.sha256(state.encode()).hexdigest()[:16]


def provider_or_404(resources, identifier: str) -> LoginProvider:
    provider = resources.login_providers.get(identifier)
    if provider is None:
        raise NotFound(f"Unknown login provider '{identifier}'.")
    if not provider.configured:
        raise NotFound(f"Login with {provider.label} is not configured on this site.")
    return provider


def redirect_allowed(domain: Domain, url: str) -> bool:
    """Only an absolute http(s) URL on one of the domain's front-end origins."""
    if not url or any(ord(c) < 33 for c in url) or "\\" in url:
        return False
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        return False
    origin = f"{parts.scheme}://{parts.netloc}".lower()
    return origin in {o.lower() for o in domain.origins}


def _client(provider: LoginProvider, callback_url: str, **kwargs) -> OAuth2Session:
    return OAuth2Session(
        provider.client_id, provider.client_secret, scope=" ".join(provider.scopes) or None,
        redirect_uri=callback_url, token_endpoint_auth_method=provider.token_endpoint_auth_method,
        code_challenge_method="S256" if provider.use_pkce else None, **kwargs,
    )


def start(resources, provider: LoginProvider, domain: Domain, session: Session, *, redirect_url: str,
          callback_url: str, ref_list: list[str], rs: str | None, is_at_least_18_confirmed: bool) -> tuple[str, str]:
    """The provider's authorization URL and the browser-binding token (the cookie's value)."""
    if not redirect_allowed(domain, redirect_url):
        raise BadRequest("redirectURL must be a URL of this site's front-end.")
    state = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64) if provider.use_pkce else None
    client = _client(provider, callback_url)
    url, _ = client.create_authorization_url(provider.authorize_url, state=state, code_verifier=verifier,
                                             **provider.authorize_params())
    # The verifier lives only in the browser's cookie: the stored record alone cannot finish a login.
    OAuthState(state=state, provider=provider.identifier, domain=domain.identifier, session_id=session.id,
               redirect_url=redirect_url, callback_url=callback_url, code_verifier=None, ref_list=ref_list[:50],
               rs=rs, is_at_least_18_confirmed=is_at_least_18_confirmed, expires_date=utcnow() + STATE_TTL).save()
    binding = sealing.sign(resources.secret_key, _BINDING_PURPOSE, {"state": state, "verifier": verifier})
    return url, binding


def _check_binding(resources, record: OAuthState, binding: str | None) -> str | None:
    """The PKCE verifier, once the browser's cookie proves it started this very flow."""
    if not binding:
        raise BadRequest("This login was not started in this browser: please start it again.")
    try:
        data = sealing.unsign(resources.secret_key, _BINDING_PURPOSE, binding, int(STATE_TTL.total_seconds()))
    except BadRequest:
        raise BadRequest("This login was not started in this browser: please start it again.") from None
    if not isinstance(data, dict) or not hmac.compare_digest(str(data.get("state", "")), record.state):
        raise BadRequest("This login was not started in this browser: please start it again.")
    return data.get("verifier")


def encode_b(body: dict) -> str:
    raw = json.dumps(body, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _front_end_url(redirect_url: str, body: dict) -> str:
    return f"{redirect_url}{'&' if '?' in redirect_url else '?'}{urlencode({'b': encode_b(body)})}"


def _claim_state(provider: LoginProvider, state: str | None) -> OAuthState:
    """The recorded state, consumed atomically: a second use of it is refused."""
    if not state:
        raise BadRequest("The login response has no state.")
    record = OAuthState.objects(state=state).first()
    if record is None or record.provider != provider.identifier:
        raise BadRequest("The login response does not match a login started here.")
    if record.expires_date <= utcnow():
        raise BadRequest("The login took too long: please start again.")
    if not OAuthState.objects(id=record.id, used=False).update_one(set__used=True):
        raise BadRequest("This login response was already used.")
    return record


def finish(resources, provider: LoginProvider, *, state: str | None, code: str | None, error: str | None,
           binding: str | None, self_user_view) -> str:
    """Complete the flow; returns the front-end URL to redirect to (``?b=...``).

    ``binding`` is the cookie ``start`` handed to the browser. ``self_user_view(session,
    user)`` builds the SelfUser payload.
    """
    # Claimed before the binding is checked: a state that reached us from a foreign browser
    # is burnt, so the code that came with it cannot be replayed with the starter's cookie.
    record = _claim_state(provider, state)
    try:
        verifier = _check_binding(resources, record, binding)
        if error:
            raise Unauthorized(f"{provider.label} did not sign you in ({error[:100]}).")
        if not code:
            raise BadRequest("The login response has no code.")
        client = _client(provider, record.callback_url)
        try:
            token = client.fetch_token(provider.token_url, code=code, code_verifier=verifier,
                                       headers=provider.token_request_headers())
            identity = provider.identity(client)
        except (AuthlibBaseError, ValueError, KeyError) as exc:
            log.warning("oauth exchange failed", extra={"provider": provider.identifier, "error": str(exc)[:200]})
            raise Unauthorized(f"{provider.label} refused the sign-in: please try again.") from None
        if not identity.email or not identity.email_verified:
            raise Unauthorized(f"Your {provider.label} account has no verified email address.")
        user = _user_for(record, provider, identity)
        session = Session.objects(id=record.session_id).first()
        if session is None:
            raise BadRequest("The session that started this login no longer exists.")
        users_service.bind_session(session, user, record.is_at_least_18_confirmed)
        OAuthToken(session_id=session.id, user_id=user.id, provider=provider.identifier, token=dict(token)).save()
        body = {"hasError": False, "payload": self_user_view(session, users_service.get_user(user.id))}
    except ApiError as exc:
        body = {"hasError": True, "errorMessage": exc.message, "errorCode": exc.status, "payload": None}
    return _front_end_url(record.redirect_url, body)


def _user_for(record: OAuthState, provider: LoginProvider, identity) -> User:
    """The same email on the same domain is the same user (created on first login)."""
    email = users_service.normalize_email(identity.email)
    user = users_service.find_by_email(record.domain, email)
    if user is None:
        username = None
        try:
            user = users_service.create_user(
                record.domain, email, username=username,
                provider=LoginProviderLink(provider_type="oauth", provider_id=provider.label, user_id=identity.external_id),
                is_at_least_18_confirmed=record.is_at_least_18_confirmed, ref_list=list(record.ref_list), rs=record.rs)
            return user
        except ApiError:  # created in parallel by another login of the same email
            user = users_service.find_by_email(record.domain, email)
    if user is None or user.is_disabled:
        raise Unauthorized("This account is disabled.")
    users_service.add_login_provider(user, "oauth", provider.label, identity.external_id)
    return users_service.email_proven(user, keep_session_id=record.session_id)


def revoke_session_tokens(resources, session_id: str, user_id: str | None) -> None:
    """Revoke at the provider every token obtained for this session (best effort), then forget them."""
    for record in OAuthToken.objects(session_id=session_id):
        provider = resources.login_providers.get(record.provider)
        if provider is not None and provider.configured:
            try:
                provider.revoke(_client(provider, "", token=record.token), record.token)
            except Exception as exc:  # noqa: BLE001 - the local sign-out must not depend on the vendor
                log.warning("oauth revocation failed", extra={"provider": record.provider, "error": str(exc)[:200]})
        record.delete()
