"""ccbill: FlexForms links with formDigest, webhooks accepted only from CCBill's networks."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import assert_error, assert_ok, sign_up
from tests.support.billing import create_plan, self_user

CCBILL_IP = "64.38.240.17"


@pytest.fixture(scope="module")
def app(make_app):
    return make_app(plugin_settings={"ccbill": {"client_accnum": "900000", "client_subacc": "0001",
                                                "flexform_id": "ff-123", "salt": "pepper"}})


def post(client, event_type, data, ip=CCBILL_IP, as_json=True):
    kwargs = {"data": json.dumps(data), "content_type": "application/json"} if as_json else {"data": data}
    return client.post(f"/webhooks/ccbill?eventType={event_type}", environ_base={"REMOTE_ADDR": ip}, **kwargs)


def mst(days=0.0):
    return (dt.datetime.now(dt.UTC) - dt.timedelta(hours=7) + dt.timedelta(days=days)).strftime("%Y-%m-%d %H:%M:%S")


def test_flexform_link_sale_renewal_cancel_refund(client):
    user = sign_up(client)
    product = create_plan(client, tier=2, providers=("ccbill",), value=19.99)["prices"][0]["productID"]
    plans = assert_ok(client.get("/getBillingPlans", headers=user["headers"]))["payload"]
    [link] = [p for p in plans if p["prices"][0]["productID"] == product][0]["prices"][0]["paymentProviders"]
    query = {k: v[0] for k, v in parse_qs(urlsplit(link["paymentUrl"]).query).items()}
    assert link["paymentUrl"].startswith("https://api.ccbill.com/wap-frontflex/flexforms/ff-123?")
    assert query["X-userId"] == user["user_id"] and query["currencyCode"] == "840"
    expected = hashlib.md5(b"19.993019.993099840pepper").hexdigest()
    assert query["formDigest"] == expected

    sale = {"subscriptionId": "0123456789", "transactionId": "t1", "timestamp": mst(-0.01), "email": user["email"],
            "X-userId": user["user_id"], "X-productId": product, "nextRenewalDate": (dt.date.today() + dt.timedelta(days=30)).isoformat(),
            "clientAccnum": "900000"}
    assert_ok(post(client, "NewSaleSuccess", sale))
    assert self_user(client, user)["tier"] == 2
    assert assert_ok(post(client, "NewSaleSuccess", sale))["payload"]["outcome"] == "duplicate"
    renewal = {"subscriptionId": "0123456789", "transactionId": "t2", "timestamp": mst(-0.005),
               "nextRenewalDate": (dt.date.today() + dt.timedelta(days=60)).isoformat()}
    assert_ok(post(client, "RenewalSuccess", renewal, as_json=False))
    assert self_user(client, user)["tierExpiration"][:10] == (dt.date.today() + dt.timedelta(days=60)).isoformat()
    assert_ok(post(client, "Cancellation", {"subscriptionId": "0123456789", "timestamp": mst(-0.004)}))
    me = self_user(client, user)
    assert me["tier"] == 2 and "nextBillingDate" not in me["subscriptions"][0]
    assert_ok(post(client, "Refund", {"subscriptionId": "0123456789", "transactionId": "t3", "timestamp": mst(-0.003)}))
    assert self_user(client, user)["tier"] == 0


def test_posts_from_elsewhere_are_refused(client):
    user = sign_up(client)
    product = create_plan(client, tier=1, providers=("ccbill",))["prices"][0]["productID"]
    sale = {"subscriptionId": "999", "timestamp": mst(), "X-userId": user["user_id"], "X-productId": product,
            "nextRenewalDate": (dt.date.today() + dt.timedelta(days=30)).isoformat()}
    assert_error(post(client, "NewSaleSuccess", sale, ip="203.0.113.9"), 400)
    assert_error(post(client, "NewSaleSuccess", sale, ip="127.0.0.1"), 400)
    assert self_user(client, user)["tier"] == 0


def test_a_malformed_post_is_refused_not_a_crash(client):
    response = client.post("/webhooks/ccbill?eventType=NewSaleSuccess", data="[1, 2]", content_type="application/json",
                           environ_base={"REMOTE_ADDR": CCBILL_IP})
    assert_error(response, 400, "malformed")
    response = client.post("/webhooks/ccbill?eventType=NewSaleSuccess", data={"timestamp": "yesterday"},
                           environ_base={"REMOTE_ADDR": CCBILL_IP})
    assert_error(response, 400)
