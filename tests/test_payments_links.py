"""Payment links as getBillingPlans builds them: a processor whose payment_url raises costs
only its own link (logged), and redirectURL/paymentURL cannot smuggle anything into a link."""
from __future__ import annotations

import logging
import sys
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from aimg_app.plugin_api import PaymentProcessor, hookimpl
from tests.conftest import assert_error, assert_ok, sign_up
from tests.support.billing import create_plan


class FragileProcessor(PaymentProcessor):
    """The shape of the example in docs/plugins.md before it checked for a payer."""

    identifier = "other"
    label = "Fragile"

    def payment_url(self, checkout):
        if checkout.price.product_id.startswith("boom"):
            raise RuntimeError("vendor SDK exploded")
        return f"https://pay.example/buy?sku={checkout.price.product_id}&ref={checkout.payer.user_id}"


@hookimpl
def register_payment_processors():
    return [FragileProcessor]


@pytest.fixture(scope="module")
def app(make_app):
    return make_app(plugins=[sys.modules[__name__]],
                    plugin_settings={"epoch": {"hmac_key": "k", "co_code": "abc", "pi_codes": {"link-ep": "PI1", "boom-1": "PI2"}}})


def offered(client, product, headers=None, query=""):
    plans = assert_ok(client.get(f"/getBillingPlans{query}", headers=headers or {}))["payload"]
    [plan] = [p for p in plans if p["prices"][0]["productID"] == product]
    return {p["paymentProvider"]: p["paymentUrl"] for p in plan["prices"][0]["paymentProviders"]}


def test_a_raising_payment_url_omits_that_link_and_logs(client, caplog):
    create_plan(client, tier=1, providers=("other",), product_id="fragile-1")
    create_plan(client, tier=2, providers=("other", "epoch"), product_id="boom-1")
    user = sign_up(client)
    with caplog.at_level(logging.ERROR, logger="aimg.billing"):
        assert offered(client, "fragile-1") == {}  # no payer: the processor raises AttributeError
        assert set(offered(client, "boom-1", user["headers"])) == {"epoch"}
    failures = [r for r in caplog.records if "payment link" in r.getMessage()]
    assert len(failures) >= 2 and all(r.exc_info for r in failures)
    assert offered(client, "fragile-1", user["headers"]) == {
        "other": f"https://pay.example/buy?sku=fragile-1&ref={user['user_id']}"}


@pytest.mark.parametrize("url", [
    "http://localhost:3000@evil.example/", "http://localhost:3000.evil.example/", "http://evil.example/?http://localhost:3000/",
    "https://localhost:3000/", "http://localhost:3001/", "javascript:alert(1)//http://localhost:3000/",
    "http://localhost:3000/a b", 'http://localhost:3000/"><script>', "http://localhost:3000/%zz",
    "http://localhost:3000/\\evil", "http://localhost:3000/\r\nX-Injected: 1", "http://localhost:3000/é",
    "http://user:pw@localhost:3000/", "//localhost:3000/", "http://localhost:3000:99999/",
])
def test_redirect_urls_outside_the_front_end_are_refused(client, url):
    assert_error(client.get(f"/getBillingPlans?redirectURL={quote(url, safe='')}"), 400, "redirectURL")
    assert_error(client.get(f"/getBillingPlans?paymentURL={quote(url, safe='')}"), 400, "paymentURL")


def test_a_redirect_url_travels_as_one_value(client):
    create_plan(client, tier=1, providers=("epoch",), product_id="link-ep")
    user = sign_up(client)
    back = "http://LOCALHOST:3000/thanks?a=1&member_id=2&pi_code=FREE#x"
    link = offered(client, "link-ep", user["headers"], f"?redirectURL={quote(back, safe='')}")["epoch"]
    query = parse_qs(urlsplit(link).query)
    assert query["pi_returnurl"] == [back] and query["pi_code"] == ["PI1"] and "member_id" not in query
