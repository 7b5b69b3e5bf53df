"""The contract's User Management chapter (the identity issue fills in the rest)."""
from __future__ import annotations

from marshmallow import fields

from ..envelope import ok
from ..services.passwords import generate_strong_password
from .base import Blueprint, envelope

blp = Blueprint("users", __name__, url_prefix="/", description="User Management.")


@blp.route("/generateStrongPassword", methods=["GET"])
@blp.response(200, envelope("StrongPasswordResponse", fields.String()))
def generate_password():
    """A random password that satisfies the password policy (a front-end helper)."""
    return ok(generate_strong_password())
