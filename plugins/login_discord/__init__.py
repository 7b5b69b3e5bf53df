"""Sign in with Discord (``identify email`` scopes). Settings: client_id, client_secret."""
from __future__ import annotations

from aimg_app.plugin_api import LoginProvider, OAuthIdentity, hookimpl


class Discord(LoginProvider):
    identifier = "discord"
    label = "Discord"
    authorize_url = "https://discord.com/oauth2/authorize"
    token_url = "https://discord.com/api/oauth2/token"
    userinfo_url = "https://discord.com/api/users/@me"
    revocation_url = "https://discord.com/api/oauth2/token/revoke"
    scopes = ("identify", "email")
    use_pkce = False

    def identity(self, http) -> OAuthIdentity:
        info = http.get(self.userinfo_url, timeout=15).json()
        return OAuthIdentity(external_id=str(info["id"]), email=info.get("email"),
                             email_verified=info.get("verified") is True, username=info.get("username"))


@hookimpl
def register_login_providers():
    return [Discord]
