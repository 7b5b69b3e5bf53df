"""Image Management through the HTTP API: reading Items, lists, deletion and restore."""
from __future__ import annotations

import pytest

from tests.conftest import ADMIN_HEADERS, assert_error, assert_ok, new_session_headers, sign_up
from tests.library_helpers import counters, make_items, new_folder, publish, set_user_fields


def admin(headers):
    return {**headers, **ADMIN_HEADERS}


# --- one Item ---------------------------------------------------------------------------------


def test_get_item_and_details_for_the_owner(app, client, user):
    [item_id] = make_items(app, user["user_id"], prompt="red fox", negprompt="blur")
    image = assert_ok(client.get("/getItem", query_string={"imageID": item_id}, headers=user["headers"]))["payload"]
    assert image["id"] == item_id and image["userID"] == user["user_id"]
    assert image["url"].endswith(f"{item_id}.png")
    assert image["mtype"] == "image" and image["mediaType"] == "StaticImage"
    assert image["isPublic"] is False and image["isPubliclyVisible"] is False
    assert image["publicApprovalStatus"] == "none"
    assert image["isLiked"] is False and image["isDisliked"] is False
    assert isinstance(image["completedDate"], int) and image["completedTimestamp"].endswith("Z")
    assert image["batchID"]
    details = assert_ok(client.get("/getItemDetails", query_string={"imageID": item_id},
                                   headers=user["headers"]))["payload"]
    assert details["prompt"] == "red fox" and details["negprompt"] == "blur"
    assert details["seed"] == 7 and details["width"] == 512 and details["modelID"] == "m1"
    assert details["generatorVersion"] == "1" and details["username"]
    assert details["viewCount"] == 0  # the owner's views do not count


def test_another_users_private_item_is_not_found(app, client, user):
    [item_id] = make_items(app, user["user_id"])
    stranger = sign_up(client)
    for path in ("/getItem", "/getItemDetails"):
        assert_error(client.get(path, query_string={"imageID": item_id}, headers=stranger["headers"]), 404, "not found")
    assert_error(client.get("/getItem", query_string={"imageID": "nope"}, headers=user["headers"]), 404)
    # admins see it, approval status included
    body = assert_ok(client.get("/getItem", query_string={"imageID": item_id}, headers=admin(new_session_headers())))
    assert body["payload"]["publicApprovalStatus"] == "none"


def test_public_item_is_seen_by_others_without_private_fields(app, client, user):
    [item_id] = make_items(app, user["user_id"])
    publish(client, user, item_id)
    stranger = sign_up(client)
    image = assert_ok(client.get("/getItem", query_string={"imageID": item_id}, headers=stranger["headers"]))["payload"]
    assert image["isPublic"] is True
    assert "publicApprovalStatus" not in image and "batchID" not in image
    details = assert_ok(client.get("/getItemDetails", query_string={"imageID": item_id},
                                   headers=stranger["headers"]))["payload"]
    assert details["viewCount"] == 1
    anonymous = assert_ok(client.get("/getItem", query_string={"imageID": item_id}, headers=new_session_headers()))
    assert "isLiked" not in anonymous["payload"]


def test_item_endpoints_need_the_session_header_and_an_id(client):
    assert_error(client.get("/getItem", query_string={"imageID": "x"}), 400, "X-Session-ID")
    assert_error(client.get("/getItem", headers=new_session_headers()), 400, "imageID")
    assert_error(client.get("/getLastCompletedItem", headers=new_session_headers()), 401)


