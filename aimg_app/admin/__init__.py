"""The Admin UI at ``/admin``: server-rendered pages for the people who moderate and run the site.

Sign-in with a personal admin key (``AIMG_ADMIN_KEYS``) opens a cookie session: Flask's
signed session cookie, HttpOnly, ``SameSite=Strict``, limited to ``/admin`` and expiring
after ``SESSION_LIFETIME`` (checked on the server too, whatever the browser keeps). Every
form carries a Flask-WTF CSRF token; the JSON API is not affected (checking is off by
default and only this blueprint asks for it). Not part of the OpenAPI document.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac

from flask import Flask, current_app, request
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFProtect

SESSION_LIFETIME = dt.timedelta(hours=8)
COOKIE_NAME = "aimg_admin"
URL_PREFIX = "/admin"

csrf = CSRFProtect()


def derived_secret(purpose: str) -> bytes:
    """A key for one use of the deployment's secret (never the secret itself)."""
    secret = current_app.extensions["aimg"].secret_key
    return hmac.new(secret, f"aimg:admin:{purpose}".encode(), hashlib.sha256).digest()


class AdminSessionInterface(SecureCookieSessionInterface):
    """Flask's signed cookie session, keyed from the deployment's secret on first use (so
    building an app that serves no request reads no secret), for ``/admin`` only."""

    def open_session(self, app, request):
        if not request.path.startswith(URL_PREFIX):
            return self.make_null_session(app)  # the cookie is never sent there; the API has no session
        if not app.secret_key:
            app.secret_key = derived_secret("session")
        return super().open_session(app, request)

    def get_cookie_name(self, app):
        return COOKIE_NAME

    def get_cookie_path(self, app):
        return URL_PREFIX

    def get_cookie_httponly(self, app):
        return True

    def get_cookie_samesite(self, app):
        return "Strict"

    def get_cookie_secure(self, app):
        # Secure whenever the console is reached over HTTPS (directly or through a trusted proxy).
        return bool(app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure


def register_admin(app: Flask) -> None:
    from .views import bp

    app.session_interface = AdminSessionInterface()
    app.config.update(
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
        SESSION_REFRESH_EACH_REQUEST=False,
        WTF_CSRF_CHECK_DEFAULT=False,  # the JSON API never uses the cookie session
        WTF_CSRF_TIME_LIMIT=None,  # a token lives as long as the session it belongs to
        WTF_CSRF_SSL_STRICT=True,
    )
    csrf.init_app(app)
    app.register_blueprint(bp)
