"""The contract's API2: User Management chapter."""
from __future__ import annotations

from .. import context
from ..envelope import ok
from ..errors import Forbidden
from ..models.base import iso
from ..services.tiers import tier_of
from .base import Blueprint, envelope

blp = Blueprint("api2_users", __name__, url_prefix="/2", description="API2: User Management.")


@blp.route("/getUserSession", methods=["GET"])
@blp.response(200, envelope("UserSessionResponse"))
def get_user_session():
    """The API2 session and user of the signed-in caller (PRO tier above 0 only)."""
    context.require_session_header()
    user = context.current_user()
    if tier_of(user) <= 0:
        raise Forbidden("API2 needs a PRO tier above 0.")
    session = context.current_session()
    return ok({
        "userSession": {"_id": session.id, "domain": session.domain,
                        "isAtLeast18Confirmed": bool(session.is_at_least_18_confirmed or user.is_at_least_18_confirmed),
                        "updatedDate": iso(session.updated_date), "userID": user.id},
        "user": {"_id": user.id, "email": user.email, "username": user.username, "domain": user.domain,
                 "createdDate": iso(user.created_date), "isDisabled": bool(user.is_disabled),
                 "roles": list(user.roles or []), "flaggedImagesCount": user.flagged_images_count},
    })
