"""Admin-provided Premium Tiers (``setAdminProvidedPremiumTier``): never sold, never renewed."""
from __future__ import annotations

from aimg_app.plugin_api import PaymentProcessor, hookimpl


class AdminProcessor(PaymentProcessor):
    identifier = "admin"
    label = "Provided by the team"

    def cancellation_instructions(self, domain):
        return (f"Your {domain.display_name} PRO tier was given to you by the team: it does not renew and "
                "costs nothing. Reply to this email if you would like it removed.")


@hookimpl
def register_payment_processors():
    return [AdminProcessor]
