"""The stripe processor end to end against a fake Stripe on loopback: checkout link,
signed webhooks (bought, renewed, cancelled at period end, refunded), replays and forgeries."""
from __future__ import annotations

import json
import time
from urllib.parse import urlsplit

import pytest

from tests.conftest import assert_error, assert_ok, sign_up
from tests.support.billing import create_plan, ledger_rows, self_user
from tests.support.fake_vendors import FakeStripe

API_KEY, SECRET = "sk_test_fake_123", "whsec_test_secret"


@pytest.fixture(scope="module")
def fake():
    server = FakeStripe(API_KEY, SECRET).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def app(make_app, fake):
    return make_app(plugin_settings={"stripe": {"api_key": API_KEY, "webhook_secret": SECRET, "api_base": fake.url}})


def deliver(client, fake, payload: str, **sign):
    return client.post("/webhooks/stripe", data=payload,
                       headers={"Stripe-Signature": fake.sign(payload, **sign), "Content-Type": "application/json"})


def test_buy_renew_cancel_refund(app, client, fake):
    user = sign_up(client)
    product = create_plan(client, tier=2, providers=("stripe",))["prices"][0]["productID"]
    [plan] = [p for p in assert_ok(client.get("/getBillingPlans", headers=user["headers"]))["payload"]
              if p["prices"][0]["productID"] == product]
    link = plan["prices"][0]["paymentProviders"][0]
    assert link["paymentProvider"] == "stripe" and link["paymentLabel"] == "Stripe"
    url = urlsplit(link["paymentUrl"])
    followed = client.get(f"{url.path}?{url.query}")
    assert followed.status_code == 302 and followed.headers["Location"].startswith("https://checkout.stripe.test/")
    [created] = fake.calls("POST", "/v1/checkout/sessions")[-1:]
    form = created.form
    assert form["client_reference_id"] == user["user_id"] and form["mode"] == "subscription"
    assert form["subscription_data[metadata][productId]"] == product
    assert form["line_items[0][price_data][unit_amount]"] == "999"

    now = int(time.time())
    sub = "sub_" + user["user_id"][:8]
    paid = fake.event("invoice.paid", fake.invoice_paid(sub, user["user_id"], product, now + 30 * 86400, now,
                                                        "subscription_create", "pi_first"), now, "evt_first")
    assert_ok(deliver(client, fake, paid))
    me = self_user(client, user)
    assert me["tier"] == 2 and me["merchantProcessor"] == "stripe"
    assert me["subscriptions"][0]["transactionID"] == sub and me["subscriptions"][0]["payerID"] == "cus_123"

    renewal = fake.event("invoice.paid", fake.invoice_paid(sub, user["user_id"], product, now + 60 * 86400, now + 1,
                                                           "subscription_cycle", "pi_second"), now + 1)
    assert_ok(deliver(client, fake, renewal))
    expires = self_user(client, user)["tierExpiration"]

    assert_ok(deliver(client, fake, paid))  # a replay: nothing changes
    assert self_user(client, user)["tierExpiration"] == expires

    cancelled = assert_ok(client.delete("/cancelMembership", headers=user["headers"]))["payload"]
    assert cancelled["success"] is True and expires[:10] in cancelled["message"]
    [call] = fake.calls("POST", f"/v1/subscriptions/{sub}")
    assert call.form == {"cancel_at_period_end": "true"}
    update = fake.event("customer.subscription.updated", {"id": sub, "object": "subscription",
                                                          "cancel_at_period_end": True,
                                                          "current_period_end": now + 60 * 86400}, now + 2)
    assert_ok(deliver(client, fake, update))
    me = self_user(client, user)
    assert me["tier"] == 2 and "nextBillingDate" not in me["subscriptions"][0]

    refund = fake.event("charge.refunded", {"id": "ch_2", "object": "charge", "payment_intent": "pi_second",
                                            "refunded": True}, now + 3)
    assert_ok(deliver(client, fake, refund))
    assert self_user(client, user)["tier"] == 0
    statuses = [r["status"] for r in ledger_rows(app, "stripe") if r["status"] != "rejected"]
    assert statuses.count("applied") >= 4


