"""helio: Pay Link links and webhooks authenticated with the shared bearer token."""
from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest

from tests.conftest import assert_error, assert_ok, sign_up
from tests.support.billing import create_plan, self_user

TOKEN = "helio-shared-token"


@pytest.fixture(scope="module")
def app(make_app):
    return make_app(plugin_settings={"helio": {"shared_token": TOKEN, "paylinks": {"helio-1": {"id": "65dc9f", "days": 30}}}})


def event(kind, email, tx_id=None):
    tx = {"id": tx_id or uuid.uuid4().hex[:24], "paylinkId": "65dc9f", "createdAt": dt.datetime.now(dt.UTC).isoformat(),
          "paymentType": "PAYLINK", "meta": {"amount": "9900000", "senderPK": "Er3Rw", "transactionStatus": "SUCCESS",
                                              "customerDetails": {"email": email}}}
    return json.dumps({"event": kind, "transaction": json.dumps(tx), "transactionObject": tx})


@pytest.fixture(scope="module", autouse=True)
def plan(app):
    create_plan(app.test_client(), tier=2, providers=("helio",), product_id="helio-1")


def test_paylink_payment_and_end(client):
    user = sign_up(client)
    plans = assert_ok(client.get("/getBillingPlans"))["payload"]
    [link] = [p for p in plans if p["prices"][0]["productID"] == "helio-1"][0]["prices"][0]["paymentProviders"]
    assert link["paymentUrl"] == "https://app.hel.io/pay/65dc9f" and link["paymentLabel"] == "Pay with Crypto (Helio)"
    body = event("CREATED", user["email"], "tx-helio-1")
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    assert_ok(client.post("/webhooks/helio", data=body, headers=headers))
    me = self_user(client, user)
    assert me["tier"] == 2 and me["merchantProcessor"] == "helio"
    assert assert_ok(client.post("/webhooks/helio", data=body, headers=headers))["payload"]["outcome"] == "duplicate"
    assert_ok(client.post("/webhooks/helio", data=event("ENDED", user["email"], "tx-helio-1"), headers=headers))
    assert self_user(client, user)["tier"] == 0


def test_a_wrong_token_is_refused(client):
    user = sign_up(client)
    body = event("CREATED", user["email"])
    assert_error(client.post("/webhooks/helio", data=body, headers={"Authorization": "Bearer guess"}), 400)
    assert_error(client.post("/webhooks/helio", data=body), 400)
    assert self_user(client, user)["tier"] == 0


def test_a_notification_forged_from_a_pay_link_is_refused(client):
    user = sign_up(client)
    plans = assert_ok(client.get("/getBillingPlans", headers=user["headers"]))["payload"]
    [link] = [p for p in plans if p["prices"][0]["productID"] == "helio-1"][0]["prices"][0]["paymentProviders"]
    body = event("CREATED", user["email"])
    for token in (link["paymentUrl"], link["paymentUrl"].rsplit("/", 1)[1]):
        assert_error(client.post("/webhooks/helio", data=body, headers={"Authorization": f"Bearer {token}"}), 400)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    unstated = json.loads(body)
    del unstated["transactionObject"]["meta"]["transactionStatus"]
    assert_error(client.post("/webhooks/helio", data=json.dumps(unstated), headers=headers), 400, "malformed")
    failed = json.loads(body)
    failed["transactionObject"]["meta"]["transactionStatus"] = "FAILED"
    assert_ok(client.post("/webhooks/helio", data=json.dumps(failed), headers=headers))
    assert_error(client.post("/webhooks/helio", data=json.dumps({**failed, "event": "GIFTED"}), headers=headers), 400)
    assert self_user(client, user)["tier"] == 0
