"""getAffiliateAd: ads come from affiliate-ad plugins."""
from __future__ import annotations

from tests.conftest import assert_error, assert_ok


def test_the_first_party_plugin_serves_a_house_ad_by_default(client):
    payload = assert_ok(client.get("/getAffiliateAd"))["payload"]
    assert set(payload) == {"adText", "adLink"}
    assert payload["adLink"] == "http://localhost:3000/pro"


def test_configured_ads_are_served_per_domain(make_app):
    app = make_app(plugin_settings={"affiliate_ads": {"ads": [
        {"text": "Only here", "link": "https://a.example/?ref=1", "domains": ["localhost"]},
        {"text": "Elsewhere", "link": "https://b.example/?ref=2", "domains": ["other.example"]},
    ]}})
    client = app.test_client()
    for _ in range(10):
        assert assert_ok(client.get("/getAffiliateAd"))["payload"] == {"adText": "Only here", "adLink": "https://a.example/?ref=1"}


def test_no_ad_available_is_404(make_app):
    client = make_app(plugin_settings={"affiliate_ads": {"ads": []}}).test_client()
    assert_error(client.get("/getAffiliateAd"), 404, "affiliate ad")


def test_a_third_party_provider_is_consulted(make_app):
    from tests.plugins import every_hook

    app = make_app(plugins=[every_hook], plugin_settings={"affiliate_ads": {"ads": []}, "test_ads": {"enabled": True}})
    assert assert_ok(app.test_client().get("/getAffiliateAd"))["payload"]["adText"] == "test ad for localhost"


def test_a_disabled_plugin_serves_nothing(make_app):
    client = make_app(disabled_plugins=("affiliate_ads",)).test_client()
    assert_error(client.get("/getAffiliateAd"), 404)
