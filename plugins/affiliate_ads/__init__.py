"""Affiliate ads from configuration.

Settings (``[plugins.affiliate_ads]`` or ``AIMG_PLUGIN_SETTINGS``)::

    ads = [
      {text = "Try X", link = "https://x.example/?ref=aimg", weight = 2, domains = ["aimg.example"]},
    ]

``domains`` is optional (every domain when absent). With no ``ads`` setting, one house ad
points at the domain's own PRO page, so a fresh deployment answers something sensible.
"""
from __future__ import annotations

from aimg_app.plugin_api import AffiliateAd, AffiliateAdProvider, Domain, hookimpl


class ConfiguredAffiliateAds(AffiliateAdProvider):
    identifier = "affiliate_ads"
    label = "Affiliate ads from configuration"

    def __init__(self, settings):
        super().__init__(settings)
        self._ads = []
        for raw in self.settings.get("ads", []):
            text, link = str(raw.get("text", "")).strip(), str(raw.get("link", "")).strip()
            weight = float(raw.get("weight", 1))
            if not text or not link or weight <= 0:
                raise ValueError("each affiliate ad needs a text, a link and a positive weight")
            self._ads.append((AffiliateAd(text, link, weight), tuple(raw.get("domains", ()))))

    def ads(self, domain: Domain) -> list[AffiliateAd]:
        if "ads" not in self.settings:
            origin = domain.origins[0] if domain.origins else f"https://{domain.identifier}"
            return [AffiliateAd(f"Go PRO on {domain.display_name}: faster, bigger, more", f"{origin}/pro")]
        return [ad for ad, domains in self._ads if not domains or domain.identifier in domains]


@hookimpl
def register_affiliate_ad_providers():
    return [ConfiguredAffiliateAds]
