"""A configured whitelist: emails that hold a PRO tier (staff, partners, testers).

Settings (``[plugins.whitelist]``)::

    entries = [
      {email = "tester@example.com", tier = 2, until = "2027-01-01T00:00:00Z", domains = ["aimg.example"]},
    ]

``until`` and ``domains`` are optional. The scheduled sync applies the list; to end an
entry, set its ``until`` (once that time has passed, the sync ends the tier).
"""
from __future__ import annotations

import datetime as dt

from aimg_app.plugin_api import (
    EXPIRED,
    STARTED,
    PaymentProcessor,
    SubscriptionEvent,
    hookimpl,
)


def _time(value):
    if not value:
        return None
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(dt.UTC).replace(tzinfo=None)


class WhitelistProcessor(PaymentProcessor):
    identifier = "whitelist"
    label = "Whitelist"

    def __init__(self, settings):
        super().__init__(settings)
        self.entries = []
        for raw in self.settings.get("entries", []):
            email, tier = str(raw.get("email", "")).strip().lower(), int(raw.get("tier", 0))
            if "@" not in email or tier < 1:
                raise ValueError("each whitelist entry needs an email and a tier >= 1")
            self.entries.append({"email": email, "tier": tier, "until": _time(raw.get("until")),
                                 "domains": tuple(raw.get("domains", ()))})

    def poll_subscriptions(self, domain, credentials):
        # A fixed start time: the same entry is the same ledger event on every sync.
        epoch = dt.datetime(2000, 1, 1)
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        events = []
        for e in self.entries:
            if e["domains"] and domain.identifier not in e["domains"]:
                continue
            common = {"subscription_id": f"whitelist:{domain.identifier}:{e['email']}", "email": e["email"],
                      "product_id": f"whitelist-tier{e['tier']}", "tier": e["tier"]}
            if e["until"] is not None and e["until"] <= now:
                events.append(SubscriptionEvent(kind=EXPIRED, occurred_at=e["until"], **common))
            else:
                events.append(SubscriptionEvent(kind=STARTED, occurred_at=epoch, period_end=e["until"], renews=False,
                                                **common))
        return events

    def cancellation_instructions(self, domain):
        return (f"Your {domain.display_name} PRO tier comes from our whitelist: it is free and does not renew. "
                "Reply to this email if you would like it removed.")


@hookimpl
def register_payment_processors():
    return [WhitelistProcessor]
