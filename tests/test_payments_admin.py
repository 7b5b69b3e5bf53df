"""admin: the cancellation of an admin-provided tier mails an explanation (nothing renews)."""
from __future__ import annotations

from tests.conftest import ADMIN_HEADERS, assert_ok
from tests.support.billing import self_user


def test_admin_tier_has_nothing_to_cancel(client, user):
    assert_ok(client.post("/setAdminProvidedPremiumTier", headers=ADMIN_HEADERS, json={
        "productId": "friend", "email": user["email"], "tier": 1, "isActive": True}))
    result = assert_ok(client.delete("/cancelMembership", headers=user["headers"]))["payload"]
    assert result == {"success": False, "message": "You have no membership that renews."}
    assert self_user(client, user)["tier"] == 1
