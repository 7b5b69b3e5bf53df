"""Sign in with Google (OpenID Connect userinfo; PKCE). Settings: client_id, client_secret."""
from __future__ import annotations

from aimg_app.plugin_api import LoginProvider, OAuthIdentity, hookimpl


class Google(LoginProvider):
    identifier = "google"
    label = "Google"
    authorize_url = "https://accounts.google.com/o/oauth2/v2/auth"
    token_url = "https://oauth2.googleapis.com/token"
    userinfo_url = "https://openidconnect.googleapis.com/v1/userinfo"
    revocation_url = "https://oauth2.googleapis.com/revoke"
    scopes = ("openid", "email", "profile")
    use_pkce = True

    def authorize_params(self):
        return {"prompt": "select_account"}

    def identity(self, http) -> OAuthIdentity:
        info = http.get(self.userinfo_url, timeout=15).json()
        return OAuthIdentity(external_id=str(info["sub"]), email=info.get("email"),
                             email_verified=info.get("email_verified") is True, username=info.get("name"))


@hookimpl
def register_login_providers():
    return [Google]