def test_forged_stale_and_reserialised_webhooks_are_refused(app, client, fake):
    user = sign_up(client)
    product = create_plan(client, tier=1, providers=("stripe",))["prices"][0]["productID"]
    now = int(time.time())
    payload = fake.event("invoice.paid", fake.invoice_paid("sub_forged", user["user_id"], product, now + 86400, now,
                                                           "subscription_create", "pi_forged"), now)
    before = len([r for r in ledger_rows(app, "stripe") if r["status"] == "rejected"])
    assert_error(deliver(client, fake, payload, secret="whsec_attacker"), 400)
    assert_error(deliver(client, fake, payload, timestamp=now - 3600), 400)
    assert_error(client.post("/webhooks/stripe", data=payload, headers={"Content-Type": "application/json"}), 400)
    reserialised = json.dumps(json.loads(payload), indent=1)
    assert_error(client.post("/webhooks/stripe", data=reserialised,
                             headers={"Stripe-Signature": fake.sign(payload), "Content-Type": "application/json"}), 400)
    assert self_user(client, user)["tier"] == 0
    assert len([r for r in ledger_rows(app, "stripe") if r["status"] == "rejected"]) == before + 4


def test_one_time_payment_gives_a_lifetime_tier(client, fake):
    user = sign_up(client)
    product = create_plan(client, tier=1, providers=("stripe",), period="lifetime")["prices"][0]["productID"]
    now = int(time.time())
    session = {"id": "cs_life_" + user["user_id"][:6], "object": "checkout.session", "mode": "payment",
               "client_reference_id": user["user_id"], "metadata": {"userId": user["user_id"], "productId": product},
               "payment_intent": "pi_life", "customer": "cus_9", "payment_status": "unpaid"}
    # a delayed payment method: the session completes before the money arrives
    assert_ok(deliver(client, fake, fake.event("checkout.session.completed", session, now)))
    assert self_user(client, user)["tier"] == 0
    paid = {**session, "payment_status": "paid"}
    assert_ok(deliver(client, fake, fake.event("checkout.session.async_payment_succeeded", paid, now + 1)))
    me = self_user(client, user)
    assert me["tier"] == 1 and "tierExpiration" not in me


def test_a_notification_forged_from_a_checkout_link_is_refused(app, client, fake):
    """The buyer's link is our own signed token (its own key and format): nothing in it
    signs a Stripe event, however it is cut up."""
    user = sign_up(client)
    product = create_plan(client, tier=3, providers=("stripe",))["prices"][0]["productID"]
    [plan] = [p for p in assert_ok(client.get("/getBillingPlans", headers=user["headers"]))["payload"]
              if p["prices"][0]["productID"] == product]
    token = urlsplit(plan["prices"][0]["paymentProviders"][0]["paymentUrl"]).query.split("t=", 1)[1]
    payload_part, stamp, mac = token.rsplit(".", 2)
    now = int(time.time())
    paid = fake.event("invoice.paid", fake.invoice_paid("sub_link", user["user_id"], product, now + 86400, now,
                                                        "subscription_create", "pi_link"), now)
    for header in (f"t={now},v1={mac}", f"t={stamp},v1={token}", token,
                   f"t={now},v1={fake.sign(payload_part, secret=token).split('v1=')[1]}"):
        assert_error(client.post("/webhooks/stripe", data=paid,
                                 headers={"Stripe-Signature": header, "Content-Type": "application/json"}), 400)
    assert_error(client.post("/webhooks/stripe", data=token, headers={"Stripe-Signature": fake.sign(token, secret=token)}),
                 400)
    unpaid = json.loads(paid)
    unpaid["data"]["object"]["status"] = "open"
    assert_error(deliver(client, fake, json.dumps(unpaid)), 400, "malformed")  # signed, but not a paid invoice
    assert self_user(client, user)["tier"] == 0


def test_checkout_link_needs_a_signed_in_buyer(client):
    create_plan(client, tier=1, providers=("stripe",))
    plans = assert_ok(client.get("/getBillingPlans"))["payload"]
    url = urlsplit(plans[-1]["prices"][0]["paymentProviders"][0]["paymentUrl"])
    assert_error(client.get(f"{url.path}?{url.query}"), 403, "sign in")
    assert_error(client.get(f"{url.path}?t=tampered"), 400, "invalid")
