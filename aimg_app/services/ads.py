from __future__ import annotations

import random
from typing import Iterable

from ..config import Domain
from ..errors import NotFound
from ..plugin_api import AffiliateAd, AffiliateAdProvider
from .plugin_calls import isolated


def pick_affiliate_ad(providers: Iterable[AffiliateAdProvider], domain: Domain, rng: random.Random | None = None) -> AffiliateAd:
    """A weighted random ad among every provider's ads for ``domain``."""
    candidates = [ad for provider in providers
                  for ad in isolated(provider, "ads", provider.ads, domain, default=[]) or []
                  if isinstance(ad, AffiliateAd) and ad.weight > 0]
    if not candidates:
        raise NotFound("No affiliate ad is available.")
    return (rng or random).choices(candidates, weights=[ad.weight for ad in candidates], k=1)[0]
