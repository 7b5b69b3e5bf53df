"""A fake OAuth 2.0 provider on loopback: authorize, token (with PKCE), userinfo, revocation.

It answers like Google's OpenID userinfo, Discord's ``/users/@me`` or GitHub's
``/user`` + ``/user/emails``, so the real plugin code and authlib run unchanged.
"""
from __future__ import annotations

import base64
import hashlib
import secrets
import threading
from dataclasses import dataclass, field
from urllib.parse import urlencode

from flask import Flask, jsonify, redirect, request
from werkzeug.serving import make_server


@dataclass
class Account:
    external_id: str
    email: str
    verified: bool = True
    name: str = "Fake User"


@dataclass
class FakeOAuthProvider:
    client_id: str = "fake-client"
    client_secret: str = "fake-secret"
    account: Account = field(default_factory=lambda: Account("ext-1", "someone@example.com"))
    codes: dict = field(default_factory=dict)
    tokens: dict = field(default_factory=dict)
    revoked: list = field(default_factory=list)
    authorize_requests: list = field(default_factory=list)

    def app(self) -> Flask:
        app = Flask("fake_oauth")

        @app.get("/authorize")
        def authorize():
            args = request.args
            self.authorize_requests.append(dict(args))
            if args.get("client_id") != self.client_id or args.get("response_type") != "code":
                return "bad request", 400
            code = secrets.token_urlsafe(16)
            self.codes[code] = {"redirect_uri": args["redirect_uri"], "challenge": args.get("code_challenge"),
                                "account": self.account}
            return redirect(f"{args['redirect_uri']}?{urlencode({'code': code, 'state': args.get('state', '')})}")

        @app.post("/token")
        def token():
            form = request.form
            if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
                return jsonify(error="invalid_client"), 401
            grant = self.codes.pop(form.get("code", ""), None)  # single use
            if grant is None or form.get("grant_type") != "authorization_code":
                return jsonify(error="invalid_grant"), 400
            if form.get("redirect_uri") != grant["redirect_uri"]:
                return jsonify(error="invalid_grant", error_description="redirect_uri"), 400
            if grant["challenge"]:
                verifier = form.get("code_verifier", "")
                digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
                if digest != grant["challenge"]:
                    return jsonify(error="invalid_grant", error_description="PKCE"), 400
            access = secrets.token_urlsafe(24)
            self.tokens[access] = grant["account"]
            return jsonify(access_token=access, token_type="Bearer", expires_in=3600, scope="email")

        def account():
            header = request.headers.get("Authorization", "")
            return self.tokens.get(header.removeprefix("Bearer ").strip())

        @app.get("/userinfo")  # Google (OpenID Connect)
        def userinfo():
            acc = account()
            if acc is None:
                return jsonify(error="invalid_token"), 401
            return jsonify(sub=acc.external_id, email=acc.email, email_verified=acc.verified, name=acc.name)

        @app.get("/users/@me")  # Discord
        def discord_me():
            acc = account()
            if acc is None:
                return jsonify(message="401: Unauthorized"), 401
            return jsonify(id=acc.external_id, email=acc.email, verified=acc.verified, username=acc.name)

        @app.get("/user")  # GitHub
        def github_user():
            acc = account()
            return (jsonify(id=int(acc.external_id.split("-")[-1]), login=acc.name) if acc else (jsonify(message="Bad credentials"), 401))

        @app.get("/user/emails")
        def github_emails():
            acc = account()
            if acc is None:
                return jsonify(message="Bad credentials"), 401
            return jsonify([{"email": "old@example.com", "primary": False, "verified": True},
                            {"email": acc.email, "primary": True, "verified": acc.verified}])

        @app.post("/revoke")
        def revoke():
            self.revoked.append(request.form.get("token"))
            self.tokens.pop(request.form.get("token", ""), None)
            return "", 200

        @app.delete("/applications/<client_id>/token")
        def github_revoke(client_id):
            self.revoked.append((request.get_json() or {}).get("access_token"))
            return "", 204

        return app


class Running:
    def __init__(self, provider: FakeOAuthProvider):
        self.provider = provider
        self.server = make_server("127.0.0.1", 0, provider.app(), threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def settings(self, style: str) -> dict:
        """Plugin settings pointing a provider plugin at this fake."""
        base = {"client_id": self.provider.client_id, "client_secret": self.provider.client_secret,
                "authorize_url": f"{self.url}/authorize", "token_url": f"{self.url}/token"}
        if style == "google":
            return base | {"userinfo_url": f"{self.url}/userinfo", "revocation_url": f"{self.url}/revoke"}
        if style == "discord":
            return base | {"userinfo_url": f"{self.url}/users/@me", "revocation_url": f"{self.url}/revoke"}
        if style == "github":
            return base | {"api_url": self.url}
        return base | {"userinfo_url": f"{self.url}/userinfo", "revocation_url": f"{self.url}/revoke"}

    def stop(self) -> None:
        self.server.shutdown()
