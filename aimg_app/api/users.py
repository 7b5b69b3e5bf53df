"""The contract's User Management chapter."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from .. import context
from ..envelope import ok
from ..errors import BadRequest
from ..services import sign_in
from ..services import users as users_service
from ..services.passwords import generate_strong_password
from .base import Blueprint, ContractSchema, admin_only, envelope, success_schema
from .fields import IdList, Timestamp, derived

blp = Blueprint("users", __name__, url_prefix="/", description="User Management.")


class SubscriptionSchema(ContractSchema):
    """The contract's Subscription, read from a ``tiers.ShownSubscription``."""

    merchantProcessor = fields.String(required=True, attribute="subscription.processor")
    tier = fields.Integer(required=True, attribute="subscription.tier")
    tierExpiration = Timestamp(attribute="subscription.expiration")
    nextBillingDate = derived(Timestamp, lambda s: s.subscription.expiration if s.subscription.renews else None)
    productID = fields.String(required=True, attribute="subscription.product_id")
    payerID = derived(fields.String, lambda s: s.subscription.payer_id or None)
    transactionID = fields.String(allow_none=True, attribute="subscription.vendor_id")
    additionalInformation = derived(fields.String, lambda s: s.subscription.additional_information or None)
    price = derived(fields.Dict, lambda s: dict(s.subscription.price) if s.with_price and s.subscription.price
                    else None)


class SelfUserSchema(ContractSchema):
    """The contract's SelfUser, read from a ``users.SelfUserView``."""

    sessionID = fields.String(required=True, attribute="session.id")
    userID = fields.String(allow_none=True, required=True, attribute="user.id", dump_default=None)
    email = fields.String(allow_none=True, required=True, attribute="user.email", dump_default=None)
    username = fields.String(allow_none=True, required=True, attribute="user.username", dump_default=None)
    isAuthenticated = derived(fields.Boolean, lambda s: s.user is not None, required=True)
    isAtLeast18Confirmed = fields.Boolean(required=True, attribute="is_at_least_18_confirmed")
    profilePicture = fields.String(attribute="picture")
    tier = fields.Integer(required=True, attribute="tier.tier")
    tierExpiration = Timestamp(attribute="tier.expiration")
    merchantProcessor = fields.String(required=True, attribute="tier.merchant_processor")
    subscriptions = fields.List(fields.Nested(SubscriptionSchema), required=True)
    itemCount = derived(fields.Integer, lambda s: s.user.item_count if s.user else 0, required=True)
    rootFolderItemCount = derived(fields.Integer, lambda s: s.user.root_folder_item_count if s.user else 0,
                                  required=True)


class PublicUserSchema(ContractSchema):
    """getUser's public profile, read from a ``users.PublicUserView``."""

    userID = fields.String(attribute="user.id")
    username = fields.String(attribute="user.username")
    profilePicture = derived(fields.String, lambda v: v.picture or None)


class LoginProviderSchema(ContractSchema):
    providerType = fields.String(attribute="provider_type")
    providerId = fields.String(attribute="provider_id")
    userId = derived(fields.String, lambda link: link.user_id if link.provider_type == "oauth" and link.user_id
                     else None)


class ArchivedEmailSchema(Schema):
    email = fields.String()
    archivedDate = Timestamp(attribute="archived_date")


_AS_STORED = {"allow_none": True}  # written as stored, null included


class AdminUserSchema(ContractSchema):
    """getUser's extended view for admins, read from a ``users.AdminUserView``."""

    userID = fields.String(attribute="user.id")
    username = fields.String(attribute="user.username", **_AS_STORED)
    email = fields.String(attribute="user.email", **_AS_STORED)
    createdDate = Timestamp(attribute="user.created_date", **_AS_STORED)
    updatedDate = Timestamp(attribute="user.updated_date", **_AS_STORED)
    deletedDate = Timestamp(attribute="user.deleted_date")
    isDisabled = derived(fields.Boolean, lambda v: bool(v.user.is_disabled))
    isAtLeast18Confirmed = derived(fields.Boolean, lambda v: bool(v.user.is_at_least_18_confirmed))
    tier = fields.Integer(attribute="tier.tier")
    tierExpiration = Timestamp(attribute="tier.expiration")
    merchantProcessor = fields.String(attribute="tier.merchant_processor")
    subscriptions = fields.List(fields.Nested(SubscriptionSchema))
    flaggedImagesCount = fields.Integer(attribute="user.flagged_images_count", **_AS_STORED)
    highHeatImagesCount = fields.Integer(attribute="user.high_heat_images_count", **_AS_STORED)
    refList = derived(fields.List, lambda v: list(v.user.ref_list or []), fields.String())
    rs = fields.String(attribute="user.rs", **_AS_STORED)
    loginProviders = fields.List(fields.Nested(LoginProviderSchema), attribute="user.login_providers")
    connectProviders = fields.List(fields.Nested(LoginProviderSchema), attribute="user.connect_providers")
    abuse = derived(fields.Integer, lambda v: v.user.abuse or 0)
    profilePicture = derived(fields.Boolean, lambda v: bool(v.user.profile_picture_file_id))
    profilePictureBanned = derived(fields.Boolean, lambda v: bool(v.user.profile_picture_banned))
    archivedEmails = fields.List(fields.Nested(ArchivedEmailSchema), attribute="user.archived_emails")
    itemCount = fields.Integer(attribute="user.item_count", **_AS_STORED)
    publicItemCount = fields.Integer(attribute="user.public_item_count", **_AS_STORED)
    rootFolderItemCount = fields.Integer(attribute="user.root_folder_item_count", **_AS_STORED)
    additionalInformation = derived(fields.String, lambda v: v.user.additional_information or "")
    roles = derived(fields.List, lambda v: list(v.user.roles or []), fields.String())


class UserPayload(fields.Raw):
    """getUser's payload: the public profile, or for admins the extended view."""

    def _serialize(self, value, attr, obj, **kwargs):
        schema = AdminUserSchema if isinstance(value, users_service.AdminUserView) else PublicUserSchema
        return schema().dump(value)


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
    return ok(users_service.self_user(session, user))


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
    return ok(users_service.self_user(session, user))


@blp.route("/signOutUser", methods=["POST"])
@blp.response(200, SuccessMessageResponse)
def sign_out_user():
    """Sign the current user out of this session (and revoke the session's OAuth token)."""
    context.require_session_header()
    session = context.current_session(create=False)
    if session is None:
        return ok({"success": False, "message": "This session does not exist."})
    signed_out = sign_in.sign_out(context.resources(), session)
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
    return ok(users_service.get_self(context.resources(), session, context.current_user(required=False),
                                     confirm_18=bool(args.get("isAtLeast18Confirmed")),
                                     with_picture=args["profilePicture"], extended_price=args["extendedPriceInfo"]))


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
    return ok(users_service.set_self_properties(
        context.resources(), context.current_session(), user, username=body.get("username"),
        password=body.get("password"), email=body.get("email"), otp=body.get("otp"),
        confirm_18=bool(body.get("isAtLeast18Confirmed"))))


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
@blp.response(200, envelope("GetUserResponse", UserPayload(allow_none=True)))
def get_user(args):
    """A user's public profile; admins look up by userID, email or username and see the
    extended fields, deleted users included."""
    return ok(users_service.look_up(context.resources(), context.domain().identifier,
                                    as_admin=context.admin_name() is not None, user_id=args.get("userID"),
                                    email=args.get("email"), username=args.get("username")))


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