def test_last_completed_item_and_batch(app, client, user):
    assert_error(client.get("/getLastCompletedItem", headers=user["headers"]), 404)
    images = make_items(app, user["user_id"], 3)
    [video] = make_items(app, user["user_id"], mtype="video", media_type="Video")
    last = assert_ok(client.get("/getLastCompletedItem", headers=user["headers"]))["payload"]
    assert last["id"] == video
    last_image = assert_ok(client.get("/getLastCompletedItem", query_string={"mtype": "image"},
                                      headers=user["headers"]))["payload"]
    assert last_image["id"] in images
    batch = assert_ok(client.get("/getItem", query_string={"imageID": images[0]}, headers=user["headers"]))
    batch_id = batch["payload"]["batchID"]
    listed = assert_ok(client.get("/getBatchItems", query_string={"batchID": batch_id}, headers=user["headers"]))
    assert sorted(i["id"] for i in listed["payload"]) == sorted(images)
    assert all("prompt" in i for i in listed["payload"])
    other = sign_up(client)
    assert assert_ok(client.get("/getBatchItems", query_string={"batchID": batch_id},
                                headers=other["headers"]))["payload"] == []


# --- getMyCreations -----------------------------------------------------------------------------


def test_my_creations_pages_filters_and_total_count(app, client, user):
    ids = make_items(app, user["user_id"], 5)
    [video] = make_items(app, user["user_id"], mtype="video")
    folder = new_folder(client, user)
    assert_ok(client.post("/addImagesToSelfFolder", json={"folderID": folder, "imageIDs": ids[:2]},
                          headers=user["headers"]))
    every = assert_ok(client.get("/getMyCreations", headers=user["headers"]))
    assert [i["id"] for i in every["payload"]][0] == video
    assert len(every["payload"]) == 6 and every["metadata"]["totalCount"] == 6
    assert every["metadata"]["proLimitHit"] is False
    seen, index = [], None
    for _ in range(10):
        body = assert_ok(client.get("/getMyCreations", query_string={"limit": 2, **({"paginationIndex": index} if index else {})},
                                    headers=user["headers"]))
        seen += [i["id"] for i in body["payload"]]
        index = body["metadata"]["nextPaginationIndex"]
        if index is None:
            break
    assert sorted(seen) == sorted(ids + [video])
    skipped = assert_ok(client.get("/getMyCreations", query_string={"limit": 2, "skipCount": 4}, headers=user["headers"]))
    assert len(skipped["payload"]) == 2 and skipped["metadata"]["skipCount"] == 4
    videos = assert_ok(client.get("/getMyCreations", query_string={"mtype": "video"}, headers=user["headers"]))
    assert [i["id"] for i in videos["payload"]] == [video] and videos["metadata"]["totalCount"] == 6
    in_folder = assert_ok(client.get("/getMyCreations", query_string={"folderID": folder}, headers=user["headers"]))
    assert sorted(i["id"] for i in in_folder["payload"]) == sorted(ids[:2])
    assert in_folder["metadata"]["totalCount"] == 2
    root = assert_ok(client.get("/getMyCreations", query_string={"folderID": "root"}, headers=user["headers"]))
    assert len(root["payload"]) == 4 and root["metadata"]["totalCount"] == 4
    pending = assert_ok(client.get("/getMyCreations", query_string={"publicApprovalStatus": "pending"},
                                   headers=user["headers"]))
    assert pending["payload"] == []
    assert_error(client.get("/getMyCreations", query_string={"folderID": "nope"}, headers=user["headers"]), 404)
    assert_error(client.get("/getMyCreations", query_string={"mtype": "gif"}, headers=user["headers"]), 400, "mtype")


def test_free_users_browse_their_newest_items_only(make_app):
    capped = make_app(free_library_items=3)
    client = capped.test_client()
    owner = sign_up(client)
    ids = make_items(capped, owner["user_id"], 5)
    body = assert_ok(client.get("/getMyCreations", headers=owner["headers"]))
    assert len(body["payload"]) == 3 and body["metadata"]["proLimitHit"] is True
    assert body["metadata"]["totalCount"] == 5
    set_user_fields(capped, owner["user_id"], tier=1)
    body = assert_ok(client.get("/getMyCreations", headers=owner["headers"]))
    assert len(body["payload"]) == 5 and "proLimitHit" not in body["metadata"]
    assert set(i["id"] for i in body["payload"]) == set(ids)


