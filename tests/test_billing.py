"""Premium Membership Management through the HTTP API: plans, admin grants, cancellation,
the webhook ledger (through the test plugin's processor), card payments, the pay-by-card mail."""
from __future__ import annotations

import datetime as dt
import uuid
from concurrent.futures import ThreadPoolExecutor

from aimg_app.models.base import epoch_ms, utcnow
from tests.conftest import ADMIN_HEADERS, assert_error, assert_ok, new_session_headers, sign_up
from tests.support.billing import (assert_no_card_data, body_text, create_plan, ledger_rows, mails_to,
                                   post_test_webhook, self_user)


def ms(delta_days: float = 0, base: dt.datetime | None = None) -> int:
    return epoch_ms((base or utcnow()) + dt.timedelta(days=delta_days))


# --- plans --------------------------------------------------------------------------------


def test_create_and_get_billing_plans(client):
    plan = create_plan(client, tier=2, description="More of everything", features=["fast"], mainBenefits=["no ads"])
    assert plan["tier"] == 2 and plan["name"].startswith("Plan ")
    price = plan["prices"][0]
    assert price["currency"] == "USD" and price["value"] == 9.99 and price["productID"]
    provider = price["paymentProviders"][0]
    assert provider == {"paymentProvider": "other", "paymentLabel": "Test payments",
                        "paymentUrl": f"https://pay.example/test?product={price['productID']}"}

    listed = assert_ok(client.get("/getBillingPlans"))["payload"]
    assert plan["id"] in [p["id"] for p in listed]
    only = assert_ok(client.get(f"/getBillingPlans?planIDs={plan['id']}"))["payload"]
    assert [p["id"] for p in only] == [plan["id"]]
    assert only[0]["description"] == "More of everything" and only[0]["mainBenefits"] == ["no ads"]


def test_special_plans_show_only_for_their_code(client):
    special = create_plan(client, code="SUMMER50")
    plain = assert_ok(client.get("/getBillingPlans"))["payload"]
    assert special["id"] not in [p["id"] for p in plain]
    wrong = assert_ok(client.get("/getBillingPlans?code=WINTER"))["payload"]
    assert special["id"] not in [p["id"] for p in wrong]
    right = assert_ok(client.get("/getBillingPlans?code=SUMMER50"))["payload"]
    assert special["id"] in [p["id"] for p in right]


def test_plans_belong_to_an_environment(client):
    other_env = create_plan(client, env="stage")
    listed = assert_ok(client.get("/getBillingPlans"))["payload"]
    assert other_env["id"] not in [p["id"] for p in listed]


def test_create_billing_plan_refuses_bad_input(client, user):
    body = {"name": "x", "tier": 1, "prices": [{"type": "base", "period": "monthly", "currency": "USD",
                                                 "currencyType": "fiat", "value": 1,
                                                 "paymentProviders": [{"paymentProvider": "other"}]}]}
    assert_error(client.post("/createBillingPlan", json=body), 403)
    assert_error(client.post("/createBillingPlan", json=body, headers=user["headers"]), 403)
    assert_error(client.post("/createBillingPlan", json={**body, "tier": 0}, headers=ADMIN_HEADERS), 400, "tier")
    bad_currency = {**body, "prices": [{**body["prices"][0], "currency": "XYZ"}]}
    assert_error(client.post("/createBillingPlan", json=bad_currency, headers=ADMIN_HEADERS), 400, "currency")
    assert_error(client.post("/createBillingPlan", json={**body, "prices": []}, headers=ADMIN_HEADERS), 400, "prices")
    create_plan(client, product_id="dup-product")
    assert_error(client.post("/createBillingPlan", json={**body, "prices": [{**body["prices"][0], "productID": "dup-product"}]},
                             headers=ADMIN_HEADERS), 409, "dup-product")


