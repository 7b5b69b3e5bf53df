"""ccbill: FlexForms links with formDigest, webhooks accepted only from CCBill's networks."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import assert_error, assert_ok, sign_up
from tests.support.billing import create_plan, ledger_rows, self_user
from tests.support.fake_vendors import FakeCCBill

CCBILL_IP = "64.38.240.17"


@pytest.fixture(scope="module")
def fake():
    server = FakeCCBill("900000", "dl-user", "dl-pass").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def app(make_app, fake):
    return make_app(plugin_settings={"ccbill": {
        "client_accnum": "900000", "client_subacc": "0001", "flexform_id": "ff-123", "salt": "pepper",
        "datalink_username": "dl-user", "datalink_password": "dl-pass",
        "datalink_url": f"{fake.url}/utils/subscriptionManagement.cgi"}})


def link_of(client, user, product) -> dict:
    plans = assert_ok(client.get("/getBillingPlans", headers=user["headers"]))["payload"]
    [link] = [p for p in plans if p["prices"][0]["productID"] == product][0]["prices"][0]["paymentProviders"]
    return {k: v[0] for k, v in parse_qs(urlsplit(link["paymentUrl"]).query).items()}


def sale_from(query: dict, sub: str, email: str) -> dict:
    """The NewSaleSuccess CCBill posts for a purchase through the FlexForm link ``query``."""
    return {"subscriptionId": sub, "transactionId": f"t-{sub}", "timestamp": mst(-0.01), "email": email,
            "X-userId": query["X-userId"], "X-productId": query["X-productId"], "clientAccnum": "900000",
            "clientSubacc": "0001", "billedCurrencyCode": query["currencyCode"],
            "billedInitialPrice": query["initialPrice"], "initialPeriod": query["initialPeriod"],
            "billedRecurringPrice": query.get("recurringPrice"), "recurringPeriod": query.get("recurringPeriod"),
            "nextRenewalDate": (dt.date.today() + dt.timedelta(days=30)).isoformat()}


def post(client, event_type, data, ip=CCBILL_IP, as_json=True):
    kwargs = {"data": json.dumps(data), "content_type": "application/json"} if as_json else {"data": data}
    return client.post(f"/webhooks/ccbill?eventType={event_type}", environ_base={"REMOTE_ADDR": ip}, **kwargs)


def mst(days=0.0):
    return (dt.datetime.now(dt.UTC) - dt.timedelta(hours=7) + dt.timedelta(days=days)).strftime("%Y-%m-%d %H:%M:%S")


def test_flexform_link_sale_renewal_cancel_refund(client, fake):
    user = sign_up(client)
    product = create_plan(client, tier=2, providers=("ccbill",), value=19.99)["prices"][0]["productID"]
    plans = assert_ok(client.get("/getBillingPlans", headers=user["headers"]))["payload"]
    [link] = [p for p in plans if p["prices"][0]["productID"] == product][0]["prices"][0]["paymentProviders"]
    query = {k: v[0] for k, v in parse_qs(urlsplit(link["paymentUrl"]).query).items()}
    assert link["paymentUrl"].startswith("https://api.ccbill.com/wap-frontflex/flexforms/ff-123?")
    assert query["X-userId"] == user["user_id"] and query["currencyCode"] == "840"
    expected = hashlib.md5(b"19.993019.993099840pepper").hexdigest()
    assert query["formDigest"] == expected

    sale = sale_from(query, "0123456789", user["email"])
    fake.statuses["0123456789"] = "2"
    assert_ok(post(client, "NewSaleSuccess", sale))
    assert self_user(client, user)["tier"] == 2
    assert assert_ok(post(client, "NewSaleSuccess", sale))["payload"]["outcome"] == "duplicate"
    renewal = {"subscriptionId": "0123456789", "transactionId": "t2", "timestamp": mst(-0.005),
               "nextRenewalDate": (dt.date.today() + dt.timedelta(days=60)).isoformat(), "billedAmount": "19.99",
               "billedCurrencyCode": "840"}
    assert_ok(post(client, "RenewalSuccess", renewal, as_json=False))
    assert self_user(client, user)["tierExpiration"][:10] == (dt.date.today() + dt.timedelta(days=60)).isoformat()
    assert_ok(post(client, "Cancellation", {"subscriptionId": "0123456789", "timestamp": mst(-0.004)}))
    me = self_user(client, user)
    assert me["tier"] == 2 and "nextBillingDate" not in me["subscriptions"][0]
    assert_ok(post(client, "Refund", {"subscriptionId": "0123456789", "transactionId": "t3", "timestamp": mst(-0.003)}))
    assert self_user(client, user)["tier"] == 0


def test_a_sale_forged_from_a_payment_link_is_refused(app, client, fake):
    """CCBill signs nothing: a post built from the buyer's own link is refused unless CCBill's
    DataLink confirms the subscription, and a link edited to name a dearer product than the
    one billed is refused even when CCBill confirms the (cheap) subscription."""
    user = sign_up(client)
    cheap = create_plan(client, tier=1, providers=("ccbill",), value=4.99)["prices"][0]["productID"]
    dear = create_plan(client, tier=3, providers=("ccbill",), value=49.99)["prices"][0]["productID"]
    query = link_of(client, user, cheap)
    before = len([r for r in ledger_rows(app, "ccbill") if r["status"] == "rejected"])
    forged = sale_from(query, "0999000001", user["email"])
    assert_error(post(client, "NewSaleSuccess", forged), 400)  # from a CCBill address, but CCBill knows no such sale
    fake.statuses["0999000001"] = "0"
    assert_error(post(client, "NewSaleSuccess", forged), 400)  # known to CCBill, but not active
    fake.statuses["0999000002"] = "2"
    edited = {**sale_from(query, "0999000002", user["email"]), "X-productId": dear}
    assert_error(post(client, "NewSaleSuccess", edited), 400)
    resplit = {**sale_from(query, "0999000002", user["email"]), "initialPeriod": "309", "billedRecurringPrice": ".99"}
    assert_error(post(client, "NewSaleSuccess", resplit), 400)  # formDigest text re-split into other periods
    missing = {k: v for k, v in sale_from(query, "0999000002", user["email"]).items() if k != "billedInitialPrice"}
    assert_error(post(client, "NewSaleSuccess", missing), 400)
    assert_error(client.post("/webhooks/ccbill", data=json.dumps(forged), content_type="application/json",
                             environ_base={"REMOTE_ADDR": CCBILL_IP}), 400)  # no eventType
    assert self_user(client, user)["tier"] == 0
    assert len([r for r in ledger_rows(app, "ccbill") if r["status"] == "rejected"]) == before + 6
    assert_ok(post(client, "NewSaleSuccess", sale_from(query, "0999000002", user["email"])))
    assert self_user(client, user)["tier"] == 1


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


def test_a_refund_before_its_sale_is_retried_not_lost(client, fake):
    """The attack: get the refund delivered before the sale so it is ignored, and keep the tier."""
    user = sign_up(client)
    product = create_plan(client, tier=2, providers=("ccbill",), value=19.99)["prices"][0]["productID"]
    sub = str(uuid.uuid4().int)[:10]
    refund = {"subscriptionId": sub, "transactionId": f"r-{sub}", "timestamp": mst(-0.001)}
    for event_type in ("Refund", "Chargeback"):
        assert post(client, event_type, refund).status_code == 503  # CCBill delivers it again
    fake.statuses[sub] = "2"
    assert_ok(post(client, "NewSaleSuccess", sale_from(link_of(client, user, product), sub, user["email"])))
    assert self_user(client, user)["tier"] == 2
    assert_ok(post(client, "Refund", refund))
    assert self_user(client, user)["tier"] == 0


def test_a_renewal_billed_less_than_the_product_or_undone_at_ccbill_grants_nothing(client, fake):
    """The attacks: a renewal of a cheap price (or another currency) posted for a dear
    subscription, or a sale CCBill still calls active though it refunded or voided it."""
    user = sign_up(client)
    product = create_plan(client, tier=2, providers=("ccbill",), value=19.99)["prices"][0]["productID"]
    sub = str(uuid.uuid4().int)[:10]
    fake.statuses[sub] = "2"
    assert_ok(post(client, "NewSaleSuccess", sale_from(link_of(client, user, product), sub, user["email"])))
    until = self_user(client, user)["tierExpiration"][:10]
    later = (dt.date.today() + dt.timedelta(days=90)).isoformat()
    renewal = {"subscriptionId": sub, "transactionId": f"r-{sub}", "timestamp": mst(-0.001), "nextRenewalDate": later,
               "billedAmount": "0.99", "billedCurrencyCode": "840"}
    assert_error(post(client, "RenewalSuccess", renewal), 400)
    assert_error(post(client, "RenewalSuccess", {**renewal, "billedAmount": "19.99", "billedCurrencyCode": "978"}), 400)
    assert_error(post(client, "RenewalSuccess", {k: v for k, v in renewal.items() if k != "billedAmount"}), 400)
    assert self_user(client, user)["tierExpiration"][:10] == until
    fake.records[sub] = {"refundsIssued": "1"}
    assert_error(post(client, "RenewalSuccess", {**renewal, "billedAmount": "19.99"}), 400)
    fake.records.pop(sub)
    assert_ok(post(client, "RenewalSuccess", {**renewal, "billedAmount": "19.99"}))
    assert self_user(client, user)["tierExpiration"][:10] == later

    voided = str(uuid.uuid4().int)[:10]
    fake.statuses[voided], fake.records[voided] = "2", {"voidsIssued": "1"}
    other = sign_up(client)
    assert_error(post(client, "NewSaleSuccess", sale_from(link_of(client, other, product), voided, other["email"])), 400)
    assert self_user(client, other)["tier"] == 0
