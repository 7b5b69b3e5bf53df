"""helio: checkout through Helio's charge API (our reference in ``additionalJSON``), webhooks
authenticated with the shared bearer token; a payment binds to the account that started it."""
from __future__ import annotations

import datetime as dt
import json
import uuid
from urllib.parse import urlsplit

import pytest

from tests.conftest import assert_error, assert_ok, sign_up
from tests.support.billing import create_plan, ledger_rows, self_user
from tests.support.fake_vendors import FakeHelio

TOKEN = "helio-shared-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}


@pytest.fixture(scope="module")
def fake():
    server = FakeHelio("helio-public", "helio-secret").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def app(make_app, fake):
    return make_app(plugin_settings={"helio": {
        "shared_token": TOKEN, "paylinks": {"helio-1": {"id": "65dc9f", "days": 30}}, "api_key": "helio-public",
        "api_secret": "helio-secret", "api_base": fake.url}})


@pytest.fixture(scope="module", autouse=True)
def plan(app):
    create_plan(app.test_client(), tier=2, providers=("helio",), product_id="helio-1")


def event(kind, email, tx_id=None, additional=None, charge=None):
    details = {"email": email}
    if additional is not None:
        details["additionalJSON"] = additional
    tx = {"id": tx_id or uuid.uuid4().hex[:24], "paylinkId": "65dc9f", "createdAt": dt.datetime.now(dt.UTC).isoformat(),
          "paymentType": "PAYLINK", "meta": {"amount": "9900000", "senderPK": "Er3Rw", "transactionStatus": "SUCCESS",
                                              "customerDetails": details}}
    body = {"event": kind, "transaction": json.dumps(tx), "transactionObject": tx}
    if charge:
        body["chargeToken"] = charge
    return json.dumps(body)


def checkout(client, fake, user) -> tuple[str, dict]:
    """Follow the buyer's payment link: the charge Helio was asked for (token, request body)."""
    plans = assert_ok(client.get("/getBillingPlans", headers=user["headers"]))["payload"]
    [link] = [p for p in plans if p["prices"][0]["productID"] == "helio-1"][0]["prices"][0]["paymentProviders"]
    assert link["paymentLabel"] == "Pay with Crypto (Helio)"
    response = client.get(urlsplit(link["paymentUrl"]).path + "?" + urlsplit(link["paymentUrl"]).query)
    assert response.status_code == 302 and response.headers["Location"].startswith("https://app.hel.io/charge/")
    token = response.headers["Location"].rsplit("/", 1)[1]
    return token, fake.charges[token]


def paid_through(fake, token, email, tx_id=None, kind="CREATED"):
    """The webhook Helio sends for a payment on charge ``token``: it echoes the charge's additionalJSON."""
    additional = fake.charges[token]["prepareRequestBody"]["customerDetails"]["additionalJSON"]
    return event(kind, email, tx_id, additional=additional, charge=token)


def test_paylink_payment_and_end(client, fake):
    user = sign_up(client)
    assert not [p for p in assert_ok(client.get("/getBillingPlans"))["payload"]
                if p["prices"][0]["productID"] == "helio-1"][0]["prices"][0]["paymentProviders"], "no link without a payer"
    token, charge = checkout(client, fake, user)
    assert charge["paymentRequestId"] == "65dc9f"
    body = paid_through(fake, token, user["email"], "tx-helio-1")
    assert_ok(client.post("/webhooks/helio", data=body, headers=HEADERS))
    me = self_user(client, user)
    assert me["tier"] == 2 and me["merchantProcessor"] == "helio"
    assert assert_ok(client.post("/webhooks/helio", data=body, headers=HEADERS))["payload"]["outcome"] == "duplicate"
    assert_ok(client.post("/webhooks/helio", data=event("ENDED", user["email"], "tx-helio-1"), headers=HEADERS))
    assert self_user(client, user)["tier"] == 0


def test_a_payment_binds_to_the_account_that_started_its_checkout_not_to_a_typed_email(app, client, fake):
    """The attacks: pay with the victim's address (or the victim mistypes theirs), so the
    grant lands on the account of that address; or open an account with an address a payer
    will type. Only our reference, read back from Helio's additionalJSON, names the payer."""
    victim, buyer = sign_up(client), sign_up(client)
    typed = assert_ok(client.post("/webhooks/helio", data=event("CREATED", victim["email"]), headers=HEADERS))
    assert typed["payload"]["outcome"] == "review"
    assert self_user(client, victim)["tier"] == 0
    token, _charge = checkout(client, fake, buyer)
    assert_ok(client.post("/webhooks/helio", data=paid_through(fake, token, victim["email"]), headers=HEADERS))
    assert self_user(client, victim)["tier"] == 0 and self_user(client, buyer)["tier"] == 2
    forged = json.dumps({"aimgRef": f"{buyer['user_id']}.helio-1"})
    assert_ok(client.post("/webhooks/helio", data=event("CREATED", victim["email"], additional=forged), headers=HEADERS))
    assert self_user(client, victim)["tier"] == 0
    rows = [r for r in ledger_rows(app, "helio") if r["status"] == "review"]
    assert len(rows) == 2 and all("unverified email" in r["detail"] for r in rows)


def test_a_wrong_token_is_refused(client):
    user = sign_up(client)
    body = event("CREATED", user["email"])
    assert_error(client.post("/webhooks/helio", data=body, headers={"Authorization": "Bearer guess"}), 400)
    assert_error(client.post("/webhooks/helio", data=body), 400)
    assert self_user(client, user)["tier"] == 0


def test_a_notification_forged_from_a_pay_link_is_refused(client, fake):
    user = sign_up(client)
    token, _charge = checkout(client, fake, user)
    body = paid_through(fake, token, user["email"])
    for guess in (token, "65dc9f", f"https://app.hel.io/charge/{token}"):
        assert_error(client.post("/webhooks/helio", data=body, headers={"Authorization": f"Bearer {guess}"}), 400)
    unstated = json.loads(body)
    del unstated["transactionObject"]["meta"]["transactionStatus"]
    assert_error(client.post("/webhooks/helio", data=json.dumps(unstated), headers=HEADERS), 400, "malformed")
    failed = json.loads(body)
    failed["transactionObject"]["meta"]["transactionStatus"] = "FAILED"
    assert_ok(client.post("/webhooks/helio", data=json.dumps(failed), headers=HEADERS))
    assert_error(client.post("/webhooks/helio", data=json.dumps({**failed, "event": "GIFTED"}), headers=HEADERS), 400)
    assert self_user(client, user)["tier"] == 0