def test_a_plan_cannot_name_a_processor_that_is_not_installed(make_app):
    from tests.plugins import every_hook

    client = make_app(plugins=[every_hook], disabled_plugins=("payments_ccbill",)).test_client()
    assert "ccbill" not in client.application.extensions["aimg"].payment_processors
    body = {"name": "x", "tier": 1, "prices": [{"type": "base", "period": "monthly", "currency": "USD",
                                                 "currencyType": "fiat", "value": 1,
                                                 "paymentProviders": [{"paymentProvider": "ccbill"}]}]}
    assert_error(client.post("/createBillingPlan", json=body, headers=ADMIN_HEADERS), 400, "ccbill")
    installed = {**body, "prices": [{**body["prices"][0], "paymentProviders": [{"paymentProvider": "other"}]}]}
    assert_ok(client.post("/createBillingPlan", json=installed, headers=ADMIN_HEADERS))


def test_redirect_urls_must_belong_to_the_front_end(client):
    assert_error(client.get("/getBillingPlans?redirectURL=https://evil.example/x"), 400, "redirectURL")
    assert_ok(client.get("/getBillingPlans?redirectURL=http://localhost:3000/thanks"))


# --- admin grants and the tier -------------------------------------------------------------


def test_admin_grant_gives_and_takes_a_tier(client, user):
    assert self_user(client, user)["tier"] == 0
    until = (utcnow() + dt.timedelta(days=10)).replace(microsecond=0).isoformat() + "Z"
    body = {"productId": "vip", "email": user["email"], "tier": 2, "isActive": True, "deactivationDate": until,
            "additionalInformation": "press"}
    grant = assert_ok(client.post("/setAdminProvidedPremiumTier", json=body, headers=ADMIN_HEADERS))["payload"]
    assert grant["_id"] and grant["paymentProvider"] == "admin" and grant["email"] == user["email"]
    assert grant["tier"] == 2 and grant["isActive"] is True and grant["env"] == "dev" and grant["domain"] == "localhost"
    assert grant["deactivationDate"].startswith(until[:19])
    me = self_user(client, user, extended=True)
    assert me["tier"] == 2 and me["merchantProcessor"] == "admin" and me["tierExpiration"].startswith(until[:19])
    assert me["subscriptions"] == [{"merchantProcessor": "admin", "tier": 2, "productID": "vip",
                                    "transactionID": me["subscriptions"][0]["transactionID"],
                                    "tierExpiration": me["tierExpiration"], "additionalInformation": "press"}]

    again = assert_ok(client.post("/setAdminProvidedPremiumTier", json={**body, "isActive": False},
                                  headers=ADMIN_HEADERS))["payload"]
    assert again["_id"] == grant["_id"] and again["isActive"] is False
    me = self_user(client, user)
    assert me["tier"] == 0 and me["subscriptions"] == [] and me["merchantProcessor"] == "none"


def test_admin_grant_for_many_emails(client):
    users = [sign_up(client) for _ in range(2)]
    body = {"productId": "team", "emails": [u["email"] for u in users], "tier": 1, "isActive": True}
    grant = assert_ok(client.post("/setAdminProvidedPremiumTier", json=body, headers=ADMIN_HEADERS))["payload"]
    assert "_id" not in grant and grant["emails"] == [u["email"] for u in users]
    assert "deactivationDate" not in grant
    for u in users:
        me = self_user(client, u)
        assert me["tier"] == 1 and "tierExpiration" not in me


def test_admin_grant_refuses_unknown_emails_and_changes_nothing(client, user):
    body = {"productId": "team", "emails": [user["email"], "nobody-here@example.com"], "tier": 3, "isActive": True}
    assert_error(client.post("/setAdminProvidedPremiumTier", json=body, headers=ADMIN_HEADERS), 404, "nobody-here")
    assert self_user(client, user)["tier"] == 0
    assert_error(client.post("/setAdminProvidedPremiumTier", json={**body, "emails": []}, headers=ADMIN_HEADERS), 400)
    assert_error(client.post("/setAdminProvidedPremiumTier", json={"productId": "x", "tier": 1, "isActive": True},
                             headers=ADMIN_HEADERS), 400, "email")
    assert_error(client.post("/setAdminProvidedPremiumTier", json=body, headers=user["headers"]), 403)


