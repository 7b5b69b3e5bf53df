"""Sign in with GitHub (the primary verified email from ``/user/emails``).

Settings: client_id, client_secret (and ``api_url`` to point at GitHub Enterprise).
GitHub revokes through ``DELETE /applications/{client_id}/token`` with basic auth.
"""
from __future__ import annotations

from aimg_app.plugin_api import LoginProvider, OAuthIdentity, hookimpl


class GitHub(LoginProvider):
    identifier = "github"
    label = "GitHub"
    authorize_url = "https://github.com/login/oauth/authorize"
    token_url = "https://github.com/login/oauth/access_token"
    userinfo_url = "https://api.github.com/user"
    scopes = ("read:user", "user:email")
    use_pkce = False

    def __init__(self, settings):
        super().__init__(settings)
        self.api_url = str(self.settings.get("api_url") or self.userinfo_url.rsplit("/user", 1)[0]).rstrip("/")

    def identity(self, http) -> OAuthIdentity:
        info = http.get(f"{self.api_url}/user", timeout=15).json()
        emails = http.get(f"{self.api_url}/user/emails", timeout=15).json()
        primary = next((e for e in emails if e.get("primary") and e.get("verified")), None)
        return OAuthIdentity(external_id=str(info["id"]), email=primary["email"] if primary else None,
                             email_verified=primary is not None, username=info.get("login"))

    def revoke(self, http, token) -> None:
        import requests

        if token.get("access_token"):
            requests.delete(f"{self.api_url}/applications/{self.client_id}/token", json={"access_token": token["access_token"]},
                            auth=(self.client_id, self.client_secret), timeout=15)


@hookimpl
def register_login_providers():
    return [GitHub]
