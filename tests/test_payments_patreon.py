"""The patreon processor: join links, member webhooks signed with X-Patreon-Signature
(HMAC-MD5), matching by connected account or email, cancellation by instructions mail."""
from __future__ import annotations

import datetime as dt

import pytest

from tests.conftest import assert_error, assert_ok, sign_up
from tests.support.billing import body_text, create_plan, ledger_rows, mails_to, self_user
from tests.support.fake_vendors import patreon_member, patreon_signature

SECRET = "patreon-webhook-secret"


@pytest.fixture(scope="module")
def app(make_app):
    return make_app(plugin_settings={"patreon": {"webhook_secret": SECRET, "creator": "aimgcreator",
                                                 "tiers": {"1001": "patreon-gold"}}})


@pytest.fixture(scope="module", autouse=True)
def gold_plan(app):
    create_plan(app.test_client(), tier=3, providers=("patreon",), product_id="patreon-gold")


def iso(days: float) -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S.000+00:00")


def deliver(client, trigger: str, body: str, secret: str = SECRET):
    return client.post("/webhooks/patreon", data=body, headers={
        "X-Patreon-Event": trigger, "X-Patreon-Signature": patreon_signature(secret, body.encode()),
        "Content-Type": "application/json"})


def test_pledge_renewal_delete_and_refund(app, services, client):
    user = sign_up(client)
    verify_email(app, user)
    plans = assert_ok(client.get("/getBillingPlans"))["payload"]
    [link] = [p for p in plans if p["prices"][0]["productID"] == "patreon-gold"][0]["prices"][0]["paymentProviders"]
    assert link["paymentUrl"] == "https://www.patreon.com/checkout/aimgcreator?rid=1001"

    paid = patreon_member("m-1", "pu-77", user["email"], "active_patron", "1001", iso(2), iso(-28))
    assert_ok(deliver(client, "members:pledge:create", paid))
    me = self_user(client, user)
    assert me["tier"] == 3 and me["merchantProcessor"] == "patreon" and me["subscriptions"][0]["payerID"] == "pu-77"
    assert assert_ok(deliver(client, "members:pledge:create", paid))["payload"]["outcome"] == "duplicate"

    renewed = patreon_member("m-1", "pu-77", user["email"], "active_patron", "1001", iso(60), iso(-0.01))
    assert_ok(deliver(client, "members:update", renewed))
    assert self_user(client, user)["tierExpiration"][:10] == iso(60)[:10]

    result = assert_ok(client.delete("/cancelMembership", headers=user["headers"]))["payload"]
    assert result["success"] is True and "email" in result["message"]
    [mail] = mails_to(services, user["email"])
    assert "patreon.com" in body_text(mail)

    deleted = patreon_member("m-1", "pu-77", user["email"], "former_patron", None, iso(60), iso(-0.01))
    assert_ok(deliver(client, "members:pledge:delete", deleted))
    me = self_user(client, user)
    assert me["tier"] == 3 and "nextBillingDate" not in me["subscriptions"][0]

    refunded = patreon_member("m-1", "pu-77", user["email"], "former_patron", None, None, iso(-0.01), "Refunded")
    assert_ok(deliver(client, "members:update", refunded))
    assert self_user(client, user)["tier"] == 0


def test_a_connected_patreon_account_matches_before_the_email(app, client):
    user = sign_up(client)
    from aimg_app.models import User
    from aimg_app.models.user import LoginProviderLink

    with app.app_context():
        User.objects(id=user["user_id"]).update_one(push__connect_providers=LoginProviderLink(
            provider_type="oauth", provider_id="Patreon", user_id="pu-connected"))
    paid = patreon_member("m-2", "pu-connected", "another-address@example.com", "active_patron", "1001", iso(30), iso(0))
    assert_ok(deliver(client, "members:pledge:create", paid))
    assert self_user(client, user)["tier"] == 3


def test_bad_signatures_are_refused(client):
    user = sign_up(client)
    paid = patreon_member("m-3", "pu-3", user["email"], "active_patron", "1001", iso(30), iso(0))
    assert_error(deliver(client, "members:pledge:create", paid, secret="not-the-secret"), 400)
    assert_error(client.post("/webhooks/patreon", data=paid, headers={"X-Patreon-Event": "members:create"}), 400)
    assert self_user(client, user)["tier"] == 0


def test_a_notification_forged_from_a_join_link_is_refused(client):
    user = sign_up(client)
    plans = assert_ok(client.get("/getBillingPlans", headers=user["headers"]))["payload"]
    [link] = [p for p in plans if p["prices"][0]["productID"] == "patreon-gold"][0]["prices"][0]["paymentProviders"]
    paid = patreon_member("m-link", "pu-link", user["email"], "active_patron", "1001", iso(30), iso(0))
    for secret in (link["paymentUrl"], "aimgcreator", "1001"):
        assert_error(deliver(client, "members:pledge:create", paid, secret=secret), 400)
    assert_error(client.post("/webhooks/patreon", data=paid, headers={
        "X-Patreon-Signature": patreon_signature(SECRET, paid.encode()), "Content-Type": "application/json"}), 400)
    assert_error(deliver(client, "members:gift", paid), 400)
    unpaid = patreon_member("m-link", "pu-link", user["email"], "active_patron", "1001", iso(30), iso(0), "Declined")
    assert_ok(deliver(client, "members:pledge:create", unpaid))
    assert self_user(client, user)["tier"] == 0


def verify_email(app, user):
    """The account's owner proved the mailbox (what an OTP sign-in records)."""
    from aimg_app.models import User

    with app.app_context():
        User.objects(id=user["user_id"]).update_one(set__email_verified=True)


def test_a_pledge_lands_only_on_an_account_whose_email_both_sides_verified(app, client):
    """The attacks: pledge with an address Patreon never verified (the victim's, or a typo),
    or open an account with the address a patron will pledge with. Patreon join links carry
    nothing of ours, so an email match grants only when Patreon says it verified the address
    and the account proved it too; otherwise the pledge is held for review."""
    before = len([r for r in ledger_rows(app, "patreon") if r["status"] == "review"])
    squatted = sign_up(client)  # opened with the patron's address, never proved
    unverified = patreon_member("m-sq", "pu-sq", squatted["email"], "active_patron", "1001", iso(30), iso(0))
    assert assert_ok(deliver(client, "members:pledge:create", unverified))["payload"]["outcome"] == "review"
    assert self_user(client, squatted)["tier"] == 0

    owner = sign_up(client)
    verify_email(app, owner)
    typed = patreon_member("m-ty", "pu-ty", owner["email"], "active_patron", "1001", iso(30), iso(0),
                           email_verified=False)
    assert assert_ok(deliver(client, "members:pledge:create", typed))["payload"]["outcome"] == "review"
    unstated = patreon_member("m-un", "pu-un", owner["email"], "active_patron", "1001", iso(30), iso(0),
                              email_verified=None)
    assert assert_ok(deliver(client, "members:pledge:create", unstated))["payload"]["outcome"] == "review"
    assert self_user(client, owner)["tier"] == 0

    proven = patreon_member("m-ok", "pu-ok", owner["email"], "active_patron", "1001", iso(30), iso(0))
    assert assert_ok(deliver(client, "members:pledge:create", proven))["payload"]["outcome"] == "applied"
    assert self_user(client, owner)["tier"] == 3
    rows = [r for r in ledger_rows(app, "patreon") if r["status"] == "review"]
    assert len(rows) == before + 3 and all("unverified email" in r["detail"] for r in rows[before:])