def test_highest_tier_wins_and_lower_one_remains(client, user):
    post = lambda product, tier: assert_ok(client.post("/setAdminProvidedPremiumTier", headers=ADMIN_HEADERS, json={
        "productId": product, "email": user["email"], "tier": tier, "isActive": True}))
    post("low", 1)
    post("high", 3)
    me = self_user(client, user)
    assert me["tier"] == 3 and [s["tier"] for s in me["subscriptions"]] == [3, 1]
    assert_ok(client.post("/setAdminProvidedPremiumTier", headers=ADMIN_HEADERS, json={
        "productId": "high", "email": user["email"], "tier": 3, "isActive": False}))
    assert self_user(client, user)["tier"] == 1


# --- webhooks and the ledger --------------------------------------------------------------


def _plan_product(client, tier=2):
    return create_plan(client, tier=tier)["prices"][0]["productID"]


def test_webhook_lifecycle_start_renew_cancel_refund(app, client, user):
    product = _plan_product(client)
    sub = f"sub-{uuid.uuid4().hex[:8]}"
    t0 = utcnow()
    assert_ok(post_test_webhook(client, f"{sub}-1", [{"kind": "started", "subscription": sub, "at": ms(0, t0),
                                                       "user": user["user_id"], "product": product,
                                                       "until": ms(30, t0), "payment": "p1"}]))
    me = self_user(client, user, extended=True)
    assert me["tier"] == 2 and me["merchantProcessor"] == "other"
    [s] = me["subscriptions"]
    assert s["transactionID"] == sub and s["productID"] == product and s["nextBillingDate"] == s["tierExpiration"]
    assert s["price"] == {"type": "base", "period": "monthly", "currency": "USD", "currencyType": "fiat", "value": 9.99}

    assert_ok(post_test_webhook(client, f"{sub}-2", [{"kind": "renewed", "subscription": sub, "at": ms(30, t0),
                                                       "until": ms(60, t0), "payment": "p2"}]))
    assert self_user(client, user)["tierExpiration"][:10] == (t0 + dt.timedelta(days=60)).date().isoformat()

    assert_ok(post_test_webhook(client, f"{sub}-3", [{"kind": "cancelled", "subscription": sub, "at": ms(31, t0)}]))
    me = self_user(client, user)
    assert me["tier"] == 2 and "nextBillingDate" not in me["subscriptions"][0]

    assert_ok(post_test_webhook(client, f"{sub}-4", [{"kind": "refunded", "payment": "p2", "at": ms(32, t0)}]))
    assert self_user(client, user)["tier"] == 0
    rows = ledger_rows(app, "other")
    assert [r["status"] for r in rows if r["event_id"].startswith(sub)] == ["applied"] * 4


def test_replayed_webhook_changes_nothing(app, client, user):
    product = _plan_product(client, tier=1)
    sub = f"sub-{uuid.uuid4().hex[:8]}"
    start = [{"kind": "started", "subscription": sub, "at": ms(), "user": user["user_id"], "product": product,
              "until": ms(30)}]
    assert assert_ok(post_test_webhook(client, f"{sub}-start", start))["payload"]["outcome"] == "applied"
    # An admin takes the tier away; replaying the old purchase must not give it back.
    cancel = [{"kind": "expired", "subscription": sub, "at": ms(0.001)}]
    assert_ok(post_test_webhook(client, f"{sub}-end", cancel))
    assert self_user(client, user)["tier"] == 0
    assert assert_ok(post_test_webhook(client, f"{sub}-start", start))["payload"]["outcome"] == "duplicate"
    assert self_user(client, user)["tier"] == 0
    # Concurrent duplicates: one row, one effect.
    sub2 = f"sub-{uuid.uuid4().hex[:8]}"
    events = [{"kind": "started", "subscription": sub2, "at": ms(), "user": user["user_id"], "product": product,
               "until": ms(30)}]
    with ThreadPoolExecutor(max_workers=6) as pool:
        outcomes = list(pool.map(lambda _: app.test_client().post(
            "/webhooks/other", json={"id": f"{sub2}-x", "events": events}, headers={"X-Test-Token": "test-token"}
        ).get_json()["payload"]["outcome"], range(6)))
    assert sorted(outcomes) == ["applied"] + ["duplicate"] * 5
    assert [r["status"] for r in ledger_rows(app, "other") if r["event_id"] == f"{sub2}-x"] == ["applied"]


