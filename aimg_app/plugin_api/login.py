"""The login-provider plugin family: OAuth 2.0 authorization-code providers.

The core runs the flow (state, PKCE, redirect checks, token exchange through authlib) and
asks the provider only what differs between vendors: its endpoints and how to read the
signed-in account from its API.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True)
class OAuthIdentity:
    """The account at the provider. ``email_verified`` must be True for the email to be
    trusted: an unverified email never signs into (or takes over) an AIMG account."""

    external_id: str
    email: str | None
    email_verified: bool
    username: str | None = None


class LoginProvider:
    """Base class of an OAuth login provider. Subclass it and return the subclass from
    ``register_login_providers``; the core instantiates it with the settings of
    ``[plugins.<identifier>]`` (``client_id``, ``client_secret``, and optionally any of the
    endpoint URLs below to override them).

    ``identifier`` (the ``/auth/{identifier}`` path segment), ``label`` (the LoginProvider
    ``providerId``, e.g. "Google"), ``authorize_url``, ``token_url`` and ``identity`` are
    required; the rest have safe defaults.
    """

    identifier: str = ""
    label: str = ""
    authorize_url: str = ""
    token_url: str = ""
    userinfo_url: str = ""
    revocation_url: str | None = None  # RFC 7009 endpoint; None when the vendor has none
    scopes: tuple[str, ...] = ()
    use_pkce: bool = True
    token_endpoint_auth_method: str = "client_secret_post"

    _OVERRIDABLE = ("authorize_url", "token_url", "userinfo_url", "revocation_url")

    def __init__(self, settings: Mapping[str, Any]):
        """``settings``: this provider's configuration (``client_id``, ``client_secret``, URL overrides)."""
        if not self.identifier or not self.label:
            raise NotImplementedError(f"{type(self).__name__} must set identifier and label")
        self.settings = dict(settings)
        self.client_id = str(self.settings.get("client_id") or "")
        self.client_secret = str(self.settings.get("client_secret") or "")
        for name in self._OVERRIDABLE:
            if self.settings.get(name):
                setattr(self, name, str(self.settings[name]).rstrip("/") if name != "authorize_url" else str(self.settings[name]))

    @property
    def configured(self) -> bool:
        """Whether the operator gave this provider its client credentials."""
        return bool(self.client_id and self.client_secret and self.authorize_url and self.token_url)

    def authorize_params(self) -> dict[str, str]:
        """Extra query parameters of the authorization request (e.g. ``prompt``); none by default."""
        return {}

    def token_request_headers(self) -> dict[str, str]:
        """Extra headers of the token request (GitHub wants ``Accept: application/json``)."""
        return {"Accept": "application/json"}

    def identity(self, http) -> OAuthIdentity:
        """Read the signed-in account. ``http`` is an authlib ``OAuth2Session`` holding the
        access token (``http.get(url).json()``). Must not write anything."""
        raise NotImplementedError

    def revoke(self, http, token: Mapping[str, Any]) -> None:
        """Revoke ``token`` (the token response) at sign-out. ``http`` is an authlib
        ``OAuth2Session``. The default uses the RFC 7009 ``revocation_url`` when there is one."""
        if self.revocation_url and token.get("access_token"):
            http.revoke_token(self.revocation_url, token=token["access_token"], token_type_hint="access_token")
