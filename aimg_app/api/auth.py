"""The contract's External Login Providers chapter (OAuth 2.0 login plugins)."""
from __future__ import annotations

from flask import redirect, request
from marshmallow import Schema, fields, validate

from .. import context
from ..services import oauth as oauth_service
from ..services import users as users_service
from .base import Blueprint
from .fields import IdList

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


@blp.route("/auth/<string:loginProvider>", methods=["POST"])
@blp.arguments(StartLoginSchema, location="json_or_form")
@blp.response(302, description="Redirect to the provider's login page.")
def start_login(body, loginProvider):  # noqa: N803 - the contract's parameter name
    """Start a login with an OAuth provider (google, discord, github, or any installed
    login-provider plugin): 302 to its login page. The result comes back to redirectURL as
    ``?b=<base64url JSON envelope whose payload is the SelfUser>``."""
    provider = oauth_service.provider_or_404(context.resources(), loginProvider)
    session = context.current_session(create=True)
    url = oauth_service.start(
        provider, context.domain(), session, redirect_url=body["redirectURL"], callback_url=_callback_url(loginProvider),
        ref_list=body["refList"], rs=body.get("rs"), is_at_least_18_confirmed=body["isAtLeast18Confirmed"],
    )
    return redirect(url, 302)


@blp.route("/auth/<string:loginProvider>/callback", methods=["GET"])
@blp.arguments(CallbackSchema, location="query")
@blp.response(302, description="Redirect to the front-end with ?b=.")
def login_callback(args, loginProvider):  # noqa: N803
    """Where the provider sends the user back (not called by front-ends directly)."""
    provider = oauth_service.provider_or_404(context.resources(), loginProvider)
    url = oauth_service.finish(
        context.resources(), provider, state=args.get("state"), code=args.get("code"), error=args.get("error"),
        self_user_view=lambda session, user: users_service.self_user(session, user),
    )
    return redirect(url, 302)
