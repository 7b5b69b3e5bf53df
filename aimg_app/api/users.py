"""The contract's User Management chapter."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from .. import context
from ..envelope import ok
from ..errors import BadRequest, Unauthorized
from ..services import users as users_service
from ..services.passwords import generate_strong_password
from .base import Blueprint, envelope, success_schema

blp = Blueprint("users", __name__, url_prefix="/", description="User Management.")


class SubscriptionSchema(Schema):
    merchantProcessor = fields.String(required=True)
    tier = fields.Integer(required=True)
    tierExpiration = fields.String()
    nextBillingDate = fields.String()
    productID = fields.String(required=True)
    payerID = fields.String()
    transactionID = fields.String()
    additionalInformation = fields.String()
    price = fields.Dict()


class SelfUserSchema(Schema):
    sessionID = fields.String(required=True)
    userID = fields.String(allow_none=True, required=True)
    email = fields.String(allow_none=True, required=True)
    username = fields.String(allow_none=True, required=True)
    isAuthenticated = fields.Boolean(required=True)
    isAtLeast18Confirmed = fields.Boolean(required=True)
    profilePicture = fields.String()
    tier = fields.Integer(required=True)
    tierExpiration = fields.String()
    merchantProcessor = fields.String(required=True)
    subscriptions = fields.List(fields.Nested(SubscriptionSchema), required=True)
    itemCount = fields.Integer(required=True)
    rootFolderItemCount = fields.Integer(required=True)


SelfUserResponse = envelope("SelfUserResponse", fields.Nested(SelfUserSchema))
SuccessMessageResponse = success_schema("SuccessMessageResponse", success=fields.Boolean(required=True),
                                        message=fields.String())

_EMAIL = fields.String(required=True, validate=validate.Length(min=3, max=254))
_PASSWORD = fields.String(validate=validate.Length(min=1, max=users_service.MAX_PASSWORD_CHARS))
_OTP = fields.String(validate=validate.Length(min=1, max=32))


class CreateUserSchema(Schema):
    email = _EMAIL
    username = fields.String(validate=validate.Length(max=64))
    password = _PASSWORD
    otp = _OTP
    isAtLeast18Confirmed = fields.Boolean()
    refList = fields.Raw(metadata={"description": "An array of browser referrers (a comma-separated string is accepted)."})
    rs = fields.String(validate=validate.Length(max=256))


class AuthenticateUserSchema(Schema):
    email = _EMAIL
    password = _PASSWORD
    otp = _OTP
    isAtLeast18Confirmed = fields.Boolean()


def ref_list(raw) -> list[str]:
    """SPEC-GAPS 17: an id list may come as an array or a comma-separated string."""
    if raw is None:
        return []
    if isinstance(raw, str):
        return [part.strip() for part in raw.split(",") if part.strip()]
    if isinstance(raw, list) and all(isinstance(part, str) for part in raw):
        return [part.strip() for part in raw if part.strip()]
    raise BadRequest("refList must be an array of strings or a comma-separated string.")


def _self_user_payload(session, user, picture: bool = False, extended_price: bool = False) -> dict:
    data = None
    if picture and user is not None:
        from ..services import profile_pictures

        data = profile_pictures.picture_data_uri(context.resources(), user) or ""
    return users_service.self_user(session, user, picture=data, extended_price=extended_price)


@blp.route("/createUser", methods=["POST"])
@blp.arguments(CreateUserSchema)
@blp.response(200, SelfUserResponse)
def create_user(body):
    """Create a user by email with a password or a one-time password, and sign them in."""
    from ..services import otp as otp_service

    if not body.get("password") and not body.get("otp"):
        raise BadRequest("At least one of password or otp must be provided.")
    session = context.current_session(create=True)
    domain = context.domain().identifier
    email = users_service.normalize_email(body["email"])
    provider = None
    if body.get("otp"):
        otp_service.consume(context.resources(), domain, email, body["otp"])
        from ..models.user import LoginProviderLink

        provider = LoginProviderLink(provider_type="internal", provider_id="OTP")
    user = users_service.create_user(
        domain, email, username=body.get("username"), password=body.get("password"), provider=provider,
        is_at_least_18_confirmed=body.get("isAtLeast18Confirmed", False), ref_list=ref_list(body.get("refList")),
        rs=body.get("rs"),
    )
    users_service.bind_session(session, user, body.get("isAtLeast18Confirmed"))
    return ok(_self_user_payload(session, user))


_BAD_CREDENTIALS = "The email or the password is incorrect."


@blp.route("/authenticateUser", methods=["POST"])
@blp.arguments(AuthenticateUserSchema)
@blp.response(200, SelfUserResponse)
def authenticate_user(body):
    """Sign a user in with a password or a one-time password (an OTP sign-in creates the
    user when the email is new)."""
    from ..services import otp as otp_service

    if not body.get("password") and not body.get("otp"):
        raise BadRequest("At least one of password or otp must be provided.")
    session = context.current_session(create=True)
    domain = context.domain().identifier
    email = users_service.normalize_email(body["email"])
    if body.get("otp"):
        otp_service.consume(context.resources(), domain, email, body["otp"])
        user = users_service.find_by_email(domain, email)
        if user is None:
            from ..models.user import LoginProviderLink

            try:
                user = users_service.create_user(domain, email, provider=LoginProviderLink(
                    provider_type="internal", provider_id="OTP"), is_at_least_18_confirmed=body.get("isAtLeast18Confirmed", False))
            except Exception:  # created by a parallel sign-in with the same email
                user = users_service.find_by_email(domain, email)
        else:
            users_service.add_login_provider(user, "internal", "OTP")
    else:
        user = users_service.find_by_email(domain, email)
        # The same answer, status and work for an unknown email and a wrong password.
        if not users_service.verify_password(user, body["password"]) or user is None or user.is_disabled:
            raise Unauthorized(_BAD_CREDENTIALS)
    if user is None or user.is_disabled:
        raise Unauthorized("This account is disabled.")
    users_service.bind_session(session, user, body.get("isAtLeast18Confirmed"))
    return ok(_self_user_payload(session, user))


@blp.route("/signOutUser", methods=["POST"])
@blp.response(200, SuccessMessageResponse)
def sign_out_user():
    """Sign the current user out of this session (and revoke the session's OAuth token)."""
    context.require_session_header()
    session = context.current_session(create=False)
    if session is None:
        return ok({"success": False, "message": "This session does not exist."})
    user_id = session.user_id
    signed_out = users_service.sign_out(session)
    if signed_out:
        from ..services import oauth as oauth_service

        oauth_service.revoke_session_tokens(context.resources(), session.id, user_id)
    return ok({"success": signed_out,
               "message": "You have been signed out." if signed_out else "No user was signed in on this session."})


class GetSelfUserSchema(Schema):
    isAtLeast18Confirmed = fields.Boolean()
    profilePicture = fields.Boolean(load_default=False)
    extendedPriceInfo = fields.Boolean(load_default=False)


@blp.route("/getSelfUser", methods=["GET"])
@blp.arguments(GetSelfUserSchema, location="query")
@blp.response(200, SelfUserResponse)
def get_self_user(args):
    """The signed-in user of this session (or the anonymous session's view); a session is
    created when the X-Session-ID header is absent."""
    session = context.current_session(create=True)
    user = context.current_user(required=False)
    if args.get("isAtLeast18Confirmed"):
        users_service.remember_18_confirmation(session, user, True)
    return ok(_self_user_payload(session, user, args["profilePicture"], args["extendedPriceInfo"]))


@blp.route("/generateStrongPassword", methods=["GET"])
@blp.response(200, envelope("StrongPasswordResponse", fields.String()))
def generate_password():
    """A random password that satisfies the password policy (a front-end helper)."""
    return ok(generate_strong_password())