def test_out_of_order_events_settle_right(client, user):
    product = _plan_product(client, tier=1)
    t0 = utcnow()
    # refund (t+2) arrives before the purchase (t+1): the final state is refunded.
    sub = f"sub-{uuid.uuid4().hex[:8]}"
    assert_ok(post_test_webhook(client, f"{sub}-r", [{"kind": "refunded", "subscription": sub, "at": ms(0.02, t0),
                                                       "user": user["user_id"], "product": product}]))
    assert_ok(post_test_webhook(client, f"{sub}-s", [{"kind": "started", "subscription": sub, "at": ms(0.01, t0),
                                                       "user": user["user_id"], "product": product,
                                                       "until": ms(30, t0)}]))
    assert self_user(client, user)["tier"] == 0
    # cancel (t+2) before start (t+1): active until the period end, not renewing.
    sub = f"sub-{uuid.uuid4().hex[:8]}"
    assert_ok(post_test_webhook(client, f"{sub}-c", [{"kind": "cancelled", "subscription": sub, "at": ms(0.02, t0),
                                                       "user": user["user_id"], "product": product}]))
    assert self_user(client, user)["tier"] == 0
    assert_ok(post_test_webhook(client, f"{sub}-s", [{"kind": "started", "subscription": sub, "at": ms(0.01, t0),
                                                       "user": user["user_id"], "product": product,
                                                       "until": ms(30, t0)}]))
    me = self_user(client, user)
    assert me["tier"] == 1 and "nextBillingDate" not in me["subscriptions"][0]
    # a late, older renewal does not shorten a newer period end
    assert_ok(post_test_webhook(client, f"{sub}-old", [{"kind": "renewed", "subscription": sub, "at": ms(0.001, t0),
                                                         "until": ms(5, t0)}]))
    assert self_user(client, user)["tierExpiration"][:10] == (t0 + dt.timedelta(days=30)).date().isoformat()


def test_forged_webhook_is_refused_and_recorded(app, client, user):
    product = _plan_product(client)
    events = [{"kind": "started", "subscription": "forged", "at": ms(), "user": user["user_id"], "product": product,
               "until": ms(30)}]
    before = len(ledger_rows(app, "other"))
    assert_error(post_test_webhook(client, "forged-1", events, token="wrong"), 400, "verified")
    assert_error(client.post("/webhooks/other", data="{}", headers={"Content-Type": "application/json"}), 400)
    assert self_user(client, user)["tier"] == 0
    added = ledger_rows(app, "other")[before:]
    assert [r["status"] for r in added] == ["rejected", "rejected"] and added[-1]["event_id"] is None
    assert_error(client.post("/webhooks/no-such-processor", json={}), 404)


def test_bad_vendor_input_is_refused_and_a_plugin_bug_is_a_logged_500(app, client, json_log):
    before = len(ledger_rows(app, "other"))
    # Not JSON: the plugin API's request says so with MalformedWebhook -> recorded, 400.
    assert_error(client.post("/webhooks/other", data="{not json", headers={"X-Test-Token": "test-token"}), 400,
                 "malformed")
    added = ledger_rows(app, "other")[before:]
    assert [r["status"] for r in added] == ["rejected"] and "malformed" in added[0]["detail"]
    # The test processor reads body["events"] unguarded: a KeyError is its bug, not bad input.
    response = client.post("/webhooks/other", data='{"id": "no-events"}', headers={"X-Test-Token": "test-token"})
    assert_error(response, 500)
    assert "KeyError" in json_log.getvalue()
    assert len(ledger_rows(app, "other")) == before + 1  # nothing recorded: the vendor retries once it is fixed


def test_refund_of_an_unknown_payment_asks_the_vendor_to_retry(app, client, user):
    product = _plan_product(client, tier=1)
    sub = f"sub-{uuid.uuid4().hex[:8]}"
    refund = [{"kind": "refunded", "payment": f"{sub}-pay", "at": ms(0.01)}]
    assert_error(post_test_webhook(client, f"{sub}-refund", refund), 503)
    assert_ok(post_test_webhook(client, f"{sub}-start", [{"kind": "started", "subscription": sub, "at": ms(),
                                                           "user": user["user_id"], "product": product,
                                                           "until": ms(30), "payment": f"{sub}-pay"}]))
    assert self_user(client, user)["tier"] == 1
    assert assert_ok(post_test_webhook(client, f"{sub}-refund", refund))["payload"]["outcome"] == "applied"
    assert self_user(client, user)["tier"] == 0


