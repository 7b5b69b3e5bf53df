"""giftcard and admin processors: the shop link, and the providers' names on the tiers they grant."""
from __future__ import annotations

import pytest

from tests.conftest import ADMIN_HEADERS, assert_ok
from tests.support.billing import create_plan, self_user


@pytest.fixture(scope="module")
def app(make_app):
    return make_app(plugin_settings={"giftcard": {"shop_url": "https://shop.example/giftcards"}})


def test_gift_card_shop_link_and_grant(client, user):
    product = create_plan(client, tier=1, providers=("giftcard", "admin"))["prices"][0]["productID"]
    plans = assert_ok(client.get("/getBillingPlans"))["payload"]
    [price] = [p for p in plans if p["prices"][0]["productID"] == product][0]["prices"]
    # admin grants are never sold: no link, so not offered
    assert price["paymentProviders"] == [{"paymentProvider": "giftcard", "paymentLabel": "Gift card",
                                          "paymentUrl": "https://shop.example/giftcards"}]
    [code] = client.get("/downloadGiftCards?numberOfCards=1", headers=ADMIN_HEADERS).get_data(as_text=True).split()
    assert_ok(client.post("/redeemGiftCard", json={"code": code}, headers=user["headers"]))
    assert self_user(client, user)["merchantProcessor"] == "giftcard"


def test_admin_grant_is_the_admin_processor(client, user):
    assert_ok(client.post("/setAdminProvidedPremiumTier", headers=ADMIN_HEADERS, json={
        "productId": "press", "email": user["email"], "tier": 2, "isActive": True}))
    me = self_user(client, user)
    assert me["merchantProcessor"] == "admin" and me["subscriptions"][0]["productID"] == "press"


@pytest.mark.parametrize("processor", ["giftcard", "admin"])
def test_a_notification_forged_from_the_shop_link_is_refused(client, processor):
    """Gift cards and admin grants take no webhooks: a post naming the shop link and a tier
    changes nothing."""
    from tests.conftest import assert_error, sign_up

    buyer = sign_up(client)
    forged = {"link": "https://shop.example/giftcards", "email": buyer["email"], "userId": buyer["user_id"],
              "tier": 3, "status": "paid"}
    assert_error(client.post(f"/webhooks/{processor}", json=forged), 404)
    assert_error(client.post(f"/webhooks/{processor}", data=forged), 404)
    assert self_user(client, buyer)["tier"] == 0
