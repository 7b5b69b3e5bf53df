"""Gift cards through the HTTP API: download (admins), single-use redemption under
concurrency, the tier rules of redemption."""
from __future__ import annotations

import datetime as dt
import re
import threading
from concurrent.futures import ThreadPoolExecutor

from aimg_app.models.base import utcnow
from tests.conftest import ADMIN_HEADERS, assert_error, assert_ok, new_session_headers, sign_up
from tests.support.billing import ledger_rows, self_user


def download(client, **params) -> list[str]:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    response = client.get(f"/downloadGiftCards?{query}", headers=ADMIN_HEADERS)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/plain"
    assert "attachment" in response.headers["Content-Disposition"]
    return [line for line in response.get_data(as_text=True).splitlines() if line]


def test_download_creates_unguessable_codes_stored_hashed(client):
    codes = download(client, numberOfCards=5, tier=2, days=7, usdPrice=4.5)
    assert len(codes) == len(set(codes)) == 5
    assert all(re.fullmatch(r"[2-9A-HJ-NP-Z]{4}(-[2-9A-HJ-NP-Z]{4}){3}", c) for c in codes)
    from aimg_app.models.billing import GiftCard

    with client.application.app_context():
        stored = {c.code_hash for c in GiftCard.objects}
    assert not any(code in stored or code.replace("-", "") in stored for code in codes)
    assert len(stored) >= 5


def test_download_needs_an_admin_and_valid_parameters(client, user):
    assert_error(client.get("/downloadGiftCards?numberOfCards=1"), 403)
    assert_error(client.get("/downloadGiftCards?numberOfCards=1", headers=user["headers"]), 403)
    assert_error(client.get("/downloadGiftCards?numberOfCards=0", headers=ADMIN_HEADERS), 400, "numberOfCards")
    assert_error(client.get("/downloadGiftCards?distributionProvider=amazon", headers=ADMIN_HEADERS), 400,
                 "distributionProvider")
    assert_error(client.get("/downloadGiftCards?tier=0", headers=ADMIN_HEADERS), 400, "tier")


def test_external_codes(client, user):
    codes = download(client, externalCodes="G2A-ABCD-1111,g2a-abcd-2222", distributionProvider="g2a", days=30)
    assert codes == ["G2A-ABCD-1111", "g2a-abcd-2222"]
    assert_error(client.get("/downloadGiftCards?externalCodes=G2A-ABCD-1111", headers=ADMIN_HEADERS), 409)
    redeemed = assert_ok(client.post("/redeemGiftCard", json={"code": "g2aabcd2222"}, headers=user["headers"]))["payload"]
    assert redeemed["productID"] == "g2a-tier1-30d" and redeemed["tier"] == 1
    assert self_user(client, user)["merchantProcessor"] == "g2a"


def test_redeem_grants_the_tier_for_its_days(app, client, user):
    [code] = download(client, numberOfCards=1, tier=2, days=10)
    before = utcnow()
    result = assert_ok(client.post("/redeemGiftCard", json={"code": code.lower()}, headers=user["headers"]))["payload"]
    assert result["tier"] == 2 and result["productID"] == "giftcard-tier2-10d"
    expires = dt.datetime.fromisoformat(result["tierExpiration"].rstrip("Z"))
    assert dt.timedelta(days=10) <= expires - before < dt.timedelta(days=10, minutes=1)
    me = self_user(client, user)
    assert me["tier"] == 2 and me["merchantProcessor"] == "giftcard" and me["tierExpiration"] == result["tierExpiration"]
    assert_error(client.post("/redeemGiftCard", json={"code": code}, headers=sign_up(client)["headers"]), 409,
                 "already been redeemed")
    assert any(r["event_type"] == "giftcard.redeemed" and r["status"] == "applied" for r in ledger_rows(app, "giftcard"))


def test_redeem_refuses_bad_codes_and_anonymous_callers(client, user):
    assert_error(client.post("/redeemGiftCard", json={"code": "NOPE-NOPE-NOPE-NOPE"}, headers=user["headers"]), 404)
    [code] = download(client, numberOfCards=1)
    assert_error(client.post("/redeemGiftCard", json={"code": code}, headers=new_session_headers()), 401)
    assert_error(client.post("/redeemGiftCard", json={"code": code}), 400, "X-Session-ID")
    assert_error(client.post("/redeemGiftCard", json={}, headers=user["headers"]), 400, "code")


