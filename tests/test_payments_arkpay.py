"""arkpay end to end: processCardSubscription charges through a fake ArkPay Merchant API
(signed requests); card data reaches no log, document or row; signed refund webhooks."""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from urllib.parse import quote

import pytest

from aimg_app.models.base import utcnow
from tests.conftest import assert_error, assert_ok, sign_up
from tests.support.billing import assert_no_card_data, create_plan, self_user
from tests.support.fake_vendors import FakeArkPay

API_KEY, SECRET = "ark-key", "ark-secret"


@pytest.fixture(scope="module")
def fake():
    server = FakeArkPay(API_KEY, SECRET).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def app(make_app, fake):
    return make_app(plugin_settings={"arkpay": {"api_key": API_KEY, "secret_key": SECRET,
                                                "api_base": f"{fake.url}/api/v1"}})


CARD = {"merchantProcessor": "arkpay", "cardNumber": "5555-5555-5555-4444", "cardHolderName": "Grace Hopper",
        "expirationMonth": 1, "expirationYear": (utcnow().year + 1) % 100, "securityCode": "314", "country": "US",
        "stateOrProvince": "NY", "street": "1 Main St", "city": "New York", "postalCode": "10001"}


def test_card_subscription_through_arkpay(app, client, fake, json_log):
    user = sign_up(client)
    product = create_plan(client, tier=2, providers=("arkpay",))["prices"][0]["productID"]
    page = quote("http://localhost:3000/card")
    plans = assert_ok(client.get(f"/getBillingPlans?paymentURL={page}"))["payload"]
    [link] = [p for p in plans if p["prices"][0]["productID"] == product][0]["prices"][0]["paymentProviders"]
    assert link["paymentUrl"] == f"http://localhost:3000/card?productID={product}&merchantProcessor=arkpay"

    declined = {**CARD, "productID": product, "cardNumber": "4000 0000 0000 0002"}
    assert_error(client.post("/processCardSubscription", json=declined, headers=user["headers"]), 400, "declined")
    assert self_user(client, user)["tier"] == 0

    result = assert_ok(client.post("/processCardSubscription", json={**CARD, "productID": product},
                                   headers=user["headers"]))["payload"]
    assert result["success"] is True
    me = self_user(client, user)
    assert me["tier"] == 2 and me["merchantProcessor"] == "arkpay"
    assert "nextBillingDate" not in me["subscriptions"][0]  # one period, no automatic renewal
    [paid] = [t for t in fake.transactions.values() if t["status"] == "COMPLETED"]
    assert paid["externalCustomerId"] == user["user_id"] and paid["amount"] == 9.99
    pay_call = fake.calls("POST", f"/api/v1/merchant/api/transactions/{paid['id']}/pay")[0].json
    assert pay_call["cardNumber"] == "5555555555554444" and pay_call["cardExpiryDate"].startswith("01/")

    body, headers = fake.webhook(paid["id"], "REFUNDED", dt.datetime.now(dt.UTC).isoformat())
    assert_ok(client.post("/webhooks/arkpay", data=body, headers=headers))
    assert self_user(client, user)["tier"] == 0
    assert_no_card_data(app, json_log.getvalue(), ["5555555555554444", "5555-5555-5555-4444", "4000000000000002"],
                        ["314"])


def test_forged_arkpay_webhook_is_refused(client, fake):
    body, headers = fake.webhook("tx-1", "REFUNDED", dt.datetime.now(dt.UTC).isoformat())
    assert_error(client.post("/webhooks/arkpay", data=body, headers={**headers, "Signature": "0" * 64}), 400)
    assert_error(client.post("/webhooks/arkpay", data=body.replace("tx-1", "tx-2"), headers=headers), 400)


def test_a_notification_forged_from_a_card_page_link_is_refused(client, fake):
    product = create_plan(client, tier=2, providers=("arkpay",))["prices"][0]["productID"]
    plans = assert_ok(client.get(f"/getBillingPlans?paymentURL={quote('http://localhost:3000/card', safe='')}"))["payload"]
    [link] = [p for p in plans if p["prices"][0]["productID"] == product][0]["prices"][0]["paymentProviders"]
    body, headers = fake.webhook("tx-link", "REFUNDED", dt.datetime.now(dt.UTC).isoformat())
    for signature in (link["paymentUrl"], product, hmac.new(product.encode(), body.encode(), hashlib.sha256).hexdigest()):
        assert_error(client.post("/webhooks/arkpay", data=body, headers={**headers, "Signature": signature}), 400)
    statusless = json.dumps({"transaction": {"id": "tx-link"}, "createdAt": dt.datetime.now(dt.UTC).isoformat()})
    signature = hmac.new(SECRET.encode(), statusless.encode(), hashlib.sha256).hexdigest()
    assert_error(client.post("/webhooks/arkpay", data=statusless, headers={"Signature": signature}), 400, "malformed")


def test_a_code_only_plan_cannot_be_bought_by_product_id_alone(client, fake):
    """The attack: buy a special (code-only, e.g. discounted) plan knowing just its productID."""
    user = sign_up(client)
    special = create_plan(client, tier=3, providers=("arkpay",), code="VIP-ONLY", value=1.0)["prices"][0]["productID"]
    assert special not in str(assert_ok(client.get("/getBillingPlans", headers=user["headers"]))["payload"])
    for code in (None, "", "WRONG", "vip-only"):
        body = {**CARD, "productID": special, **({"code": code} if code is not None else {})}
        assert_error(client.post("/processCardSubscription", json=body, headers=user["headers"]), 404, "productID")
        assert_error(client.post("/processCardSubscription", json={**body, "billingEmail": user["email"]}), 404)
    assert self_user(client, user)["tier"] == 0
    assert not [t for t in fake.transactions.values() if t.get("externalCustomerId") == user["user_id"]]
    # with the code it was offered with, it is bought as any other plan
    listed = assert_ok(client.get("/getBillingPlans", query_string={"code": "VIP-ONLY"}, headers=user["headers"]))
    assert special in str(listed["payload"])
    assert assert_ok(client.post("/processCardSubscription", json={**CARD, "productID": special, "code": "VIP-ONLY"},
                                 headers=user["headers"]))["payload"]["success"] is True
    assert self_user(client, user)["tier"] == 3
