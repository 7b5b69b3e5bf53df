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


def test_a_provider_that_raises_leaves_the_other_ads_served(make_app, json_log):
    from aimg_app.plugin_api import AffiliateAdProvider, hookimpl

    class Broken(AffiliateAdProvider):
        identifier, label = "broken_ads", "Broken"

        def ads(self, domain):
            raise RuntimeError("a bug in the plugin")

    class Plugin:
        @hookimpl
        def register_affiliate_ad_providers(self):
            return [Broken]

    client = make_app(plugins=[Plugin()]).test_client()
    payload = assert_ok(client.get("/getAffiliateAd"))["payload"]
    assert payload["adLink"] == "http://localhost:3000/pro"  # the first-party ad, still served
    assert "broken_ads" in json_log.getvalue() and "a bug in the plugin" in json_log.getvalue()