def test_webhook_for_an_unknown_payer_is_recorded_and_ignored(app, client):
    product = _plan_product(client)
    events = [{"kind": "started", "subscription": "ghost", "at": ms(), "email": "ghost@example.com",
               "product": product, "until": ms(30)}]
    assert assert_ok(post_test_webhook(client, "ghost-1", events))["payload"]["outcome"] == "ignored"
    assert [r["status"] for r in ledger_rows(app, "other") if r["event_id"] == "ghost-1"] == ["ignored"]


def test_webhook_matches_the_payer_by_email(client, user):
    product = _plan_product(client, tier=1)
    events = [{"kind": "started", "subscription": f"mail-{uuid.uuid4().hex[:6]}", "at": ms(), "email": user["email"].upper(),
               "product": product, "until": ms(30)}]
    assert_ok(post_test_webhook(client, f"mail-{uuid.uuid4().hex}", events))
    assert self_user(client, user)["tier"] == 1


# --- cancellation -------------------------------------------------------------------------


def test_cancel_membership_stops_renewal_at_period_end(client, user):
    assert assert_ok(client.delete("/cancelMembership", headers=user["headers"]))["payload"]["success"] is False
    product = _plan_product(client, tier=1)
    sub = f"sub-{uuid.uuid4().hex[:8]}"
    assert_ok(post_test_webhook(client, f"{sub}-s", [{"kind": "started", "subscription": sub, "at": ms(),
                                                       "user": user["user_id"], "product": product, "until": ms(30)}]))
    result = assert_ok(client.delete("/cancelMembership", headers=user["headers"]))["payload"]
    assert result["success"] is True and "will not renew" in result["message"]
    me = self_user(client, user)
    assert me["tier"] == 1 and "nextBillingDate" not in me["subscriptions"][0]
    assert assert_ok(client.delete("/cancelMembership", headers=user["headers"]))["payload"]["success"] is False
    assert_error(client.delete("/cancelMembership", headers=new_session_headers()), 401)


def test_cancel_membership_mails_instructions_when_the_vendor_cannot(services, make_app):
    from tests.plugins import every_hook

    class NoCancel(every_hook.TestPayments):
        def cancel_at_period_end(self, subscription):
            return False

    class Plugin:
        from aimg_app.plugin_api import hookimpl

        @hookimpl
        def register_payment_processors(self):
            return [NoCancel]

    app = make_app(plugins=[Plugin()])
    client = app.test_client()
    user = sign_up(client)
    product = create_plan(client, tier=1)["prices"][0]["productID"]
    assert_ok(post_test_webhook(client, "nc-1", [{"kind": "started", "subscription": "nc", "at": ms(),
                                                   "user": user["user_id"], "product": product, "until": ms(30)}]))
    result = assert_ok(client.delete("/cancelMembership", headers=user["headers"]))["payload"]
    assert result["success"] is True and "email" in result["message"]
    [mail] = mails_to(services, user["email"])
    assert "cancel" in mail["Subject"].lower() and "Test payments" in body_text(mail)
    assert self_user(client, user)["subscriptions"][0]["nextBillingDate"]  # still renews until the user acts


# --- card payments ------------------------------------------------------------------------

CARD = {"merchantProcessor": "other", "cardNumber": "4242 4242 4242 4242", "cardHolderName": "Ada Lovelace",
        "expirationMonth": 12, "expirationYear": utcnow().year + 2, "securityCode": "987", "country": "GB",
        "stateOrProvince": "LN", "city": "London", "postalCode": "N1"}