# --- deletion and restore --------------------------------------------------------------------------


def test_delete_rules_and_counters(app, client, user):
    ids = make_items(app, user["user_id"], 4)
    folder = new_folder(client, user)
    assert_ok(client.post("/addImagesToSelfFolder", json={"folderID": folder, "imageIDs": [ids[0]]},
                          headers=user["headers"]))
    assert_ok(client.post("/addTagsToItem", json={"imageID": ids[0], "tags": ["sea"]}, headers=user["headers"]))
    assert_ok(client.post("/setProtected", json={"imageIDs": [ids[3]]}, headers=admin(user["headers"])))
    stranger = sign_up(client)
    [theirs] = make_items(app, stranger["user_id"])
    query = ",".join([ids[0], ids[1], ids[3], theirs, "missing"])
    body = assert_ok(client.delete("/deleteItems", query_string={"imageIDs": query}, headers=user["headers"]))
    outcome = {r["id"]: r for r in body["payload"]}
    assert outcome[ids[0]]["success"] and outcome[ids[1]]["success"]
    assert not outcome[ids[3]]["success"] and "protected" in outcome[ids[3]]["message"]
    assert not outcome[theirs]["success"] and not outcome["missing"]["success"]
    again = assert_ok(client.delete("/deleteItems", query_string={"imageIDs": ids[0]}, headers=user["headers"]))
    assert again["payload"][0]["success"] is False and "already deleted" in again["payload"][0]["message"]
    assert counters(app, user["user_id"]) == {"item_count": 2, "root": 2, "public": 0, "pending": 0}
    folders = assert_ok(client.get("/getSelfFolders", headers=user["headers"]))["payload"]
    assert folders[0]["imageCount"] == 0 and folders[0]["sampleImages"] == []
    tags = assert_ok(client.get("/getTagsList", headers=user["headers"]))["payload"]
    assert "sea" not in [t["name"] for t in tags]
    assert_error(client.get("/getItem", query_string={"imageID": ids[0]}, headers=user["headers"]), 404)
    listed = assert_ok(client.get("/getMyCreations", headers=user["headers"]))["payload"]
    assert sorted(i["id"] for i in listed) == sorted([ids[2], ids[3]])
    assert_ok(client.get("/getItem", query_string={"imageID": theirs}, headers=stranger["headers"]))


def test_restore_is_admin_only_and_returns_to_root_without_tags(app, client, user):
    ids = make_items(app, user["user_id"], 2)
    assert_ok(client.post("/addTagsToItem", json={"imageID": ids[0], "tags": ["a"]}, headers=user["headers"]))
    assert_ok(client.delete("/deleteItems", query_string={"imageIDs": ",".join(ids)}, headers=user["headers"]))
    assert_error(client.post("/restoreItems", json={"imageIDs": ids}, headers=user["headers"]), 403)
    assert_error(client.post("/restoreItems", json={}, headers=admin(user["headers"])), 400, "imageIDs")
    body = assert_ok(client.post("/restoreItems", json={"imageIDs": [ids[0], "missing"]}, headers=admin(user["headers"])))
    assert [r["success"] for r in body["payload"]] == [True, False]
    again = assert_ok(client.post("/restoreItems", json={"imageIDs": [ids[0]]}, headers=admin(user["headers"])))
    assert again["payload"][0]["success"] is False
    image = assert_ok(client.get("/getItem", query_string={"imageID": ids[0]}, headers=user["headers"]))["payload"]
    assert image["tags"] == [] and "folderID" not in image
    assert counters(app, user["user_id"])["item_count"] == 1
    by_user = assert_ok(client.post("/restoreItems", json={"userID": user["user_id"]}, headers=admin(user["headers"])))
    assert [r["id"] for r in by_user["payload"] if r["success"]] == [ids[1]]
    assert counters(app, user["user_id"]) == {"item_count": 2, "root": 2, "public": 0, "pending": 0}


