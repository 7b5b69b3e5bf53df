"""Users: creation, passwords, sessions, and the contract's views of a user."""
from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass

import mongoengine as me
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ..errors import BadRequest, Conflict, Unauthorized
from ..models import Session, User
from ..models.base import utcnow
from ..models.user import LoginProviderLink
from .passwords import PASSWORD_POLICY_TEXT, satisfies_policy
from .tiers import ShownSubscription, TierState, subscriptions_of, tier_state

EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{2,31}$")
MAX_PASSWORD_CHARS = 1024

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def normalize_email(email: str) -> str:
    email = (email or "").strip().lower()
    if len(email) > 254 or not EMAIL.match(email):
        raise BadRequest("email is not a valid email address.")
    return email


def validate_username(username: str) -> str:
    username = (username or "").strip()
    if not USERNAME.match(username):
        raise BadRequest("username must be 3-32 characters of letters, digits, '_', '.' or '-', starting with a letter or digit.")
    return username


def validate_password(password: str) -> str:
    if len(password) > MAX_PASSWORD_CHARS:
        raise BadRequest(f"password must be at most {MAX_PASSWORD_CHARS} characters.")
    if not satisfies_policy(password):
        raise BadRequest(f"password must have {PASSWORD_POLICY_TEXT}.")
    return password


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(user: User | None, password: str) -> bool:
    """Constant work whether or not the user exists or has a password (no enumeration by timing)."""
    stored = user.password_hash if user is not None and user.password_hash else None
    try:
        _hasher.verify(stored or _DUMMY_HASH, password)
        return stored is not None
    except (VerificationError, InvalidHashError):
        return False


def find_by_email(domain: str, email: str) -> User | None:
    return User.objects(domain=domain, email=email).first()


def get_user(user_id: str) -> User | None:
    return User.objects(id=user_id).first() if user_id else None


def _default_username(email: str) -> str:
    base = re.sub(r"[^A-Za-z0-9_.-]", "", email.split("@", 1)[0])[:20]
    if len(base) < 3 or not base[0].isalnum():
        base = f"user{base}"[:20]
    return f"{base}{secrets.randbelow(10**6):06d}"


def create_user(domain: str, email: str, *, username: str | None = None, password: str | None = None,
                provider: LoginProviderLink | None = None, is_at_least_18_confirmed: bool = False,
                ref_list: list[str] | None = None, rs: str | None = None) -> User:
    """A new user of ``domain``; 409 when the email (or the chosen username) is taken."""
    email = normalize_email(email)
    if username is not None:
        username = validate_username(username)
    providers = [provider] if provider else []
    # An OTP or a provider's verified email proves the mailbox; a bare password proves nothing.
    email_verified = provider is not None
    if password is not None:
        validate_password(password)
        providers.append(LoginProviderLink(provider_type="internal", provider_id="Password"))
    for _ in range(5):
        name = username or _default_username(email)
        user = User(
            id=str(uuid.uuid4()), domain=domain, email=email, username=name, username_lower=name.lower(),
            password_hash=hash_password(password) if password is not None else None,
            email_verified=email_verified,
            is_at_least_18_confirmed=bool(is_at_least_18_confirmed), login_providers=providers,
            ref_list=[r[:2048] for r in (ref_list or [])][:50], rs=(rs or None) and rs[:256],
        )
        try:
            user.save(force_insert=True)
            return user
        except me.NotUniqueError:
            if find_by_email(domain, email) is not None:
                raise Conflict("An account with this email already exists.") from None
            if username is not None:
                raise Conflict(f"The username '{username}' is taken.") from None
            # a generated username collided: try another
    raise Conflict("Could not choose a free username; please pick one.")


def add_login_provider(user: User, provider_type: str, provider_id: str, external_id: str | None = None) -> None:
    """Record a sign-in method once (atomic: concurrent logins do not duplicate it)."""
    link = LoginProviderLink(provider_type=provider_type, provider_id=provider_id, user_id=external_id)
    already = {"$elemMatch": {"provider_id": provider_id, "user_id": external_id}}
    User.objects(__raw__={"_id": user.id, "login_providers": {"$not": already}}).update_one(push__login_providers=link)


def email_proven(user: User, keep_session_id: str | None) -> User:
    """The mailbox's owner has just proved it (OTP, magic link, a provider's verified email).

    An account whose email nobody had proved may have been opened by someone else with a
    password, waiting for the owner: that password is dropped and every other session of the
    account is signed out, so only the owner holds the account from now on.
    """
    if user.email_verified:
        return user
    claimed = User.objects(id=user.id, email_verified__ne=True).update_one(
        set__email_verified=True, set__password_hash=None, pull__login_providers__provider_id="Password",
        inc__auth_epoch=1, set__updated_date=utcnow())
    fresh = get_user(user.id) or user
    if claimed:
        revoke_other_sessions(fresh, keep_session_id)
    return fresh


# --- sessions ---------------------------------------------------------------------------


