"""The paypal processor end to end against a fake PayPal REST API on loopback: OAuth,
subscription checkout, webhooks verified by PayPal's verification call, cancellation."""
from __future__ import annotations

import datetime as dt
import time
from urllib.parse import quote, urlsplit

import pytest

from tests.conftest import assert_error, assert_ok, sign_up
from tests.support.billing import create_plan, self_user
from tests.support.fake_vendors import FakePayPal

CLIENT_ID, CLIENT_SECRET, WEBHOOK_ID = "paypal-client", "paypal-secret", "WH-ID-1"


@pytest.fixture(scope="module")
def fake():
    server = FakePayPal(CLIENT_ID, CLIENT_SECRET, WEBHOOK_ID).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def app(make_app, fake):
    return make_app(plugin_settings={"paypal": {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                                                "webhook_id": WEBHOOK_ID, "api_base": fake.url,
                                                "plans": {"pp-monthly": "P-MONTHLY"}}})


@pytest.fixture(scope="module", autouse=True)
def monthly_plan(app):
    create_plan(app.test_client(), tier=1, providers=("paypal",), product_id="pp-monthly")


def iso(days: float) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def deliver(client, fake, payload: str, headers=None):
    return client.post("/webhooks/paypal", data=payload, headers=headers or fake.sign(payload))


def test_buy_renew_cancel_refund(client, fake):
    user = sign_up(client)
    plans = assert_ok(client.get("/getBillingPlans", headers=user["headers"]))["payload"]
    assert not any(p["prices"][0]["paymentProviders"] for p in plans if p["prices"][0]["productID"] == "pp-monthly"), \
        "without redirectURL PayPal offers no link"
    back = quote("http://localhost:3000/thanks")
    plans = assert_ok(client.get(f"/getBillingPlans?redirectURL={back}", headers=user["headers"]))["payload"]
    [link] = [p for p in plans if p["prices"][0]["productID"] == "pp-monthly"][0]["prices"][0]["paymentProviders"]
    url = urlsplit(link["paymentUrl"])
    followed = client.get(f"{url.path}?{url.query}")
    assert followed.status_code == 302 and "paypal.test" in followed.headers["Location"]
    [sub_id] = list(fake.subscriptions)
    created = fake.subscriptions[sub_id]
    assert created["plan_id"] == "P-MONTHLY" and created["custom_id"] == user["user_id"]
    assert created["application_context"]["return_url"] == "http://localhost:3000/thanks"

    fake.subscriptions[sub_id].update(status="ACTIVE", billing_info={"next_billing_time": iso(30)})
    activated = fake.event("BILLING.SUBSCRIPTION.ACTIVATED", {
        "id": sub_id, "plan_id": "P-MONTHLY", "custom_id": user["user_id"], "status": "ACTIVE",
        "subscriber": {"payer_id": "PAYER1", "email_address": user["email"]},
        "billing_info": {"next_billing_time": iso(30)}}, iso(-0.003))
    assert_ok(deliver(client, fake, activated))
    sale = fake.event("PAYMENT.SALE.COMPLETED", {"id": "SALE-1", "billing_agreement_id": sub_id,
                                                 "amount": {"total": "9.99", "currency": "USD"}, "state": "completed"}, iso(-0.002))
    assert_ok(deliver(client, fake, sale))
    me = self_user(client, user)
    assert me["tier"] == 1 and me["merchantProcessor"] == "paypal" and me["subscriptions"][0]["payerID"] == "PAYER1"

    fake.subscriptions[sub_id]["billing_info"] = {"next_billing_time": iso(60)}
    renewal = fake.event("PAYMENT.SALE.COMPLETED", {"id": "SALE-2", "billing_agreement_id": sub_id,
                                                    "amount": {"total": "9.99", "currency": "USD"}, "state": "completed"}, iso(-0.001))
    assert_ok(deliver(client, fake, renewal))
    assert self_user(client, user)["tierExpiration"][:10] == iso(60)[:10]
    assert assert_ok(deliver(client, fake, renewal))["payload"]["outcome"] == "duplicate"

    assert assert_ok(client.delete("/cancelMembership", headers=user["headers"]))["payload"]["success"]
    assert fake.subscriptions[sub_id]["status"] == "CANCELLED"
    me = self_user(client, user)
    assert me["tier"] == 1 and "nextBillingDate" not in me["subscriptions"][0]

    refund = fake.event("PAYMENT.SALE.REFUNDED", {"id": "REF-1", "sale_id": "SALE-2"}, iso(0))
    assert_ok(deliver(client, fake, refund))
    assert self_user(client, user)["tier"] == 0


def test_unverified_deliveries_are_refused(client, fake):
    user = sign_up(client)
    create_plan(client, tier=1, providers=("paypal",), product_id=f"pp-{user['user_id'][:6]}")
    activated = fake.event("BILLING.SUBSCRIPTION.ACTIVATED", {
        "id": "I-FORGED", "plan_id": "P-MONTHLY", "custom_id": user["user_id"],
        "billing_info": {"next_billing_time": iso(30)}}, iso(0))
    headers = fake.sign(activated)
    assert_error(deliver(client, fake, activated.replace("I-FORGED", "I-FORGED2"), headers=headers), 400)
    assert_error(deliver(client, fake, activated, headers={**headers, "PAYPAL-TRANSMISSION-SIG": "AAAA"}), 400)
    assert_error(deliver(client, fake, activated, headers={"Content-Type": "application/json"}), 400)
    assert_error(deliver(client, fake, activated, headers=fake.sign(activated, sent_at=time.time() - 5 * 86400)), 400)
    assert self_user(client, user)["tier"] == 0


def test_a_notification_forged_from_a_checkout_link_is_refused(client, fake):
    user = sign_up(client)
    product = f"pp-link-{user['user_id'][:6]}"
    create_plan(client, tier=2, providers=("paypal",), product_id=product)
    back = quote("http://localhost:3000/thanks")
    plans = assert_ok(client.get(f"/getBillingPlans?redirectURL={back}", headers=user["headers"]))["payload"]
    assert not [p for p in plans if p["prices"][0]["productID"] == product][0]["prices"][0]["paymentProviders"], \
        "a product without a PayPal plan has no link"
    plans = assert_ok(client.get(f"/getBillingPlans?redirectURL={back}", headers=user["headers"]))["payload"]
    [link] = [p for p in plans if p["prices"][0]["productID"] == "pp-monthly"][0]["prices"][0]["paymentProviders"]
    token = urlsplit(link["paymentUrl"]).query.split("t=", 1)[1]
    activated = fake.event("BILLING.SUBSCRIPTION.ACTIVATED", {
        "id": "I-LINK", "plan_id": "P-MONTHLY", "custom_id": user["user_id"], "status": "ACTIVE",
        "billing_info": {"next_billing_time": iso(30)}}, iso(0))
    genuine = fake.sign(activated)
    for forged in ({**genuine, "PAYPAL-TRANSMISSION-SIG": token}, {**genuine, "PAYPAL-TRANSMISSION-ID": token},
                   {**genuine, "PAYPAL-TRANSMISSION-SIG": token.rsplit(".", 1)[1]}):
        assert_error(deliver(client, fake, activated, headers=forged), 400)
    pending = activated.replace('"status": "ACTIVE"', '"status": "APPROVAL_PENDING"')
    assert_error(deliver(client, fake, pending, headers=fake.sign(pending)), 400, "malformed")
    assert self_user(client, user)["tier"] == 0
