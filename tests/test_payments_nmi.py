"""nmi: card subscriptions through a fake Direct Post API, webhooks signed with
Webhook-Signature (HMAC-SHA256 of nonce.body), renewal, cancellation, refund."""
from __future__ import annotations

import datetime as dt
import json
from urllib.parse import quote

import pytest

from aimg_app.models.base import utcnow
from tests.conftest import assert_error, assert_ok, sign_up
from tests.support.billing import create_plan, self_user
from tests.support.fake_vendors import FakeNmi

SECURITY, SIGNING = "nmi-security-key", "nmi-signing-key"


@pytest.fixture(scope="module")
def fake():
    server = FakeNmi(SECURITY, SIGNING).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def app(make_app, fake):
    return make_app(plugin_settings={"nmi": {"security_key": SECURITY, "signing_key": SIGNING, "api_base": fake.url,
                                             "plans": {"nmi-monthly": "plan-1"}}})


@pytest.fixture(scope="module", autouse=True)
def monthly_plan(app):
    create_plan(app.test_client(), tier=1, providers=("nmi",), product_id="nmi-monthly")


CARD = {"merchantProcessor": "nmi", "productID": "nmi-monthly", "cardNumber": "4111111111111111",
        "cardHolderName": "Alan Turing", "expirationMonth": 6, "expirationYear": utcnow().year + 3,
        "securityCode": "123"}


def test_subscribe_renew_cancel_refund(client, fake):
    user = sign_up(client)
    assert_ok(client.post("/processCardSubscription", json=CARD, headers=user["headers"]))
    [sub_id] = list(fake.subscriptions)
    me = self_user(client, user)
    assert me["tier"] == 1 and me["subscriptions"][0]["transactionID"] == sub_id

    next_charge = (dt.date.today() + dt.timedelta(days=60)).strftime("%Y%m%d")
    body, headers = fake.webhook("transaction.sale.success", {"transaction_id": "t-renew", "subscription": {
        "subscription_id": sub_id, "next_charge_date": next_charge}})
    assert_ok(client.post("/webhooks/nmi", data=body, headers=headers))
    assert self_user(client, user)["tierExpiration"][:10] == dt.datetime.strptime(next_charge, "%Y%m%d").date().isoformat()

    assert assert_ok(client.delete("/cancelMembership", headers=user["headers"]))["payload"]["success"]
    assert fake.subscriptions[sub_id]["status"] == "deleted"

    body, headers = fake.webhook("transaction.refund.success", {"transaction_id": "r-1",
                                                                "original_transaction_id": "t-renew"})
    assert_ok(client.post("/webhooks/nmi", data=body, headers=headers))
    assert self_user(client, user)["tier"] == 0


def test_forged_nmi_webhook_is_refused(client, fake):
    body, headers = fake.webhook("transaction.refund.success", {"original_transaction_id": "x"}, key="wrong-key")
    assert_error(client.post("/webhooks/nmi", data=body, headers=headers), 400)
    assert_error(client.post("/webhooks/nmi", data=body, headers={"Content-Type": "application/json"}), 400)


def test_a_notification_forged_from_a_card_page_link_is_refused(client, fake):
    user = sign_up(client)
    plans = assert_ok(client.get(f"/getBillingPlans?paymentURL={quote('http://localhost:3000/card', safe='')}",
                                 headers=user["headers"]))["payload"]
    [link] = [p for p in plans if p["prices"][0]["productID"] == "nmi-monthly"][0]["prices"][0]["paymentProviders"]
    body, genuine = fake.webhook("transaction.sale.success", {"transaction_id": "t-forged", "subscription": {
        "subscription_id": "sub-forged", "next_charge_date": "20991231"}})
    for header in (f"t={link['paymentUrl']},s={link['paymentUrl']}", "t=nmi-monthly,s=" + "0" * 64,
                   genuine["Webhook-Signature"].replace("t=", "t=0")):
        assert_error(client.post("/webhooks/nmi", data=body, headers={"Webhook-Signature": header,
                                                                      "Content-Type": "application/json"}), 400)
    unsigned_fields, headers = fake.webhook("transaction.sale.success", {})
    stripped = json.dumps({k: v for k, v in json.loads(unsigned_fields).items() if k != "event_id"})
    nonce = headers["Webhook-Signature"].split(",")[0][2:]
    resigned = fake.webhook_signature(stripped, nonce)
    assert_error(client.post("/webhooks/nmi", data=stripped, headers={"Webhook-Signature": resigned}), 400, "malformed")
    assert self_user(client, user)["tier"] == 0


def test_a_renewal_that_names_no_next_charge_pays_one_period_not_for_ever(client, fake):
    user = sign_up(client)
    assert_ok(client.post("/processCardSubscription", json=CARD, headers=user["headers"]))
    sub_id = self_user(client, user)["subscriptions"][0]["transactionID"]
    body, headers = fake.webhook("transaction.sale.success", {"transaction_id": f"t-{sub_id}",
                                                              "subscription_id": sub_id})
    assert_ok(client.post("/webhooks/nmi", data=body, headers=headers))
    me = self_user(client, user)
    assert me["tier"] == 1 and me.get("tierExpiration"), me
    assert me["tierExpiration"][:10] <= (dt.date.today() + dt.timedelta(days=62)).isoformat()


@pytest.mark.parametrize("event_body", [
    ["not", "an", "object"],
    {"action": "not an object"},
    {"action": {"date": "yesterday"}},
    {"subscription": {"subscription_id": "s-1", "next_charge_date": "soon"}},
])
def test_a_signed_but_malformed_delivery_is_refused_not_a_crash(client, fake, event_body):
    """Bad vendor input is the plugin API's MalformedWebhook (400, recorded), never a 500."""
    body = json.dumps({"event_id": "e-malformed", "event_type": "transaction.sale.success",
                       "event_body": event_body})
    signature = fake.webhook_signature(body, "nonce-1")
    assert_error(client.post("/webhooks/nmi", data=body, headers={"Webhook-Signature": signature}), 400, "malformed")