def test_restore_refuses_items_of_disabled_users(app, client, user):
    [item_id] = make_items(app, user["user_id"])
    assert_ok(client.delete("/deleteItems", query_string={"imageIDs": item_id}, headers=user["headers"]))
    set_user_fields(app, user["user_id"], is_disabled=True)
    body = assert_ok(client.post("/restoreItems", json={"imageIDs": [item_id]}, headers=admin(new_session_headers())))
    assert body["payload"][0]["success"] is False and "disabled" in body["payload"][0]["message"]


def test_delete_all_needs_tier_above_2_or_an_admin(app, client, user):
    ids = make_items(app, user["user_id"], 3)
    assert_ok(client.post("/setProtected", json={"imageIDs": [ids[0]]}, headers=admin(user["headers"])))
    assert_error(client.delete("/deleteItems", query_string={"userID": user["user_id"]}, headers=user["headers"]),
                 403, "tier")
    other = sign_up(client)
    set_user_fields(app, other["user_id"], tier=3)
    assert_error(client.delete("/deleteItems", query_string={"userID": user["user_id"]}, headers=other["headers"]), 403)
    set_user_fields(app, user["user_id"], tier=3)
    body = assert_ok(client.delete("/deleteItems", query_string={"userID": user["user_id"], "imageIDs": "ignored"},
                                   headers=user["headers"]))
    assert sorted(r["id"] for r in body["payload"] if r["success"]) == sorted(ids[1:])
    assert counters(app, user["user_id"])["item_count"] == 1
    assert_error(client.delete("/deleteItems", headers=user["headers"]), 400, "imageIDs")


def test_admin_deletes_anyones_items_and_set_protected_toggles(app, client, user):
    [item_id] = make_items(app, user["user_id"])
    first = assert_ok(client.post("/setProtected", json={"imageIDs": [item_id]}, headers=admin(new_session_headers())))
    assert first["payload"][0] == {"id": item_id, "success": True, "message": "true"}
    second = assert_ok(client.post("/setProtected", json={"imageIDs": [item_id]}, headers=admin(new_session_headers())))
    assert second["payload"][0]["message"] == "false"
    assert_error(client.post("/setProtected", json={"imageIDs": [item_id]}, headers=user["headers"]), 403)
    body = assert_ok(client.delete("/deleteItems", query_string={"imageIDs": item_id}, headers=admin(new_session_headers())))
    assert body["payload"][0]["success"] is True


def test_delete_all_items_of_user_service(app, client, user):
    from aimg_app.services.items import delete_all_items_of_user

    ids = make_items(app, user["user_id"], 3)
    publish(client, user, ids[0], new_folder(client, user, public=True))
    with app.app_context():
        assert delete_all_items_of_user(user["user_id"]) == 3
        assert delete_all_items_of_user(user["user_id"]) == 0
    assert counters(app, user["user_id"]) == {"item_count": 0, "root": 0, "public": 0, "pending": 0}


@pytest.mark.parametrize("query", [{"imageIDs": ",".join(f"id{i}" for i in range(1001))}])
def test_bulk_limits(client, user, query):
    assert_error(client.delete("/deleteItems", query_string=query, headers=user["headers"]), 400, "1000")


def test_generation_into_a_folder_counts_in_that_folder(app, client, user):
    folder = new_folder(client, user)
    [item_id] = make_items(app, user["user_id"], folder_id=folder)
    body = assert_ok(client.get("/getSelfFolders", headers=user["headers"]))["payload"][0]
    assert body["imageCount"] == 1 and body["sampleImages"][0]["imageID"] == item_id
    assert counters(app, user["user_id"])["root"] == 0


def test_a_pagination_index_past_year_9999_is_not_a_server_error(app, client, user):
    [item_id] = make_items(app, user["user_id"])
    body = assert_ok(client.get("/getMyCreations", query_string={"paginationIndex": "999999999999999"},
                                headers=user["headers"]))
    assert [i["id"] for i in body["payload"]] == [item_id]