def bind_session(session: Session, user: User, is_at_least_18_confirmed: bool | None = None) -> User:
    """Sign ``user`` in on ``session``; an 18+ confirmation of the anonymous session carries over."""
    if user.is_disabled:
        raise Unauthorized("This account is disabled.")
    confirmed = bool(is_at_least_18_confirmed) or bool(session.is_at_least_18_confirmed)
    # ``user`` is the document read when the credential was checked: its epoch is the one
    # that credential was valid under.
    Session.objects(id=session.id).update_one(set__user_id=user.id, set__auth_epoch=user.auth_epoch or 0,
                                              set__updated_date=utcnow(),
                                              set__is_at_least_18_confirmed=confirmed or user.is_at_least_18_confirmed)
    session.user_id, session.auth_epoch = user.id, user.auth_epoch or 0
    if confirmed and not user.is_at_least_18_confirmed:
        User.objects(id=user.id).update_one(set__is_at_least_18_confirmed=True)
        user.is_at_least_18_confirmed = True
    return user


def sign_out(session: Session) -> bool:
    """Unbind the session from its user; False when no user was signed in on it."""
    return bool(Session.objects(id=session.id, user_id__ne=None).update_one(set__user_id=None, set__updated_date=utcnow()))


def revoke_other_sessions(user: User, keep_session_id: str | None) -> int:
    """Sign out every session of ``user`` but ``keep_session_id``, which moves to the user's
    current epoch (the caller bumped it with the credential change)."""
    epoch = User.objects(id=user.id).scalar("auth_epoch").first() or 0
    if keep_session_id:
        Session.objects(id=keep_session_id, user_id=user.id).update_one(set__auth_epoch=epoch)
    return Session.objects(user_id=user.id, id__ne=keep_session_id).update(set__user_id=None)


def remember_18_confirmation(session: Session, user: User | None, confirmed: bool) -> None:
    if not confirmed:
        return
    Session.objects(id=session.id).update_one(set__is_at_least_18_confirmed=True)
    session.is_at_least_18_confirmed = True
    if user is not None and not user.is_at_least_18_confirmed:
        User.objects(id=user.id).update_one(set__is_at_least_18_confirmed=True)
        user.is_at_least_18_confirmed = True


# --- views ------------------------------------------------------------------------------
# What the SelfUser and User schemas of ``api/users.py`` write: a user with what the request
# adds to it (session, tier, subscriptions, picture), read once here.


@dataclass(frozen=True)
class SelfUserView:
    """A session and its user (None: the anonymous session's view)."""

    session: Session
    user: User | None
    tier: TierState
    subscriptions: list[ShownSubscription]
    picture: str | None = None  # a Data URI ("" when none), only when asked for

    @property
    def is_at_least_18_confirmed(self) -> bool:
        return bool(self.user.is_at_least_18_confirmed if self.user else self.session.is_at_least_18_confirmed)


@dataclass(frozen=True)
class PublicUserView:
    user: User
    picture: str | None


@dataclass(frozen=True)
class AdminUserView:
    """A user with the extended fields admins see."""

    user: User
    tier: TierState
    subscriptions: list[ShownSubscription]


def self_user(session: Session, user: User | None, *, resources=None, with_picture: bool = False,
              extended_price: bool = False) -> SelfUserView:
    """The contract's SelfUser of ``session``."""
    picture = None
    if with_picture and user is not None:
        from . import profile_pictures

        picture = profile_pictures.picture_data_uri(resources, user) or ""
    return SelfUserView(session, user, tier_state(user), subscriptions_of(user, extended_price) if user else [],
                        picture)


def get_self(resources, session: Session, user: User | None, *, confirm_18: bool, with_picture: bool,
             extended_price: bool) -> SelfUserView:
    """getSelfUser: an 18+ confirmation given with it is remembered first."""
    remember_18_confirmation(session, user, confirm_18)
    return self_user(session, user, resources=resources, with_picture=with_picture, extended_price=extended_price)


def admin_user(user: User) -> AdminUserView:
    return AdminUserView(user, tier_state(user), subscriptions_of(user))


def look_up(resources, domain: str, *, as_admin: bool, user_id: str | None, email: str | None,
            username: str | None) -> PublicUserView | AdminUserView:
    """getUser: admins look up by id, email or username, deleted users included, and get the
    extended view; anyone else gives an id and gets the public profile of a live user."""
    from ..errors import NotFound
    from . import profile_pictures

    if as_admin:
        return admin_user(find_target(domain, user_id, email, username))
    if email or username:
        raise BadRequest("Only admins can look users up by email or username; give userID.")
    if not user_id:
        raise BadRequest("userID is required.")
    user = get_user(user_id)
    if user is None or user.is_disabled or user.domain != domain:
        raise NotFound("No such user.")
    return PublicUserView(user, profile_pictures.picture_data_uri(resources, user))


# --- changes by the user ----------------------------------------------------------------


