"""The contract's External Login Providers chapter (OAuth 2.0 login plugins)."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from flask import redirect, request
from marshmallow import Schema, fields, validate

from .. import context
from ..services import oauth as oauth_service
from ..services import users as users_service
from .base import Blueprint
from .fields import IdList
from .users import SelfUserSchema

blp = Blueprint("auth", __name__, url_prefix="/", description="External Login Providers (OAuth 2.0).")


class StartLoginSchema(Schema):
    redirectURL = fields.String(required=True, validate=validate.Length(min=1, max=2048),
                                metadata={"description": "A front-end URL of this site; the result comes back as ?b=."})
    refList = IdList(max_chars=None, load_default=list,
                     metadata={"description": "Comma-separated browser referrers (an array is accepted)."})
    rs = fields.String(validate=validate.Length(max=256))
    isAtLeast18Confirmed = fields.Boolean(load_default=False)


class CallbackSchema(Schema):
    state = fields.String()
    code = fields.String()
    error = fields.String()


def _callback_url(provider: str) -> str:
    base = context.resources().settings.public_base_url or request.host_url.rstrip("/")
    return f"{base}/auth/{provider}/callback"


def _callback_path(provider: str) -> str:
    return urlsplit(_callback_url(provider)).path


def _https() -> bool:
    return _callback_url("x").startswith("https://")


def _state_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["state"][0]


@blp.route("/auth/<string:loginProvider>", methods=["POST"])
@blp.arguments(StartLoginSchema, location="json_or_form")
@blp.response(302, description="Redirect to the provider's login page.")
def start_login(body, loginProvider):  # noqa: N803 - the contract's parameter name
    """Start a login with an OAuth provider (google, discord, github, or any installed
    login-provider plugin): 302 to its login page. The result comes back to redirectURL as
    ``?b=<base64url JSON envelope whose payload is the SelfUser>``."""
    provider = oauth_service.provider_or_404(context.resources(), loginProvider)
    session = context.current_session(create=True)
    url, binding = oauth_service.start(
        context.resources(), provider, context.domain(), session, redirect_url=body["redirectURL"],
        callback_url=_callback_url(loginProvider), ref_list=body["refList"], rs=body.get("rs"),
        is_at_least_18_confirmed=body["isAtLeast18Confirmed"],
    )
    response = redirect(url, 302)
    # The browser that starts the login must be the one that finishes it (login CSRF).
    # Lax: the provider's redirect back is a top-level GET from another site.
    response.set_cookie(oauth_service.binding_cookie_name(_state_of(url)), binding,
                        max_age=int(oauth_service.STATE_TTL.total_seconds()), path=_callback_path(loginProvider),
                        secure=_https(), httponly=True, samesite="Lax")
    return response


@blp.route("/auth/<string:loginProvider>/callback", methods=["GET"])
@blp.arguments(CallbackSchema, location="query")
@blp.response(302, description="Redirect to the front-end with ?b=.")
def login_callback(args, loginProvider):  # noqa: N803
    """Where the provider sends the user back (not called by front-ends directly)."""
    provider = oauth_service.provider_or_404(context.resources(), loginProvider)
    state = args.get("state")
    cookie = oauth_service.binding_cookie_name(state) if state else None
    url = oauth_service.finish(
        context.resources(), provider, state=state, code=args.get("code"), error=args.get("error"),
        binding=request.cookies.get(cookie) if cookie else None,
        self_user_view=lambda session, user: SelfUserSchema().dump(users_service.self_user(session, user)),
    )
    response = redirect(url, 302)
    if cookie:
        response.delete_cookie(cookie, path=_callback_path(loginProvider), secure=_https(), httponly=True,
                               samesite="Lax")
    return response
