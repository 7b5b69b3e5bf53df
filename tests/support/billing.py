"""Helpers shared by the billing tests: plans, ledger rows, mails, vendor fakes' plumbing."""
from __future__ import annotations

import email
import email.policy
import json
import os
import time
import uuid
from pathlib import Path

from tests.conftest import ADMIN_HEADERS, assert_ok


def create_plan(client, *, tier=1, providers=("other",), code=None, product_id=None, value=9.99, period="monthly",
                **extra) -> dict:
    price = {"type": "base", "period": period, "currency": "USD", "currencyType": "fiat", "value": value,
             "paymentProviders": [{"paymentProvider": p} for p in providers]}
    if product_id:
        price["productID"] = product_id
    body = {"name": f"Plan {uuid.uuid4().hex[:6]}", "tier": tier, "prices": [price], **extra}
    if code:
        body["code"] = code
    return assert_ok(client.post("/createBillingPlan", json=body, headers=ADMIN_HEADERS))["payload"]


def self_user(client, user, extended=False) -> dict:
    query = "?extendedPriceInfo=true" if extended else ""
    return assert_ok(client.get(f"/getSelfUser{query}", headers=user["headers"]))["payload"]


def ledger_rows(app, processor: str) -> list[dict]:
    with app.extensions["aimg"].pg.connection() as conn:
        cur = conn.execute("SELECT event_id, event_type, status, detail, payload FROM payment_events "
                           "WHERE processor = %s ORDER BY id", (processor,))
        names = [c.name for c in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]


def mails_to(services, address: str, timeout_s: float = 5.0) -> list[email.message.Message]:
    """The messages the embedded SMTP sink (``services`` fixture) received for ``address``."""
    maildir = Path(services.get("AIMG_SMTP_MAILDIR") or os.environ.get("AIMG_SMTP_MAILDIR") or "")
    deadline = time.monotonic() + timeout_s
    while True:
        found = []
        for path in sorted(maildir.glob("*.eml")) if maildir.is_dir() else []:
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if address.lower() in (message.get("To") or "").lower():
                found.append(message)
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def body_text(message) -> str:
    part = message.get_body(("plain",)) if hasattr(message, "get_body") else None
    if part is not None:
        return part.get_content()
    payload = message.get_payload(decode=True)
    return payload.decode() if isinstance(payload, bytes) else str(message.get_payload())


def post_test_webhook(client, event_id: str, events: list[dict], token="test-token"):
    return client.post("/webhooks/other", data=json.dumps({"id": event_id, "events": events}),
                       headers={"X-Test-Token": token, "Content-Type": "application/json"})


def assert_no_card_data(app, log_text, numbers, cvvs):
    """No card number or CVV in the logs, any MongoDB document or any ledger/log row."""
    from mongoengine.connection import get_db

    db = get_db()
    dumps = [log_text]
    for name in db.list_collection_names():
        dumps.extend(str(doc) for doc in db[name].find())
    with app.extensions["aimg"].pg.connection() as conn:
        dumps.extend(str(row) for row in conn.execute("SELECT * FROM payment_events").fetchall())
        dumps.extend(str(row) for row in conn.execute("SELECT * FROM log_entries").fetchall())
    text = "\n".join(dumps)
    for secret in numbers:
        assert secret not in text
    for cvv in cvvs:
        assert f'"{cvv}"' not in text and f"'{cvv}'" not in text and f"={cvv}" not in text
