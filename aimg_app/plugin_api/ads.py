"""The affiliate-ad plugin family: sources of the ads ``getAffiliateAd`` picks from."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ..config import Domain


@dataclass(frozen=True)
class AffiliateAd:
    """One ad: the text shown and the link it opens. ``weight`` makes it likelier (> 0)."""

    text: str
    link: str
    weight: float = 1.0


class AffiliateAdProvider:
    """Base class of an ad source. Subclass it and return the subclass from
    ``register_affiliate_ad_providers``; the core instantiates it once per application with
    the plugin's settings (``[plugins.<identifier>]`` of the configuration).

    ``identifier`` and ``label`` are required; ``ads`` has a safe default (no ads).
    """

    identifier: str = ""
    label: str = ""

    def __init__(self, settings: Mapping[str, Any]):
        """``settings``: this provider's configuration mapping (may be empty)."""
        if not self.identifier or not self.label:
            raise NotImplementedError(f"{type(self).__name__} must set identifier and label")
        self.settings = dict(settings)

    def ads(self, domain: Domain) -> list[AffiliateAd]:
        """The ads eligible on ``domain`` (a ``Domain``). Called on every ``getAffiliateAd``,
        so it must be cheap and must not perform network I/O; return ``[]`` for none."""
        return []
