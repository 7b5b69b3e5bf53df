"""The contract's User Management chapter."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from .. import context
from ..envelope import ok
from ..errors import BadRequest
from ..services import sign_in
from ..services import users as users_service
from ..services.passwords import generate_strong_password
from .base import Blueprint, admin_only, envelope, success_schema
from .fields import IdList

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
    refList = IdList(max_chars=None, load_default=list,
                     metadata={"description": "An array of browser referrers (a comma-separated string is accepted)."})
    rs = fields.String(validate=validate.Length(max=256))


class AuthenticateUserSchema(Schema):
    email = _EMAIL
    password = _PASSWORD
    otp = _OTP
    isAtLeast18Confirmed = fields.Boolean()


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
    session = context.current_session(create=True)
    user = sign_in.create_account(
        context.resources(), context.domain().identifier, session, email=body["email"], password=body.get("password"),
        otp=body.get("otp"), username=body.get("username"), is_at_least_18_confirmed=body.get("isAtLeast18Confirmed"),
        ref_list=body["refList"], rs=body.get("rs"))
    return ok(_self_user_payload(session, user))


@blp.route("/authenticateUser", methods=["POST"])
@blp.arguments(AuthenticateUserSchema)
@blp.response(200, SelfUserResponse)
def authenticate_user(body):
    """Sign a user in with a password or a one-time password (an OTP sign-in creates the
    user when the email is new)."""
    from ..ratelimit import client_key

    session = context.current_session(create=True)
    user = sign_in.authenticate(
        context.resources(), context.domain().identifier, session, client_key(), email=body["email"],
        password=body.get("password"), otp=body.get("otp"), is_at_least_18_confirmed=body.get("isAtLeast18Confirmed"))
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


# --- OTP ----------------------------------------------------------------------------------


class RequestOtpSchema(Schema):
    email = _EMAIL
    signUp = fields.Boolean(load_default=False)


@blp.route("/requestOTP", methods=["POST"])
@blp.arguments(RequestOtpSchema)
@blp.response(200, SuccessMessageResponse)
def request_otp(body):
    """Mail a one-time password (and magic link) to the email. Rate limited per email and
    per client. With signUp, an email that already has an account is refused (409)."""
    from ..ratelimit import client_key
    from ..services import otp as otp_service

    email = users_service.normalize_email(body["email"])
    otp_service.request_otp(context.resources(), context.domain(), email, sign_up=body["signUp"],
                            client_key=client_key())
    return ok({"success": True, "message": "A one-time password was sent to this email. It is valid for 24 hours."})


# --- the signed-in user's own properties -----------------------------------------------------


class SetSelfUserPropertiesSchema(Schema):
    username = fields.String(validate=validate.Length(max=64))
    password = _PASSWORD
    email = fields.String(validate=validate.Length(min=3, max=254))
    otp = _OTP
    isAtLeast18Confirmed = fields.Boolean()


@blp.route("/setSelfUserProperties", methods=["POST"])
@blp.arguments(SetSelfUserPropertiesSchema)
@blp.response(200, SelfUserResponse)
def set_self_user_properties(body):
    """Change the signed-in user's username, password, email (with an OTP requested for the
    new address with signUp) or 18+ confirmation. A new password signs out every other session."""
    if not any(key in body for key in ("username", "password", "email", "isAtLeast18Confirmed")):
        raise BadRequest("Give at least one of username, password, email or isAtLeast18Confirmed.")
    user = context.current_user()
    session = context.current_session()
    # Validate everything before changing anything, so a refusal changes nothing.
    if "username" in body:
        users_service.check_username_change(user, body["username"])
    if "password" in body:
        users_service.validate_password(body["password"])
    if "email" in body:
        users_service.change_email(context.resources(), user, body["email"], body.get("otp"))
    if "username" in body:
        users_service.change_username(user, body["username"])
    if "password" in body:
        users_service.change_password(user, body["password"], keep_session_id=session.id)
    if body.get("isAtLeast18Confirmed"):
        users_service.remember_18_confirmation(session, user, True)
    return ok(_self_user_payload(session, users_service.get_user(user.id)))


class ProfilePictureSchema(Schema):
    profilePicture = fields.String(required=True, metadata={"description": "A base64 Data URI; \"\" removes the picture."})


ProfilePictureResponse = success_schema("ProfilePictureResponse", profilePicture=fields.String())


@blp.route("/setSelfUserProfilePicture", methods=["POST"])
@blp.arguments(ProfilePictureSchema)
@blp.response(200, ProfilePictureResponse)
def set_self_user_profile_picture(body):
    """Set the signed-in user's picture (PNG, JPEG, GIF, WEBP, BMP or TIFF as a Data URI),
    normalised to a 128x128 WEBP; "" removes it."""
    from ..services import profile_pictures

    user = context.current_user()
    return ok({"profilePicture": profile_pictures.set_picture(context.resources(), user, body["profilePicture"])})


# --- key-value pairs ------------------------------------------------------------------------


class KvpKeySchema(Schema):
    key = fields.String(required=True, validate=validate.Length(min=1, max=64))


class KvpSetSchema(KvpKeySchema):
    value = fields.String(required=True)


KvpResponse = success_schema("KvpResponse", key=fields.String(), value=fields.String())
SuccessResponse = success_schema("UserSuccessResponse", success=fields.Boolean(required=True))


@blp.route("/getUserKVP", methods=["GET"])
@blp.arguments(KvpKeySchema, location="query")
@blp.response(200, KvpResponse)
def get_user_kvp(args):
    """The value the signed-in user stored under a key (404 when none)."""
    from ..services import kvp

    return ok({"key": args["key"], "value": kvp.get_value(context.current_user(), args["key"])})


@blp.route("/setUserKVP", methods=["POST"])
@blp.arguments(KvpSetSchema)
@blp.response(200, KvpResponse)
def set_user_kvp(body):
    """Store a value under a key for the signed-in user (limits in docs/decisions.md)."""
    from ..services import kvp

    kvp.set_value(context.current_user(), body["key"], body["value"])
    return ok({"key": body["key"], "value": body["value"]})


@blp.route("/deleteUserKVP", methods=["DELETE"])
@blp.arguments(KvpKeySchema, location="query")
@blp.response(200, SuccessResponse)
def delete_user_kvp(args):
    """Delete the signed-in user's value under a key."""
    from ..services import kvp

    return ok({"success": kvp.delete_value(context.current_user(), args["key"])})


