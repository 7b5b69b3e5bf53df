"""boosty: admin cookies stored encrypted for 7 days, the subscriber sync against a fake
Boosty API, links to the blog's levels."""
from __future__ import annotations

import datetime as dt
import time

import pytest

from aimg_app.models.base import utcnow
from aimg_app.services import memberships
from tests.conftest import ADMIN_HEADERS, assert_error, assert_ok, sign_up
from tests.support.billing import create_plan, self_user
from tests.support.fake_vendors import FakeBoosty

TOKEN = "boosty-access-token-0123456789"


@pytest.fixture(scope="module")
def fake():
    server = FakeBoosty("sexyai", TOKEN).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def app(make_app, fake):
    return make_app(plugin_settings={"boosty": {"blog": "sexyai", "levels": {"42": "boosty-gold"}, "api_base": fake.url}})


def test_cookie_injection_is_admin_only_and_validated(client, fake, user):
    body = {"accountId": "sexyai", "cookies": fake.cookies()}
    assert_error(client.post("/injectBoostyAdminAccountCookies", json=body), 403)
    assert_error(client.post("/injectBoostyAdminAccountCookies", json=body, headers=user["headers"]), 403)
    assert_error(client.post("/injectBoostyAdminAccountCookies", json={**body, "cookies": []}, headers=ADMIN_HEADERS),
                 400, "cookies")
    assert_error(client.post("/injectBoostyAdminAccountCookies", json={**body, "accountId": "a/b"},
                             headers=ADMIN_HEADERS), 400, "accountId")
    assert_error(client.post("/injectBoostyAdminAccountCookies", json={**body, "domainIdentifier": "nope.example"},
                             headers=ADMIN_HEADERS), 400, "domainIdentifier")


def test_sync_with_injected_cookies(app, client, fake):
    user = sign_up(client)
    create_plan(client, tier=2, providers=("boosty",), product_id="boosty-gold")
    plans = assert_ok(client.get("/getBillingPlans"))["payload"]
    [link] = [p for p in plans if p["prices"][0]["productID"] == "boosty-gold"][0]["prices"][0]["paymentProviders"]
    assert link["paymentUrl"].startswith("https://boosty.to/sexyai/purchase/42")

    now = int(time.time())
    fake.subscribers[:] = [{"id": 501, "email": user["email"], "subscribed": True, "level": {"id": 42},
                            "onTime": now - 86400, "nextPayTime": now + 29 * 86400},
                           {"id": 502, "email": "stranger@example.com", "subscribed": True, "level": {"id": 42},
                            "onTime": now}]
    assert assert_ok(client.post("/injectBoostyAdminAccountCookies", headers=ADMIN_HEADERS, json={
        "accountId": "sexyai", "domainIdentifier": "localhost", "cookies": fake.cookies()}))["payload"] == {"success": True}
    resources = app.extensions["aimg"]
    from aimg_app.models.billing import VendorCredentials

    with app.app_context():
        [stored] = VendorCredentials.objects(processor="boosty")
        assert TOKEN not in stored.ciphertext and "auth" not in stored.ciphertext
        assert dt.timedelta(days=6, hours=23) < stored.expires_date - utcnow() <= dt.timedelta(days=7)
        counts = memberships.poll_processors(resources)
    assert counts["boosty"] == 2
    assert fake.calls("GET", "/v1/blog/sexyai/subscribers")[-1].headers["authorization"] == f"Bearer {TOKEN}"
    with app.app_context():
        calls = len(fake.seen)
        # after 7 days the cookies are no longer used
        memberships.poll_processors(resources, now=utcnow() + dt.timedelta(days=7, minutes=1))
        assert len(fake.seen) == calls


def test_a_subscriber_matched_only_by_email_is_held_for_review(app, client, fake):
    """The attacks: subscribe with the victim's address (or mistype one's own), or open an
    account with the address a subscriber uses. Boosty's links carry nothing of ours and
    Boosty does not say it verified the address, so no email match grants: the subscriber is
    recorded for an admin to review (who grants with setAdminProvidedPremiumTier)."""
    from aimg_app.models import User
    from tests.support.billing import ledger_rows

    victim = sign_up(client)
    with app.app_context():
        User.objects(id=victim["user_id"]).update_one(set__email_verified=True)
    create_plan(client, tier=2, providers=("boosty",), product_id="boosty-gold-2")
    now = int(time.time())
    fake.subscribers[:] = [{"id": 777, "email": victim["email"], "subscribed": True, "level": {"id": 42},
                            "onTime": now - 60, "nextPayTime": now + 30 * 86400}]
    assert_ok(client.post("/injectBoostyAdminAccountCookies", headers=ADMIN_HEADERS, json={
        "accountId": "sexyai", "domainIdentifier": "localhost", "cookies": fake.cookies()}))
    with app.app_context():
        memberships.poll_processors(app.extensions["aimg"])
    assert self_user(client, victim)["tier"] == 0
    [row] = [r for r in ledger_rows(app, "boosty") if r["event_id"].startswith("poll:sexyai:777:")]
    assert row["status"] == "review" and victim["user_id"] in row["detail"]


def test_a_notification_forged_from_a_level_link_is_refused(client):
    """Boosty sends no webhooks: only the sync with the admin's cookies changes a tier."""
    user = sign_up(client)
    create_plan(client, tier=2, providers=("boosty",), product_id="boosty-link")
    plans = assert_ok(client.get("/getBillingPlans", headers=user["headers"]))["payload"]
    assert not [p for p in plans if p["prices"][0]["productID"] == "boosty-link"][0]["prices"][0]["paymentProviders"]
    url = "https://boosty.to/sexyai/purchase/42?ssource=DIRECT&share_to=pay"  # the link of a mapped level
    forged = {"id": 501, "email": user["email"], "subscribed": True, "level": {"id": 42}, "link": url}
    assert_error(client.post("/webhooks/boosty", json=forged), 404)
    assert_error(client.get(f"/webhooks/boosty?email={user['email']}&level=42"), 404)
    assert self_user(client, user)["tier"] == 0
