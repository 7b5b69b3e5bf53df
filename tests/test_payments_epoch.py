"""epoch: join links and postbacks authenticated by epoch_digest (HMAC-MD5 of the sorted
parameters); the answer is the plain text OK."""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from tests.conftest import assert_error, assert_ok, sign_up
from tests.support.billing import create_plan, self_user

KEY = "epoch-hmac-key"


@pytest.fixture(scope="module")
def app(make_app):
    return make_app(plugin_settings={"epoch": {"hmac_key": KEY, "co_code": "abc", "pi_codes": {"ep-1": "PI123"}}})


def digest(params, key=KEY):
    text = "".join(f"{k}{params[k]}" for k in sorted(params))
    return hmac.new(key.encode(), text.encode(), hashlib.md5).hexdigest()


def postback(client, params, key=KEY, method="get"):
    signed = {**params, "epoch_digest": digest(params, key)}
    if method == "get":
        return client.get(f"/webhooks/epoch?{urlencode(signed)}")
    return client.post("/webhooks/epoch", data=signed)


def stamp(days=0.0):
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).strftime("%Y-%m-%d %H:%M:%S")


def test_join_initial_rebill_cancel_chargeback(client):
    user = sign_up(client)
    create_plan(client, tier=1, providers=("epoch",), product_id="ep-1")
    plans = assert_ok(client.get("/getBillingPlans", headers=user["headers"]))["payload"]
    [link] = [p for p in plans if p["prices"][0]["productID"] == "ep-1"][0]["prices"][0]["paymentProviders"]
    query = {k: v[0] for k, v in parse_qs(urlsplit(link["paymentUrl"]).query).items()}
    assert query["pi_code"] == "PI123" and query["x_userid"] == user["user_id"]
    assert query.pop("epoch_digest") == digest(query)

    initial = {"ans": "YGOODTEST", "trans_type": "I", "member_id": "m77", "transaction_id": "tx1", "x_userid": user["user_id"],
               "x_productid": "ep-1", "email": user["email"], "trans_datetime": stamp(-0.01),
               "next_rebill": (dt.date.today() + dt.timedelta(days=30)).isoformat()}
    response = postback(client, initial)
    assert response.status_code == 200 and response.get_data(as_text=True) == "OK"
    assert self_user(client, user)["tier"] == 1
    rebill = {"ans": "Y", "trans_type": "R", "member_id": "m77", "transaction_id": "tx2", "trans_datetime": stamp(-0.005),
              "next_rebill": (dt.date.today() + dt.timedelta(days=60)).isoformat()}
    assert postback(client, rebill, method="post").status_code == 200
    assert self_user(client, user)["tierExpiration"][:10] == (dt.date.today() + dt.timedelta(days=60)).isoformat()
    assert postback(client, {"trans_type": "C", "member_id": "m77", "transaction_id": "tx3",
                             "trans_datetime": stamp(-0.004)}).status_code == 200
    assert "nextBillingDate" not in self_user(client, user)["subscriptions"][0]
    assert postback(client, {"trans_type": "CB", "member_id": "m77", "transaction_id": "tx4",
                             "trans_datetime": stamp(-0.003)}).status_code == 200
    assert self_user(client, user)["tier"] == 0


def test_a_bad_digest_is_refused(client):
    user = sign_up(client)
    params = {"ans": "Y", "trans_type": "I", "member_id": "m9", "transaction_id": "tx9", "x_userid": user["user_id"],
              "x_productid": "ep-1"}
    assert_error(postback(client, params, key="wrong"), 400)
    assert_error(client.get(f"/webhooks/epoch?{urlencode(params)}"), 400)
    assert self_user(client, user)["tier"] == 0
