"""Boosty: subscription links to the blog's levels, and a subscriber sync (Boosty has no
webhooks) that reads the blog's subscribers with the admin account's cookies, injected
through ``injectBoostyAdminAccountCookies`` (kept encrypted, valid for 7 days).

Settings (``[plugins.boosty]``): ``blog`` (the blog name in boosty.to URLs), ``levels``
(Boosty level id -> productID), ``api_base`` (``https://api.boosty.to``). The access
token is taken from the ``auth`` cookie (URL-encoded JSON with ``accessToken``).

Subscribers are known only by the email Boosty lists: its level links carry nothing of ours,
and Boosty does not state that it verified the address, so an email match never grants by
itself (a typo, or a payment with someone else's address, would land on the wrong account).
Each new subscriber is recorded in the ledger for an admin to review, who grants the tier with
``setAdminProvidedPremiumTier``. (A Boosty subscription granted before this rule is still
followed by the sync: it is found by its id, not by email.)
"""
from __future__ import annotations

import datetime as dt
import json
from urllib.parse import quote, unquote

import requests

from aimg_app.plugin_api import (
    CANCELLED,
    EMAIL_UNVERIFIED,
    STARTED,
    PaymentError,
    PaymentProcessor,
    SubscriptionEvent,
    epoch_seconds,
    hookimpl,
)

TIMEOUT_S = 20
PAGE = 100
MAX_PAGES = 500


def access_token(cookies) -> str | None:
    """The bearer token inside Boosty's ``auth`` cookie (exported cookie objects or "name=value" strings)."""
    for cookie in cookies or []:
        if isinstance(cookie, dict):
            name, value = cookie.get("name"), cookie.get("value")
        elif isinstance(cookie, str) and "=" in cookie:
            name, value = cookie.split("=", 1)
        else:
            continue
        if name == "auth" and value:
            try:
                return json.loads(unquote(value)).get("accessToken")
            except (ValueError, AttributeError):
                return None
    return None


class BoostyProcessor(PaymentProcessor):
    identifier = "boosty"
    label = "Boosty"

    def __init__(self, settings):
        super().__init__(settings)
        self.levels: dict[str, str] = {str(k): v for k, v in self.settings.get("levels", {}).items()}
        self._level_of = {product: level for level, product in self.levels.items()}
        self.api_base = self.settings.get("api_base", "https://api.boosty.to").rstrip("/")

    def payment_url(self, checkout):
        level, blog = self._level_of.get(checkout.price.product_id), self.settings.get("blog")
        if not level or not blog:
            return None
        return f"https://boosty.to/{quote(blog)}/purchase/{quote(level)}?ssource=DIRECT&share_to=pay"

    def poll_subscriptions(self, domain, credentials):
        if not credentials:
            return []
        token = access_token(credentials.get("cookies"))
        if not token:
            raise PaymentError("The Boosty cookies hold no access token.")
        blog = credentials.get("accountId") or self.settings.get("blog")
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        events: list[SubscriptionEvent] = []
        offset = 0
        for _ in range(MAX_PAGES):
            response = requests.get(f"{self.api_base}/v1/blog/{quote(blog)}/subscribers", timeout=TIMEOUT_S,
                                    params={"limit": PAGE, "offset": offset, "sort_by": "on_time", "order": "gt"},
                                    headers={"Authorization": f"Bearer {token}"})
            if response.status_code != 200:
                raise PaymentError("Boosty refused the subscriber list (are the cookies still valid?).", status=503)
            body = response.json()
            for subscriber in body.get("data", []):
                level = str((subscriber.get("level") or {}).get("id", ""))
                product = self.levels.get(level)
                if not product or not subscriber.get("email"):
                    continue
                common = {"subscription_id": f"{blog}:{subscriber['id']}", "email": subscriber["email"],
                          "product_id": product, "payer_id": str(subscriber["id"]), "occurred_at": now,
                          "email_source": EMAIL_UNVERIFIED}
                until = epoch_seconds(subscriber.get("nextPayTime")) or (
                    epoch_seconds(subscriber.get("onTime")) + dt.timedelta(days=30) if subscriber.get("onTime") else None)
                if subscriber.get("subscribed"):
                    events.append(SubscriptionEvent(kind=STARTED, period_end=until, **common))
                else:
                    events.append(SubscriptionEvent(kind=CANCELLED, period_end=until, **common))
            if (body.get("extra") or {}).get("isLast", True) or not body.get("data"):
                break
            offset += PAGE
        return events

    def cancellation_instructions(self, domain):
        return (f"Your {domain.display_name} membership is a Boosty subscription. To cancel it, sign in at "
                "https://boosty.to, open 'Subscriptions', choose this blog and turn off the renewal. You keep your "
                "PRO tier until the end of the paid period.")


@hookimpl
def register_payment_processors():
    return [BoostyProcessor]