def test_one_card_redeemed_by_twenty_parallel_requests_succeeds_once(app, client):
    [code] = download(client, numberOfCards=1, tier=1, days=30)
    users = [sign_up(client), sign_up(client)]
    start = threading.Barrier(20)

    def attempt(index):
        local = app.test_client()
        start.wait(timeout=30)
        return local.post("/redeemGiftCard", json={"code": code}, headers=users[index % 2]["headers"]).status_code

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(attempt, range(20)))
    assert statuses.count(200) == 1, statuses
    assert set(statuses) <= {200, 409}
    tiers = [self_user(client, u)["tier"] for u in users]
    assert sorted(tiers) == [0, 1]


def test_an_equal_or_higher_active_tier_refuses_the_card(client, user):
    assert_ok(client.post("/setAdminProvidedPremiumTier", headers=ADMIN_HEADERS, json={
        "productId": "staff", "email": user["email"], "tier": 2, "isActive": True}))
    lower, same, higher = download(client, numberOfCards=1, tier=1), download(client, numberOfCards=1, tier=2), \
        download(client, numberOfCards=1, tier=3)
    assert_error(client.post("/redeemGiftCard", json={"code": lower[0]}, headers=user["headers"]), 409, "equal to or higher")
    assert_error(client.post("/redeemGiftCard", json={"code": same[0]}, headers=user["headers"]), 409)
    assert_ok(client.post("/redeemGiftCard", json={"code": higher[0]}, headers=user["headers"]))
    assert self_user(client, user)["tier"] == 3
    # the refused cards were not used up
    other = sign_up(client)
    assert_ok(client.post("/redeemGiftCard", json={"code": lower[0]}, headers=other["headers"]))


def test_a_card_of_the_same_tier_extends_an_expiring_tier(client, user):
    [first, second] = download(client, numberOfCards=2, tier=1, days=10)
    one = assert_ok(client.post("/redeemGiftCard", json={"code": first}, headers=user["headers"]))["payload"]
    # a gift-card tier ends and does not renew: it is enqueued for expiration, so another card is allowed
    two = assert_ok(client.post("/redeemGiftCard", json={"code": second}, headers=user["headers"]))["payload"]
    end_one = dt.datetime.fromisoformat(one["tierExpiration"].rstrip("Z"))
    end_two = dt.datetime.fromisoformat(two["tierExpiration"].rstrip("Z"))
    assert end_two - end_one == dt.timedelta(days=10)
    assert self_user(client, user)["tierExpiration"] == two["tierExpiration"]


def test_guessing_codes_is_limited_per_user_even_in_parallel(make_app):
    limited = make_app(gift_card_attempts_per_user="5 per hour")
    guesser = sign_up(limited.test_client())

    def attempt(i):
        return limited.test_client().post("/redeemGiftCard", json={"code": f"GUESS-{i:04d}-AAAA-BBBB"},
                                          headers=guesser["headers"]).status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(attempt, range(12)))
    assert statuses.count(404) == 5 and statuses.count(429) == 7, statuses


def test_two_cards_redeemed_at_once_each_add_their_period(app, client):
    """The attack (or an honest double click): redeem two valid cards in parallel and get one period for two."""
    for tier_before in (False, True):
        user = sign_up(client)
        if tier_before:  # stacking on an expiring card of the same tier, too
            [first] = download(client, numberOfCards=1, tier=1, days=10)
            assert_ok(client.post("/redeemGiftCard", json={"code": first}, headers=user["headers"]))
        before = self_user(client, user).get("tierExpiration")
        codes = download(client, numberOfCards=4, tier=1, days=10)
        start = threading.Barrier(len(codes))

        def attempt(code):
            local = app.test_client()
            start.wait(timeout=30)
            return local.post("/redeemGiftCard", json={"code": code}, headers=user["headers"]).status_code

        with ThreadPoolExecutor(max_workers=len(codes)) as pool:
            assert list(pool.map(attempt, codes)) == [200] * len(codes)
        end = dt.datetime.fromisoformat(self_user(client, user)["tierExpiration"].rstrip("Z"))
        base = dt.datetime.fromisoformat(before.rstrip("Z")) if before else utcnow()
        assert abs(end - base - dt.timedelta(days=10 * len(codes))) < dt.timedelta(minutes=2), (before, end)
