"""getUser, deleteUser, setUserAbuseLevel, setUserAdditionalInformation, /2/getUserSession."""
from __future__ import annotations

import pytest

from tests.conftest import ADMIN_HEADERS, STRONG_PASSWORD, assert_error, assert_ok, new_session_headers, sign_up


def test_public_lookup_by_id_only(client, user):
    other = sign_up(client)
    body = assert_ok(client.get(f"/getUser?userID={user['user_id']}", headers=other["headers"]))["payload"]
    assert body == {"userID": user["user_id"], "username": user["self"]["username"]}
    assert_error(client.get(f"/getUser?email={user['email']}", headers=other["headers"]), 400, "admins")
    assert_error(client.get("/getUser", headers=other["headers"]), 400, "userID")
    assert_error(client.get("/getUser?userID=nope", headers=other["headers"]), 404)


def test_admin_lookup_has_the_extended_fields(client):
    user = sign_up(client, refList=["r1.example"], rs="affiliate-7", isAtLeast18Confirmed=True)
    for query in (f"userID={user['user_id']}", f"email={user['email']}", f"username={user['self']['username']}"):
        body = assert_ok(client.get(f"/getUser?{query}", headers=ADMIN_HEADERS))["payload"]
        assert body["userID"] == user["user_id"] and body["email"] == user["email"]
    for field in ("createdDate", "updatedDate", "isDisabled", "isAtLeast18Confirmed", "tier", "merchantProcessor",
                  "subscriptions", "flaggedImagesCount", "highHeatImagesCount", "refList", "rs", "loginProviders",
                  "connectProviders", "abuse", "profilePicture", "profilePictureBanned", "archivedEmails", "itemCount",
                  "publicItemCount", "rootFolderItemCount", "additionalInformation", "roles"):
        assert field in body, field
    assert body["refList"] == ["r1.example"] and body["rs"] == "affiliate-7"
    assert body["loginProviders"] == [{"providerType": "internal", "providerId": "Password"}]
    assert_error(client.get("/getUser?email=nobody@example.com", headers=ADMIN_HEADERS), 404)


def test_delete_self_signs_out_everywhere_and_blocks_login(client):
    user = sign_up(client)
    assert_error(client.delete("/deleteUser"), 400, "X-Session-ID")
    assert assert_ok(client.delete("/deleteUser", headers=user["headers"]))["payload"] == {"success": True}
    assert assert_ok(client.get("/getSelfUser", headers=user["headers"]))["payload"]["isAuthenticated"] is False
    assert_error(client.post("/authenticateUser", json={"email": user["email"], "password": STRONG_PASSWORD},
                             headers=new_session_headers()), 401)
    assert_error(client.get(f"/getUser?userID={user['user_id']}", headers=new_session_headers()), 404)
    admin = assert_ok(client.get(f"/getUser?userID={user['user_id']}", headers=ADMIN_HEADERS))["payload"]
    assert admin["isDisabled"] is True and admin["deletedDate"]


def test_admin_deletes_anyone_others_cannot(client):
    victim, attacker = sign_up(client), sign_up(client)
    # a non-admin's userID is ignored: it deletes only the caller
    assert_ok(client.delete(f"/deleteUser?userID={victim['user_id']}", headers=attacker["headers"]))
    assert assert_ok(client.get(f"/getUser?userID={victim['user_id']}", headers=ADMIN_HEADERS))["payload"]["isDisabled"] is False
    target = sign_up(client)
    assert_ok(client.delete(f"/deleteUser?userID={target['user_id']}",
                            headers={**ADMIN_HEADERS, **new_session_headers()}))
    assert assert_ok(client.get(f"/getUser?userID={target['user_id']}", headers=ADMIN_HEADERS))["payload"]["isDisabled"] is True
    assert_error(client.post("/setUserKVP", json={"key": "a", "value": "b"}, headers=target["headers"]), 401)


@pytest.mark.parametrize("level", [0, 3, 9])
def test_abuse_levels(client, level):
    user = sign_up(client)
    body = {"userID": user["user_id"], "abuse": level}
    assert assert_ok(client.post("/setUserAbuseLevel", json=body, headers=ADMIN_HEADERS))["payload"] == {"abuse": level}
    for invalid in (None, 10, -1, "5", 2.5, True):
        read = {"email": user["email"]} | ({"abuse": invalid} if invalid is not None else {})
        assert assert_ok(client.post("/setUserAbuseLevel", json=read, headers=ADMIN_HEADERS))["payload"] == {"abuse": level}
    assert_error(client.post("/setUserAbuseLevel", json=body, headers=user["headers"]), 403)


def test_abuse_level_4_blocks_username_changes(client):
    user = sign_up(client)
    assert_ok(client.post("/setUserAbuseLevel", json={"userID": user["user_id"], "abuse": 4}, headers=ADMIN_HEADERS))
    assert_error(client.post("/setSelfUserProperties", json={"username": "newname1"}, headers=user["headers"]), 403)


def test_additional_information(client, user):
    body = {"userID": user["user_id"], "additionalInformation": "VIP, contacted support"}
    assert assert_ok(client.post("/setUserAdditionalInformation", json=body, headers=ADMIN_HEADERS))["payload"] == [
        {"userID": user["user_id"], "additionalInformation": "VIP, contacted support"}]
    cleared = assert_ok(client.post("/setUserAdditionalInformation", json={"userID": user["user_id"]}, headers=ADMIN_HEADERS))
    assert cleared["payload"][0]["additionalInformation"] == ""
    assert_error(client.post("/setUserAdditionalInformation", json=body, headers=user["headers"]), 403)
    assert_error(client.post("/setUserAdditionalInformation", json={}, headers=ADMIN_HEADERS), 400, "userID")


def test_api2_user_session_needs_a_pro_tier(client, app):
    from tests.generation_support import grant_tier

    user = sign_up(client)
    assert_error(client.get("/2/getUserSession", headers=user["headers"]), 403, "PRO")
    assert_error(client.get("/2/getUserSession", headers=new_session_headers()), 401)
    with app.app_context():
        grant_tier(user["user_id"], 1)
    body = assert_ok(client.get("/2/getUserSession", headers=user["headers"]))["payload"]
    assert body["userSession"]["_id"] == user["headers"]["X-Session-ID"]
    assert body["userSession"]["userID"] == user["user_id"] and body["user"]["email"] == user["email"]
    assert body["user"]["isDisabled"] is False and body["user"]["roles"] == []


def test_delete_user_with_items_deletes_them(client, app):
    from aimg_app.services import items

    user = sign_up(client)
    with app.app_context():
        made = items.create_queued_items(user_id=user["user_id"], domain="localhost", count=2, mtype="image",
                                         params={"prompt": "p"})
        for item in made:
            assert items.complete_item(item.id, url=f"/getFile?id={item.id}", file_id=None, width=64, height=64)
    admin = lambda: assert_ok(client.get(f"/getUser?userID={user['user_id']}", headers=ADMIN_HEADERS))["payload"]  # noqa: E731
    assert admin()["itemCount"] == 2
    assert_ok(client.delete("/deleteUser?deleteItems=true", headers=user["headers"]))
    assert admin()["itemCount"] == 0 and admin()["rootFolderItemCount"] == 0
    from aimg_app.models.item import Item

    with app.app_context():
        assert [i.is_deleted for i in Item.objects(id__in=[m.id for m in made])] == [True, True]