def check_username_change(user: User, username: str) -> str:
    """Every refusal a username change can meet, checked before anything is written."""
    from . import abuse
    from ..errors import Forbidden

    username = validate_username(username)
    if username == user.username:
        return username
    if not abuse.may_change_profile(user):
        raise Forbidden("Your account may not change its username.")
    if User.objects(domain=user.domain, username_lower=username.lower(), id__ne=user.id).only("id").first():
        raise Conflict(f"The username '{username}' is taken.")
    return username


def change_username(user: User, username: str) -> None:
    username = check_username_change(user, username)
    if username == user.username:
        return
    try:
        User.objects(id=user.id).update_one(set__username=username, set__username_lower=username.lower(),
                                            set__updated_date=utcnow())
    except me.NotUniqueError:
        raise Conflict(f"The username '{username}' is taken.") from None
    user.username, user.username_lower = username, username.lower()


def change_password(user: User, password: str, keep_session_id: str) -> None:
    """New password; every other session of the user is signed out."""
    validate_password(password)
    User.objects(id=user.id).update_one(set__password_hash=hash_password(password), inc__auth_epoch=1,
                                        set__updated_date=utcnow())
    add_login_provider(user, "internal", "Password")
    revoke_other_sessions(user, keep_session_id)


def change_email(resources, user: User, new_email: str, otp: str | None) -> None:
    """A new email needs an OTP requested for the new address (requestOTP with signUp), so
    the user proves the mailbox before it becomes their sign-in; the old address is archived."""
    from ..models.user import ArchivedEmail
    from . import otp as otp_service

    new_email = normalize_email(new_email)
    if new_email == user.email:
        raise BadRequest("The new email is the current one.")
    if not otp:
        raise BadRequest("otp is required to change the email: request one for the new address with signUp set to true.")
    if find_by_email(user.domain, new_email) is not None:
        raise Conflict("Another account uses this email.")
    otp_service.consume(resources, user.domain, new_email, otp, require_sign_up=True)
    try:
        changed = User.objects(id=user.id, email=user.email).update_one(
            set__email=new_email, push__archived_emails=ArchivedEmail(email=user.email), set__updated_date=utcnow())
    except me.NotUniqueError:
        raise Conflict("Another account uses this email.") from None
    if not changed:
        raise Conflict("The email was changed by another request; try again.")
    # The OTP proved the new mailbox: the account keeps its password, since its holder
    # is the one who proved it.
    User.objects(id=user.id).update_one(set__email_verified=True)
    user.email, user.email_verified = new_email, True


def set_self_properties(resources, session: Session, user: User, *, username: str | None = None,
                        password: str | None = None, email: str | None = None, otp: str | None = None,
                        confirm_18: bool = False) -> SelfUserView:
    """setSelfUserProperties. Everything is validated before anything changes, so a refusal
    changes nothing; a new password signs out every other session."""
    if username is not None:
        check_username_change(user, username)
    if password is not None:
        validate_password(password)
    if email is not None:
        change_email(resources, user, email, otp)
    if username is not None:
        change_username(user, username)
    if password is not None:
        change_password(user, password, keep_session_id=session.id)
    remember_18_confirmation(session, user, confirm_18)
    return self_user(session, get_user(user.id))


# --- lookups and admin ------------------------------------------------------------------


def find_target(domain: str, user_id: str | None = None, email: str | None = None, username: str | None = None) -> User:
    """The user an admin endpoint targets (deleted users included); 404 when none."""
    from ..errors import NotFound

    if not (user_id or email or username):
        raise BadRequest("Give userID or email.")
    query = {}
    if user_id:
        query["id"] = user_id
    if email:
        query.update(domain=domain, email=normalize_email(email))
    if username:
        query.update(domain=domain, username_lower=username.strip().lower())
    user = User.objects(**query).first()
    if user is None:
        raise NotFound("No such user.")
    return user


def delete_user(user: User, delete_items: bool = False) -> bool:
    """Soft delete: disabled, dated, signed out everywhere; the Items too when asked. Nothing
    of the account stays public: its Items are unpublished and its public folders deleted
    (kept Items stay in the library, for admins)."""
    changed = User.objects(id=user.id, is_disabled=False).update_one(
        set__is_disabled=True, set__deleted_date=utcnow(), set__updated_date=utcnow())
    Session.objects(user_id=user.id).update(set__user_id=None)
    from . import approval, folders

    approval.unpublish_items_of_user(user.id)
    folders.delete_public_folders_of_user(user)
    if delete_items:
        from . import items

        items.delete_all_items_of_user(user.id)
    return bool(changed)


def set_additional_information(user: User, info: str | None) -> str | None:
    """An admin's notes on a user; empty clears them."""
    info = info or None
    User.objects(id=user.id).update_one(set__additional_information=info, set__updated_date=utcnow())
    user.additional_information = info
    return info


def set_abuse_level(user: User, level) -> int:
    """Levels 0-9; anything else leaves the level as it is and reads it."""
    if isinstance(level, int) and not isinstance(level, bool) and 0 <= level <= 9:
        User.objects(id=user.id).update_one(set__abuse=level, set__updated_date=utcnow())
        return level
    return user.abuse or 0
