"""The public approval workflow (both annexes) through the HTTP API."""
from __future__ import annotations

from tests.conftest import ADMIN_HEADERS, assert_error, assert_ok, new_session_headers, sign_up
from tests.library_helpers import counters, make_items, new_folder, publish, set_user_fields

ADMIN = {**new_session_headers(), **ADMIN_HEADERS}


def props(client, owner, item_id, **body):
    return client.post("/setItemProperties", json={"imageID": item_id, **body}, headers=owner["headers"])


def decide(client, ids, status):
    return assert_ok(client.post("/setPublicApprovalStatus", json={"imageIDs": ids, "publicApprovalStatus": status},
                                 headers=ADMIN))["payload"]


def item(client, who, item_id):
    return assert_ok(client.get("/getItem", query_string={"imageID": item_id}, headers=who["headers"]))["payload"]


def test_full_lifecycle(app, client, user):
    [item_id] = make_items(app, user["user_id"])
    public_folder = new_folder(client, user, public=True)
    # step 1: default state; isPublic cannot be set yet, approved/rejected are admin-only
    assert item(client, user, item_id)["publicApprovalStatus"] == "none"
    assert_error(props(client, user, item_id, isPublic=True), 400, "approved")
    assert_error(props(client, user, item_id, publicApprovalStatus="approved"), 403, "administrators")
    assert_error(props(client, user, item_id), 400, "at least one")
    # cannot enter a public folder before approval
    moved = assert_ok(client.post("/addImagesToPublicFolder", json={"folderID": public_folder, "imageIDs": [item_id]},
                                  headers=user["headers"]))
    assert moved["payload"]["success"] is False
    # pending, withdraw, pending again
    assert assert_ok(props(client, user, item_id, publicApprovalStatus="pending"))["payload"]["publicApprovalStatus"] == "pending"
    assert counters(app, user["user_id"])["pending"] == 1
    assert_error(props(client, user, item_id, isPublic=True), 400)
    assert assert_ok(props(client, user, item_id, publicApprovalStatus="none"))["payload"]["publicApprovalStatus"] == "none"
    assert counters(app, user["user_id"])["pending"] == 0
    assert_ok(props(client, user, item_id, publicApprovalStatus="pending"))
    admin_list = assert_ok(client.get("/getItems", query_string={"publicApprovalStatus": "pending"}, headers=ADMIN))
    assert [i["id"] for i in admin_list["payload"]] == [item_id]
    # step 2: the admin approves: public at once
    assert decide(client, [item_id], "approved") == [{"id": item_id, "success": True}]
    image = item(client, user, item_id)
    assert image["publicApprovalStatus"] == "approved" and image["isPublic"] is True
    assert image["isPubliclyVisible"] is False  # not in a public folder yet
    assert counters(app, user["user_id"])["pending"] == 0
    # final for the user
    assert_error(props(client, user, item_id, publicApprovalStatus="none"), 400, "already approved")
    assert_error(props(client, user, item_id, publicApprovalStatus="pending"), 400, "already approved")
    # step 3: into a public folder: publicly visible and counted
    assert assert_ok(client.post("/addImagesToPublicFolder", json={"folderID": public_folder, "imageIDs": [item_id]},
                                 headers=user["headers"]))["payload"]["success"]
    assert item(client, user, item_id)["isPubliclyVisible"] is True
    assert counters(app, user["user_id"])["public"] == 1
    stranger = sign_up(client)
    public = assert_ok(client.get("/getPublicCreations", query_string={"userID": user["user_id"]},
                                  headers=stranger["headers"]))
    assert [i["id"] for i in public["payload"]] == [item_id] and public["metadata"]["totalCount"] == 1
    # the owner makes it private and public again without a new approval
    assert assert_ok(props(client, user, item_id, isPublic=False))["payload"]["isPubliclyVisible"] is False
    assert counters(app, user["user_id"])["public"] == 0
    assert_error(client.get("/getItem", query_string={"imageID": item_id}, headers=stranger["headers"]), 404)
    assert assert_ok(props(client, user, item_id, isPublic=True))["payload"]["isPubliclyVisible"] is True
    assert counters(app, user["user_id"])["public"] == 1
    folder_view = assert_ok(client.get("/getPublicFolders", query_string={"userID": user["user_id"]},
                                       headers=stranger["headers"]))["payload"][0]
    assert folder_view["imageCount"] == 1 and folder_view["sampleImages"][0]["imageID"] == item_id
    # annex: rejecting after approval makes it private, and visible counts drop
    assert decide(client, [item_id], "rejected")[0]["success"] is True
    image = item(client, user, item_id)
    assert image["publicApprovalStatus"] == "rejected" and image["isPublic"] is False
    assert image["isPubliclyVisible"] is False
    assert counters(app, user["user_id"])["public"] == 0
    assert_error(props(client, user, item_id, isPublic=True), 400)
    assert_error(props(client, user, item_id, publicApprovalStatus="pending"), 400, "already rejected")
    folder_view = assert_ok(client.get("/getPublicFolders", query_string={"userID": user["user_id"]},
                                       headers=stranger["headers"]))["payload"][0]
    assert folder_view["imageCount"] == 0 and folder_view["sampleImages"] == []
    assert assert_ok(client.get("/getPublicCreations", headers=stranger["headers"]))["payload"] == []


