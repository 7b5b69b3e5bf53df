"""References that bind a payment to the account that started its checkout.

A processor carries ``Checkout.reference`` through its vendor's own metadata or custom field
and reads it back from the webhook; only a reference we issued, for that processor and site,
names the payer. It is signed (itsdangerous, a key derived from ``AIMG_SECRET_KEY`` per
processor), never encrypted: it holds only ids, and the buyer may see it in their link.
It does not expire: it identifies an account, it authorises nothing (a copied reference can
only pay for its own account).
"""
from __future__ import annotations

from itsdangerous import BadSignature, URLSafeSerializer

from ..plugin_api import PayerReference


def _serializer(secret: bytes, processor: str) -> URLSafeSerializer:
    return URLSafeSerializer(secret, salt=f"aimg:payer-reference:{processor}")


def issue(secret: bytes, processor: str, domain: str, user_id: str, product_id: str) -> str:
    return _serializer(secret, processor).dumps([domain, user_id, product_id])


def read(secret: bytes, processor: str, domain: str, text) -> PayerReference | None:
    if not isinstance(text, str) or not text or len(text) > 1000:
        return None
    try:
        data = _serializer(secret, processor).loads(text)
    except BadSignature:
        return None
    if not (isinstance(data, list) and len(data) == 3 and all(isinstance(v, str) for v in data)) or data[0] != domain:
        return None
    return PayerReference(user_id=data[1], product_id=data[2])
