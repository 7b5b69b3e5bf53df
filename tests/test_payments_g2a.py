"""g2a: G2A PAY quotes against a fake checkout API, IPNs authenticated by their SHA-256 hash."""
from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

import pytest

from tests.conftest import assert_error, assert_ok, sign_up
from tests.support.billing import create_plan, self_user
from tests.support.fake_vendors import FakeG2A

API_HASH, SECRET = "g2a-api-hash", "g2a-secret"


@pytest.fixture(scope="module")
def fake():
    server = FakeG2A(API_HASH, SECRET).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def app(make_app, fake):
    return make_app(plugin_settings={"g2a": {"api_hash": API_HASH, "api_secret": SECRET, "api_base": fake.url,
                                             "rest_base": fake.url, "merchant_email": "merchant@example.com"}})


def test_quote_ipn_and_refund(client, fake):
    user = sign_up(client)
    product = create_plan(client, tier=1, providers=("g2a",))["prices"][0]["productID"]
    plans = assert_ok(client.get("/getBillingPlans", headers=user["headers"]))["payload"]
    [link] = [p for p in plans if p["prices"][0]["productID"] == product][0]["prices"][0]["paymentProviders"]
    url = urlsplit(link["paymentUrl"])
    followed = client.get(f"{url.path}?{url.query}")
    assert followed.status_code == 302 and followed.headers["Location"].startswith(f"{fake.url}/index/gateway?token=")
    [quote] = fake.quotes.values()
    assert quote["order_id"].startswith(f"{user['user_id']}.{product}.30.") and quote["amount"] == "9.99"

    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    assert_ok(client.post("/webhooks/g2a", data=fake.ipn(quote["order_id"], "9.99", "complete", now)))
    me = self_user(client, user)
    assert me["tier"] == 1 and me["merchantProcessor"] == "g2a" and "nextBillingDate" not in me["subscriptions"][0]
    assert_ok(client.post("/webhooks/g2a", data=fake.ipn(quote["order_id"], "9.99", "refunded", now)))
    assert self_user(client, user)["tier"] == 0


def buy(client, fake, user, tier=2):
    product = create_plan(client, tier=tier, providers=("g2a",))["prices"][0]["productID"]
    plans = assert_ok(client.get("/getBillingPlans", headers=user["headers"]))["payload"]
    [link] = [p for p in plans if p["prices"][0]["productID"] == product][0]["prices"][0]["paymentProviders"]
    url = urlsplit(link["paymentUrl"])
    gateway = client.get(f"{url.path}?{url.query}").headers["Location"]
    [order] = [q["order_id"] for t, q in fake.quotes.items() if gateway.endswith(t)]
    return link["paymentUrl"], gateway, order


def test_an_ipn_forged_from_a_payment_link_is_refused(client, fake):
    """Everything the buyer holds (our checkout token, G2A's gateway token) signs no IPN; and
    since G2A's hash does not cover the status, a genuine IPN's status changed to
    ``complete`` is refused because G2A PAY's API says otherwise."""
    user = sign_up(client)
    link, gateway, order = buy(client, fake, user)
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    forged = fake.ipn(order, "9.99", "complete", now, record=False)
    for fake_hash in (gateway.rsplit("=", 1)[1], link.rsplit("t=", 1)[1], link.rsplit(".", 1)[1]):
        assert_error(client.post("/webhooks/g2a", data={**forged, "hash": fake_hash}), 400)
    assert_error(client.post("/webhooks/g2a", data=forged), 400)  # right hash, but G2A has no such payment
    cancelled = fake.ipn(order, "9.99", "canceled", now)
    assert_ok(client.post("/webhooks/g2a", data=cancelled))
    assert_error(client.post("/webhooks/g2a", data={**cancelled, "status": "complete"}), 400)
    assert_error(client.post("/webhooks/g2a", data={k: v for k, v in cancelled.items() if k != "status"}), 400)
    assert self_user(client, user)["tier"] == 0


def test_a_forged_ipn_is_refused(client, fake):
    user = sign_up(client)
    order = f"{user['user_id']}.x.30.abcd"
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    assert_error(client.post("/webhooks/g2a", data=fake.ipn(order, "9.99", "complete", now, secret="nope")), 400)
    tampered = {**fake.ipn(order, "9.99", "complete", now), "amount": "0.01"}
    assert_error(client.post("/webhooks/g2a", data=tampered), 400)
    assert self_user(client, user)["tier"] == 0


def test_an_order_paid_less_than_its_product_grants_nothing(client, fake):
    """The attack: an order id naming a costly product and many days, really paid at G2A for a few cents
    (or in another currency): G2A's hash and API confirm the payment, not that it was our price."""
    user = sign_up(client)
    gold = create_plan(client, tier=3, providers=("g2a",), value=49.99)["prices"][0]["productID"]
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    for order, amount, currency in ((f"{user['user_id']}.{gold}.30.cheap0001", "0.01", "USD"),
                                    (f"{user['user_id']}.{gold}.3650.long0001", "49.99", "USD"),
                                    (f"{user['user_id']}.{gold}.30.curr0001", "49.99", "JPY"),
                                    (f"{user['user_id']}.no-such-product.30.none0001", "49.99", "USD"),
                                    ("no-dots-at-all", "49.99", "USD")):
        ipn = fake.ipn(order, amount, "complete", now)
        fake.transactions[ipn["transactionId"]]["currency"] = currency
        assert_error(client.post("/webhooks/g2a", data={**ipn, "currency": currency}), 400)
    assert self_user(client, user)["tier"] == 0
    paid = fake.ipn(f"{user['user_id']}.{gold}.30.right001", "49.99", "complete", now)
    assert_ok(client.post("/webhooks/g2a", data=paid))
    assert self_user(client, user)["tier"] == 3