# --- lookups and admin ----------------------------------------------------------------------


class GetUserSchema(Schema):
    userID = fields.String(validate=validate.Length(max=64))
    email = fields.String(validate=validate.Length(max=254))
    username = fields.String(validate=validate.Length(max=64))


@blp.route("/getUser", methods=["GET"])
@blp.arguments(GetUserSchema, location="query")
@blp.response(200, envelope("GetUserResponse"))
def get_user(args):
    """A user's public profile; admins look up by userID, email or username and see the
    extended fields, deleted users included."""
    from ..errors import NotFound
    from ..services import profile_pictures

    if context.admin_name() is not None:
        user = users_service.find_target(context.domain().identifier, args.get("userID"), args.get("email"),
                                         args.get("username"))
        return ok(users_service.admin_view(user))
    if args.get("email") or args.get("username"):
        raise BadRequest("Only admins can look users up by email or username; give userID.")
    if not args.get("userID"):
        raise BadRequest("userID is required.")
    user = users_service.get_user(args["userID"])
    if user is None or user.is_disabled or user.domain != context.domain().identifier:
        raise NotFound("No such user.")
    return ok(users_service.public_view(user, profile_pictures.picture_data_uri(context.resources(), user)))


class DeleteUserSchema(Schema):
    userID = fields.String(validate=validate.Length(max=64))
    deleteItems = fields.Boolean(load_default=False)


@blp.route("/deleteUser", methods=["DELETE"])
@blp.arguments(DeleteUserSchema, location="query")
@blp.response(200, SuccessResponse)
def delete_user(args):
    """Delete the signed-in user (admins: any user by userID). Soft delete; deleteItems
    deletes their Items too."""
    context.require_session_header()
    if context.admin_name() is not None and args.get("userID"):
        target = users_service.find_target(context.domain().identifier, user_id=args["userID"])
    else:
        target = context.current_user()
    return ok({"success": users_service.delete_user(target, args["deleteItems"])})


class AdminTargetSchema(Schema):
    userID = fields.String(validate=validate.Length(max=64))
    email = fields.String(validate=validate.Length(max=254))


class ProfilePictureBannedSchema(AdminTargetSchema):
    profilePictureBanned = fields.Boolean()


@blp.route("/setProfilePictureBanned", methods=["POST"])
@admin_only
@blp.arguments(ProfilePictureBannedSchema)
@blp.response(200, envelope("ProfilePictureBannedResponse"))
def set_profile_picture_banned(body):
    """Ban (removing the picture) or unban a user's profile picture (admins only); without
    profilePictureBanned, reads it. The payload is an array with one object per user."""
    from ..services import profile_pictures

    user = users_service.find_target(context.domain().identifier, body.get("userID"), body.get("email"))
    if "profilePictureBanned" in body:
        profile_pictures.set_banned(context.resources(), user, body["profilePictureBanned"])
    return ok([{"userID": user.id, "profilePictureBanned": bool(user.profile_picture_banned)}])


class AdditionalInformationSchema(AdminTargetSchema):
    additionalInformation = fields.String(validate=validate.Length(max=10_000))


@blp.route("/setUserAdditionalInformation", methods=["POST"])
@admin_only
@blp.arguments(AdditionalInformationSchema)
@blp.response(200, envelope("AdditionalInformationResponse"))
def set_user_additional_information(body):
    """Set (or, when absent or empty, clear) an admin's notes on a user (admins only). The
    payload is an array with one object per user."""
    user = users_service.find_target(context.domain().identifier, body.get("userID"), body.get("email"))
    info = users_service.set_additional_information(user, body.get("additionalInformation"))
    return ok([{"userID": user.id, "additionalInformation": info or ""}])


class AbuseLevelSchema(AdminTargetSchema):
    abuse = fields.Raw(metadata={"description": "0-9; any other value reads the current level."})


AbuseResponse = success_schema("AbuseResponse", abuse=fields.Integer())


@blp.route("/setUserAbuseLevel", methods=["POST"])
@admin_only
@blp.arguments(AbuseLevelSchema)
@blp.response(200, AbuseResponse)
def set_user_abuse_level(body):
    """Set a user's abuse level 0-9 (admins only); no level or an invalid one reads it."""
    context.require_admin()
    user = users_service.find_target(context.domain().identifier, body.get("userID"), body.get("email"))
    return ok({"abuse": users_service.set_abuse_level(user, body.get("abuse"))})
