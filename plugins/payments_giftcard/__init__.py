"""Gift cards as a payment provider: the tier a redeemed gift card grants (see
``downloadGiftCards``/``redeemGiftCard``), and the link to the shop that sells them.

Settings (``[plugins.giftcard]``): ``shop_url`` (where gift cards are sold; the price's
``paymentUrl`` when set).
"""
from __future__ import annotations

from aimg_app.plugin_api import PaymentProcessor, hookimpl


class GiftCardProcessor(PaymentProcessor):
    identifier = "giftcard"
    label = "Gift card"

    def payment_url(self, checkout):
        return self.settings.get("shop_url") or None

    def cancellation_instructions(self, domain):
        return (f"Your {domain.display_name} PRO tier comes from a gift card: it does not renew and there is "
                "nothing to cancel. It ends on its own at the date shown in your account.")


@hookimpl
def register_payment_processors():
    return [GiftCardProcessor]
