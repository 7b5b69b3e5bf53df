"""Signed short-lived tokens and encryption at rest, both keyed by the deployment's secret."""
from __future__ import annotations

import base64
import hashlib
import json

from cryptography.fernet import Fernet, InvalidToken
from itsdangerous import BadSignature, URLSafeTimedSerializer

from ..errors import BadRequest


def sign(secret: bytes, purpose: str, data: dict) -> str:
    return URLSafeTimedSerializer(secret, salt=f"aimg:{purpose}").dumps(data)


def unsign(secret: bytes, purpose: str, token: str, max_age_s: int) -> dict:
    try:
        return URLSafeTimedSerializer(secret, salt=f"aimg:{purpose}").loads(token, max_age=max_age_s)
    except BadSignature:  # also SignatureExpired
        raise BadRequest("This link is invalid or has expired.") from None


def _fernet(secret: bytes, purpose: str) -> Fernet:
    key = hashlib.sha256(secret + b"\x00" + purpose.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt_json(secret: bytes, purpose: str, value) -> str:
    return _fernet(secret, purpose).encrypt(json.dumps(value).encode()).decode()


def decrypt_json(secret: bytes, purpose: str, token: str):
    """The stored value, or None when it cannot be decrypted (the secret changed)."""
    try:
        return json.loads(_fernet(secret, purpose).decrypt(token.encode()))
    except (InvalidToken, ValueError):
        return None
