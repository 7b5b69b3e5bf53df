"""whitelist: configured emails hold a tier, applied by the scheduled sync."""
from __future__ import annotations

import datetime as dt

import pytest

from aimg_app.services import memberships
from tests.conftest import sign_up
from tests.support.billing import ledger_rows, self_user

EMAIL, LATER, GONE = "staff-member@example.com", "partner@example.com", "former@example.com"


@pytest.fixture(scope="module")
def app(make_app):
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).isoformat()
    return make_app(plugin_settings={"whitelist": {"entries": [
        {"email": EMAIL, "tier": 3}, {"email": LATER, "tier": 1, "domains": ["other.example"]},
        {"email": GONE, "tier": 2, "until": past}]}})


def test_whitelisted_emails_get_their_tier(app, client):
    staff, partner, former = sign_up(client, email=EMAIL), sign_up(client, email=LATER), sign_up(client, email=GONE)
    with app.app_context():
        memberships.poll_processors(app.extensions["aimg"])
        memberships.poll_processors(app.extensions["aimg"])  # the same list again changes nothing
    me = self_user(client, staff)
    assert me["tier"] == 3 and me["merchantProcessor"] == "whitelist" and "tierExpiration" not in me
    assert self_user(client, partner)["tier"] == 0  # another domain's entry
    assert self_user(client, former)["tier"] == 0
    rows = ledger_rows(app, "whitelist")
    assert [r["status"] for r in rows].count("applied") == 2 and len(rows) == 2


def test_a_notification_forged_for_the_whitelist_is_refused(app, client):
    """Only the configured list grants: nothing posted to the whitelist's webhook does."""
    from tests.conftest import assert_error

    user = sign_up(client)
    before = len(ledger_rows(app, "whitelist"))
    forged = {"email": user["email"], "tier": 3, "until": "2099-01-01T00:00:00Z"}
    assert_error(client.post("/webhooks/whitelist", json=forged), 404)
    assert_error(client.get(f"/webhooks/whitelist?email={user['email']}&tier=3"), 404)
    assert self_user(client, user)["tier"] == 0
    assert len(ledger_rows(app, "whitelist")) == before