def test_card_subscription_validates_and_never_leaks_card_data(app, client, user, json_log):
    product = create_plan(client, tier=2)["prices"][0]["productID"]
    body = {**CARD, "productID": product}
    cases = [({"cardNumber": "4242 4242 4242 4241"}, "cardNumber"), ({"expirationMonth": 13}, "expirationMonth"),
             ({"expirationYear": 2001}, "expired"), ({"securityCode": "98"}, "securityCode"),
             ({"securityCode": "9876"}, "securityCode"), ({"country": "XX"}, "country"),
             ({"stateOrProvince": "London"}, "stateOrProvince"), ({"merchantProcessor": "nope"}, "merchantProcessor"),
             ({"productID": "no-such"}, "productID")]
    for change, word in cases:
        response = client.post("/processCardSubscription", json={**body, **change}, headers=user["headers"])
        assert response.status_code in (400, 404), response.get_data(as_text=True)
        assert word.lower() in response.get_json()["errorMessage"].lower()
        assert "4242" not in response.get_data(as_text=True) and "987" not in response.get_data(as_text=True)
    declined = {**body, "cardNumber": "4000000000000002"}
    assert_error(client.post("/processCardSubscription", json=declined, headers=user["headers"]), 400, "declined")
    assert self_user(client, user)["tier"] == 0
    result = assert_ok(client.post("/processCardSubscription", json=body, headers=user["headers"]))["payload"]
    assert result["success"] is True
    assert self_user(client, user)["tier"] == 2
    assert_no_card_data(app, json_log.getvalue(), ["4242424242424242", "4242 4242 4242 4242", "4000000000000002"],
                         ["987"])


def test_card_subscription_needs_a_known_payer(client):
    product = create_plan(client, tier=1)["prices"][0]["productID"]
    assert_error(client.post("/processCardSubscription", json={**CARD, "productID": product},
                             headers=new_session_headers()), 401)
    someone = sign_up(client)
    body = {**CARD, "productID": product, "billingEmail": someone["email"]}
    assert_ok(client.post("/processCardSubscription", json=body, headers=new_session_headers()))
    assert self_user(client, someone)["tier"] == 1


# --- pay-with-card email -------------------------------------------------------------------


def test_pay_with_card_email(services, client, user):
    assert assert_ok(client.post("/payWithCardEmail", json={}, headers=user["headers"]))["payload"] == {"success": True}
    [mail] = mails_to(services, user["email"])
    assert "card" in mail["Subject"].lower() and "http://localhost:3000/pro" in body_text(mail)
    other = f"someone-{uuid.uuid4().hex[:6]}@example.com"
    assert_ok(client.post("/payWithCardEmail", json={"email": other}, headers=new_session_headers()))
    assert mails_to(services, other)
    assert_error(client.post("/payWithCardEmail", json={}, headers=new_session_headers()), 400, "email")
    assert_error(client.post("/payWithCardEmail", json={"email": "not-an-email"}), 400, "email")


def test_a_fault_while_applying_leaves_the_delivery_for_the_vendors_retry(app, client, user, monkeypatch):
    import pymongo.errors

    from aimg_app.services import subscriptions

    product = _plan_product(client, tier=1)
    real = subscriptions.apply_event
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise pymongo.errors.ServerSelectionTimeoutError("database down")
        return real(*args, **kwargs)

    monkeypatch.setattr(subscriptions, "apply_event", flaky)
    events = [{"kind": "started", "subscription": "flaky", "at": ms(), "user": user["user_id"], "product": product,
               "until": ms(30)}]
    assert_error(post_test_webhook(client, "flaky-1", events), 503)
    assert [r["status"] for r in ledger_rows(app, "other") if r["event_id"] == "flaky-1"] == ["received"]
    assert self_user(client, user)["tier"] == 0
    assert assert_ok(post_test_webhook(client, "flaky-1", events))["payload"]["outcome"] == "applied"
    assert assert_ok(post_test_webhook(client, "flaky-1", events))["payload"]["outcome"] == "duplicate"
    assert self_user(client, user)["tier"] == 1 and len(calls) == 2


def test_card_payment_emails_are_limited_per_address_from_any_client(make_app):
    limited = make_app(card_email_rate_limit_per_email="2 per hour")
    target = f"inbox-{uuid.uuid4().hex[:8]}@example.com"
    statuses = [limited.test_client().post("/payWithCardEmail", json={"email": target},
                                           headers=new_session_headers()).status_code for _ in range(4)]
    assert statuses == [200, 200, 429, 429]
