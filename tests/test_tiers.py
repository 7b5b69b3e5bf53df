"""The tier engine: the one reading of a tier, expiry by the scheduled job, renewal after expiry."""
from __future__ import annotations

import datetime as dt

from aimg_app.models import User
from aimg_app.models.base import epoch_ms, utcnow
from aimg_app.services import subscriptions, tiers
from tests.conftest import ADMIN_HEADERS, assert_ok
from tests.support.billing import create_plan, post_test_webhook, self_user


def test_expiry_job_drops_lapsed_tiers(app, client, user):
    soon = utcnow() + dt.timedelta(seconds=2)
    assert_ok(client.post("/setAdminProvidedPremiumTier", headers=ADMIN_HEADERS, json={
        "productId": "trial", "email": user["email"], "tier": 1, "isActive": True,
        "deactivationDate": soon.isoformat() + "Z"}))
    with app.app_context():
        u = User.objects(id=user["user_id"]).first()
        assert tiers.tier_of(u) == 1 and tiers.is_premium(u)
        # Before the job runs, readers already see 0 once the end has passed...
        later = soon + dt.timedelta(seconds=1)
        assert tiers.tier_state(u, now=later).tier == 0
        assert subscriptions.expire_lapsed(now=soon - dt.timedelta(seconds=1)) == 0
        # ...and the job materialises it.
        assert subscriptions.expire_lapsed(now=later) == 1
        u.reload()
        assert (u.tier, u.tier_expiration, u.merchant_processor) == (0, None, "none")
        from aimg_app.models.billing import Subscription

        assert Subscription.objects(user_id=user["user_id"]).first().status == "expired"
        assert subscriptions.expire_lapsed(now=later) == 0  # nothing left to do


def test_expiry_job_as_the_worker_runs_it(app, monkeypatch, client, user):
    """The RQ job function, called directly, on the app's own settings."""
    import workers.billing as jobs

    monkeypatch.setattr(jobs, "_resources", app.extensions["aimg"])
    assert isinstance(jobs.expire_lapsed_tiers(), int)
    assert isinstance(jobs.poll_payment_processors(), dict)


def test_a_renewal_after_expiry_brings_the_tier_back(app, client, user):
    product = create_plan(client, tier=2)["prices"][0]["productID"]
    t0 = utcnow() - dt.timedelta(days=40)
    assert_ok(post_test_webhook(client, "renew-1", [{"kind": "started", "subscription": "renew", "at": epoch_ms(t0),
                                                      "user": user["user_id"], "product": product,
                                                      "until": epoch_ms(t0 + dt.timedelta(days=30))}]))
    assert self_user(client, user)["tier"] == 0  # that period is over
    with app.app_context():
        subscriptions.expire_lapsed()
    assert_ok(post_test_webhook(client, "renew-2", [{"kind": "renewed", "subscription": "renew",
                                                      "at": epoch_ms(t0 + dt.timedelta(days=30)),
                                                      "until": epoch_ms(t0 + dt.timedelta(days=60))}]))
    me = self_user(client, user)
    assert me["tier"] == 2 and me["subscriptions"][0]["nextBillingDate"]


def test_equal_tiers_keep_the_longest_expiration(app, client, user):
    product = create_plan(client, tier=1)["prices"][0]["productID"]
    now = utcnow()
    for name, days in (("short", 5), ("long", 50)):
        assert_ok(post_test_webhook(client, f"eq-{name}", [{"kind": "started", "subscription": f"eq-{name}",
                                                             "at": epoch_ms(now), "user": user["user_id"],
                                                             "product": product,
                                                             "until": epoch_ms(now + dt.timedelta(days=days))}]))
    me = self_user(client, user)
    assert me["tierExpiration"][:10] == (now + dt.timedelta(days=50)).date().isoformat()