def test_only_the_owner_changes_properties_and_only_admins_decide(app, client, user):
    [item_id] = make_items(app, user["user_id"])
    publish(client, user, item_id)
    stranger = sign_up(client)
    assert_error(props(client, stranger, item_id, isPublic=False), 403, "owner")
    [private] = make_items(app, user["user_id"])
    assert_error(props(client, stranger, private, publicApprovalStatus="pending"), 404)
    assert_error(client.post("/setPublicApprovalStatus", json={"imageIDs": [private], "publicApprovalStatus": "approved"},
                             headers=user["headers"]), 403)
    assert_error(client.post("/setPublicApprovalStatus", json={"imageIDs": [private], "publicApprovalStatus": "pending"},
                             headers=ADMIN), 400, "publicApprovalStatus")
    result = decide(client, [private, "missing", item_id], "approved")
    assert [r["success"] for r in result] == [True, False, False]
    assert "already approved" in result[2]["message"]


def test_at_most_50_pending_requests(app, client):
    owner = sign_up(client)
    ids = make_items(app, owner["user_id"], 51)
    for item_id in ids[:50]:
        assert_ok(props(client, owner, item_id, publicApprovalStatus="pending"))
    assert_error(props(client, owner, ids[50], publicApprovalStatus="pending"), 400, "50")
    assert item(client, owner, ids[50])["publicApprovalStatus"] == "none"
    assert counters(app, owner["user_id"])["pending"] == 50
    decide(client, [ids[0]], "rejected")
    assert_ok(props(client, owner, ids[50], publicApprovalStatus="pending"))
    assert counters(app, owner["user_id"])["pending"] == 50


def test_abuse_levels_limit_publishing(app, client):
    owner = sign_up(client)
    ids = make_items(app, owner["user_id"], 2)
    publish(client, owner, ids[0])
    assert_ok(props(client, owner, ids[0], isPublic=False))
    set_user_fields(app, owner["user_id"], abuse=1)
    assert_error(props(client, owner, ids[1], publicApprovalStatus="pending"), 403, "approval")
    assert_ok(props(client, owner, ids[0], isPublic=True))  # level 1 may still publish approved Items
    assert_ok(props(client, owner, ids[0], isPublic=False))
    set_user_fields(app, owner["user_id"], abuse=9)
    assert_error(props(client, owner, ids[0], isPublic=True), 403, "publish")
    assert item(client, owner, ids[0])["isPublic"] is False


def test_deleting_a_pending_or_visible_item_fixes_counters(app, client, user):
    ids = make_items(app, user["user_id"], 2)
    folder = new_folder(client, user, public=True)
    publish(client, user, ids[0], folder)
    assert_ok(props(client, user, ids[1], publicApprovalStatus="pending"))
    assert counters(app, user["user_id"]) == {"item_count": 2, "root": 1, "public": 1, "pending": 1}
    assert_ok(client.delete("/deleteItems", query_string={"imageIDs": ",".join(ids)}, headers=user["headers"]))
    assert counters(app, user["user_id"]) == {"item_count": 0, "root": 0, "public": 0, "pending": 0}
    assert_ok(client.post("/restoreItems", json={"imageIDs": ids}, headers=ADMIN))
    # restored to the root: approved but not visible; the pending request counts again
    assert counters(app, user["user_id"]) == {"item_count": 2, "root": 2, "public": 0, "pending": 1}


def test_public_lists_show_only_visible_items_without_private_fields(app, client, user):
    ids = make_items(app, user["user_id"], 3)
    folder = new_folder(client, user, public=True)
    publish(client, user, ids[0], folder)
    publish(client, user, ids[1])  # public, but not in a public folder
    viewer = sign_up(client)
    latest = assert_ok(client.get("/getLatestItems", headers=viewer["headers"]))
    assert [i["id"] for i in latest["payload"]] == [ids[0]]
    assert "totalCount" not in latest["metadata"]
    assert not {"publicApprovalStatus", "batchID", "folderID", "isLiked"} & set(latest["payload"][0])
    sample = assert_ok(client.get("/getSampleItems", query_string={"limit": 5}, headers=viewer["headers"]))
    assert [i["id"] for i in sample["payload"]] == [ids[0]]
    by_folder = assert_ok(client.get("/getPublicCreations", query_string={"folderID": folder}, headers=viewer["headers"]))
    assert [i["id"] for i in by_folder["payload"]] == [ids[0]] and by_folder["metadata"]["totalCount"] == 1
    assert by_folder["payload"][0]["folderID"] == folder
    every = assert_ok(client.get("/getPublicCreations", headers=viewer["headers"]))
    assert "totalCount" not in every["metadata"]
    assert_error(client.get("/getPublicCreations", query_string={"folderID": "p-missing"}, headers=viewer["headers"]), 404)
