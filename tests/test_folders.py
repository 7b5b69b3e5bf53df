"""Private, public and common folder management through the HTTP API."""
from __future__ import annotations

import re
import uuid
from concurrent.futures import ThreadPoolExecutor

from tests.conftest import ADMIN_HEADERS, assert_error, assert_ok, new_session_headers, sign_up
from tests.library_helpers import counters, make_items, new_folder, publish

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def folders(client, who, path="/getSelfFolders", **query):
    return assert_ok(client.get(path, query_string=query, headers=who["headers"]))


def post(client, who, path, **body):
    return assert_ok(client.post(path, json=body, headers=who["headers"]))["payload"]


def test_create_edit_list_and_delete_folders(client, user):
    created = post(client, user, "/createSelfFolder", name="Trips", description="summer")
    assert UUID.match(created["id"]) and created["isPublic"] is False
    assert created["imageCount"] == 0 and created["sampleImages"] == [] and created["thumbnails"] == []
    assert created["tags"] == [] and created["description"] == "summer" and created["userID"] == user["user_id"]
    public = post(client, user, "/createPublicFolder", name="Best")
    assert public["id"].startswith("p-") and UUID.match(public["id"][2:]) and public["isPublic"] is True
    renamed = post(client, user, "/setSelfFolderProperties", folderID=created["id"], folderName="Trips 2",
                   folderDescription="")
    assert renamed["name"] == "Trips 2" and "description" not in renamed
    assert_error(client.post("/setSelfFolderProperties", json={"folderID": created["id"]}, headers=user["headers"]),
                 400, "folderName")
    # the kinds do not mix
    assert_error(client.post("/setSelfFolderProperties", json={"folderID": public["id"], "folderName": "x"},
                             headers=user["headers"]), 404, "private folder")
    assert_error(client.post("/setPublicFolderProperties", json={"folderID": created["id"], "folderName": "x"},
                             headers=user["headers"]), 404, "public folder")
    listed = folders(client, user)
    assert [f["id"] for f in listed["payload"]] == [created["id"]] and listed["metadata"]["totalCount"] == 1
    assert_error(client.post("/createSelfFolder", json={"name": ""}, headers=user["headers"]), 400, "name")
    assert_error(client.post("/createSelfFolder", json={"name": "x" * 101}, headers=user["headers"]), 400, "name")
    assert_error(client.post("/createSelfFolder", json={"name": "x"}, headers=new_session_headers()), 401)
    # another user's folder is not found
    other = sign_up(client)
    assert_error(client.delete("/deleteSelfFolder", query_string={"folderID": created["id"]}, headers=other["headers"]), 404)
    assert assert_ok(client.delete("/deleteSelfFolder", query_string={"folderID": created["id"]},
                                   headers=user["headers"]))["payload"] == {"success": True}
    assert folders(client, user)["payload"] == []
    assert_error(client.delete("/deleteSelfFolder", query_string={"folderID": created["id"]}, headers=user["headers"]), 404)


def test_folder_list_pagination_and_filters(client, user):
    ids = [new_folder(client, user, name=f"f{i}") for i in range(5)]
    page = folders(client, user, limit=2)
    assert len(page["payload"]) <= 2 and page["metadata"]["totalCount"] == 5
    walked, index = [], None
    for _ in range(10):
        body = folders(client, user, limit=2, **({"paginationIndex": index} if index else {}))
        walked += [f["id"] for f in body["payload"]]
        index = body["metadata"]["nextPaginationIndex"]
        if index is None:
            break
    assert sorted(walked) == sorted(ids)
    only = folders(client, user, folderIDs=",".join(ids[:2]))
    assert sorted(f["id"] for f in only["payload"]) == sorted(ids[:2]) and only["metadata"]["totalCount"] == 2


def test_items_move_between_folders_with_exact_counters(app, client, user):
    ids = make_items(app, user["user_id"], 4)
    a, b = new_folder(client, user, name="a"), new_folder(client, user, name="b")
    assert post(client, user, "/addImagesToSelfFolder", folderID=a, imageIDs=ids[:3])["success"] is True
    assert counters(app, user["user_id"])["root"] == 1
    # adding again moves nothing; an Item lives in one folder only
    assert post(client, user, "/addImagesToSelfFolder", folderID=a, imageIDs=ids[:1])["success"] is False
    assert post(client, user, "/addImagesToSelfFolder", folderID=b, imageIDs=ids[:1])["success"] is True
    counts = {f["id"]: f["imageCount"] for f in folders(client, user)["payload"]}
    assert counts == {a: 2, b: 1}
    moved = post(client, user, "/moveItemsBetweenFolders", sourceFolderID=a, destinationFolderID=None,
                 imageIDs=[ids[1], ids[0], "missing"])
    assert [m["success"] for m in moved] == [True, False, False]
    assert "source folder" in moved[1]["message"]
    assert counters(app, user["user_id"])["root"] == 2
    moved = post(client, user, "/moveItemsBetweenFolders", sourceFolderID=None, destinationFolderID=b, imageIDs=[ids[3]])
    assert moved == [{"id": ids[3], "success": True}]
    assert post(client, user, "/removeImagesFromSelfFolder", folderID=b, imageIDs=[ids[3], ids[2]])["success"] is True
    counts = {f["id"]: f["imageCount"] for f in folders(client, user)["payload"]}
    assert counts == {a: 1, b: 1}
    assert counters(app, user["user_id"]) == {"item_count": 4, "root": 2, "public": 0, "pending": 0}
    # folder content and its preview
    content = assert_ok(client.get("/getMyCreations", query_string={"folderID": a}, headers=user["headers"]))
    assert [i["id"] for i in content["payload"]] == [ids[2]] and content["payload"][0]["folderID"] == a
    assert isinstance(content["payload"][0]["folderAddedDate"], int)
    sample = folders(client, user, folderIDs=a)["payload"][0]["sampleImages"]
    assert sample == [{"imageID": ids[2], "url": f"https://files.example/{ids[2]}.png"}]
    # deleting a folder sends its Items to the root folder
    assert_ok(client.delete("/deleteSelfFolder", query_string={"folderID": a}, headers=user["headers"]))
    assert counters(app, user["user_id"])["root"] == 3
    image = assert_ok(client.get("/getItem", query_string={"imageID": ids[2]}, headers=user["headers"]))["payload"]
    assert "folderID" not in image


def test_other_users_items_and_folders_are_skipped(app, client, user):
    other = sign_up(client)
    [theirs] = make_items(app, other["user_id"])
    mine = new_folder(client, user)
    theirs_folder = new_folder(client, other)
    assert post(client, user, "/addImagesToSelfFolder", folderID=mine, imageIDs=[theirs])["success"] is False
    assert_error(client.post("/addImagesToSelfFolder", json={"folderID": theirs_folder, "imageIDs": [theirs]},
                             headers=user["headers"]), 404)
    assert_error(client.post("/moveItemsBetweenFolders", json={"sourceFolderID": None, "destinationFolderID": theirs_folder,
                                                               "imageIDs": [theirs]}, headers=user["headers"]), 404)
    assert_error(client.post("/addImagesToSelfFolder", json={"folderID": mine, "imageIDs": [f"x{i}" for i in range(1001)]},
                             headers=user["headers"]), 400, "1000")
    assert_error(client.post("/moveItemsBetweenFolders", json={"sourceFolderID": None, "imageIDs": ["x"]},
                             headers=user["headers"]), 400, "destinationFolderID")


def test_public_folders_take_eligible_items_and_show_public_content(app, client, user):
    ids = make_items(app, user["user_id"], 3)
    public = new_folder(client, user, public=True, name="gallery")
    private = new_folder(client, user)
    publish(client, user, ids[0])
    added = post(client, user, "/addImagesToPublicFolder", folderID=public, imageIDs=[ids[0], ids[1]])
    assert added["success"] is True
    assert post(client, user, "/addImagesToSelfFolder", folderID=private, imageIDs=[ids[2]])["success"]
    moved = post(client, user, "/moveItemsBetweenFolders", sourceFolderID=private, destinationFolderID=public,
                 imageIDs=[ids[2]])
    assert moved[0]["success"] is False and "public" in moved[0]["message"]
    assert counters(app, user["user_id"])["public"] == 1
    stranger = sign_up(client)
    assert public in [f["id"] for f in folders(client, stranger, "/getPublicFolders")["payload"]]
    listed = folders(client, stranger, "/getPublicFolders", userID=user["user_id"])
    assert [f["id"] for f in listed["payload"]] == [public] and listed["metadata"]["totalCount"] == 1
    assert listed["payload"][0]["imageCount"] == 1
    assert folders(client, stranger, "/getPublicFolders", userID=stranger["user_id"])["payload"] == []
    # the owner makes the Item private: it stays in the folder but is no longer shown
    assert_ok(client.post("/setItemProperties", json={"imageID": ids[0], "isPublic": False}, headers=user["headers"]))
    seen = folders(client, stranger, "/getPublicFolders", userID=user["user_id"])["payload"][0]
    assert seen["imageCount"] == 0 and seen["sampleImages"] == []
    assert folders(client, user, "/getPublicFolders", userID=user["user_id"])["payload"][0]["imageCount"] == 1
    assert counters(app, user["user_id"])["public"] == 0
    # moving it out of the public folder and back keeps counts exact
    assert_ok(client.post("/setItemProperties", json={"imageID": ids[0], "isPublic": True}, headers=user["headers"]))
    post(client, user, "/removeImagesFromPublicFolder", folderID=public, imageIDs=[ids[0]])
    assert counters(app, user["user_id"])["public"] == 0
    post(client, user, "/addImagesToPublicFolder", folderID=public, imageIDs=[ids[0]])
    assert counters(app, user["user_id"])["public"] == 1
    assert_ok(client.delete("/deletePublicFolder", query_string={"folderID": public}, headers=user["headers"]))
    assert counters(app, user["user_id"]) == {"item_count": 3, "root": 2, "public": 0, "pending": 0}


def test_thumbnails_at_most_four_among_the_folders_items(app, client, user):
    ids = make_items(app, user["user_id"], 6)
    folder = new_folder(client, user)
    post(client, user, "/addImagesToSelfFolder", folderID=folder, imageIDs=ids[:5])
    added = post(client, user, "/addThumbnailImagesForSelfFolder", folderID=folder, imageIDs=[ids[0], ids[5], ids[1]])
    assert added == {"success": True, "modified": [ids[0], ids[1]], "actual": [ids[0], ids[1]]}
    more = post(client, user, "/addThumbnailImagesForSelfFolder", folderID=folder, imageIDs=ids[:5])
    assert more["modified"] == [ids[2], ids[3]] and more["actual"] == ids[:4]
    removed = post(client, user, "/removeThumbnailImagesForSelfFolder", folderID=folder, imageIDs=[ids[1], ids[4]])
    assert removed == {"success": True, "modified": [ids[1]], "actual": [ids[0], ids[2], ids[3]]}
    replaced = post(client, user, "/setThumbnailImagesForSelfFolder", folderID=folder, imageIDs=[ids[4], ids[5]])
    assert replaced["success"] is False and replaced["actual"] == [ids[4]] and replaced["modified"] == [ids[4]]
    view = folders(client, user)["payload"][0]
    assert view["thumbnails"] == [{"imageID": ids[4], "url": f"https://files.example/{ids[4]}.png"}]
    # an Item leaving the folder leaves its thumbnails
    post(client, user, "/removeImagesFromSelfFolder", folderID=folder, imageIDs=[ids[4]])
    assert folders(client, user)["payload"][0]["thumbnails"] == []
    assert post(client, user, "/setThumbnailImagesForSelfFolder", folderID=folder, imageIDs=[])["success"] is True


def test_parallel_moves_keep_counters_exact(app, client, user):
    ids = make_items(app, user["user_id"], 6)
    a, b = new_folder(client, user, name="a"), new_folder(client, user, name="b")

    def move(args):
        item_id, destination = args
        return app.test_client().post("/addImagesToSelfFolder", json={"folderID": destination, "imageIDs": [item_id]},
                                      headers=user["headers"]).status_code

    jobs = [(i, a) for i in ids] + [(i, b) for i in ids] + [(i, a) for i in ids[:3]]
    with ThreadPoolExecutor(max_workers=8) as pool:
        assert set(pool.map(move, jobs)) == {200}
    listed = {f["id"]: f["imageCount"] for f in folders(client, user)["payload"]}
    in_a = assert_ok(client.get("/getMyCreations", query_string={"folderID": a}, headers=user["headers"]))["payload"]
    in_b = assert_ok(client.get("/getMyCreations", query_string={"folderID": b}, headers=user["headers"]))["payload"]
    assert listed == {a: len(in_a), b: len(in_b)} and len(in_a) + len(in_b) == 6
    assert counters(app, user["user_id"])["root"] == 0
    # delete a folder while moving Items into it: nothing is lost or counted twice
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(move, (i, a)) for i in ids]
        pool.submit(lambda: app.test_client().delete("/deleteSelfFolder", query_string={"folderID": a},
                                                     headers=user["headers"])).result()
        [f.result() for f in futures]
    remaining = {f["id"]: f["imageCount"] for f in folders(client, user)["payload"]}
    in_b = assert_ok(client.get("/getMyCreations", query_string={"folderID": b}, headers=user["headers"]))["payload"]
    root = assert_ok(client.get("/getMyCreations", query_string={"folderID": "root"}, headers=user["headers"]))
    assert remaining == {b: len(in_b)}
    assert root["metadata"]["totalCount"] == len(root["payload"]) == 6 - len(in_b)


def test_migrate_library_moves_items_folders_and_counters(app, client, user):
    admin = {**new_session_headers(), **ADMIN_HEADERS}
    ids = make_items(app, user["user_id"], 4)
    public = new_folder(client, user, public=True)
    private = new_folder(client, user)
    publish(client, user, ids[0], public)
    post(client, user, "/addImagesToSelfFolder", folderID=private, imageIDs=[ids[1]])
    assert_ok(client.post("/setItemProperties", json={"imageID": ids[2], "publicApprovalStatus": "pending"},
                          headers=user["headers"]))
    assert_ok(client.delete("/deleteItems", query_string={"imageIDs": ids[3]}, headers=user["headers"]))
    gone = new_folder(client, user, name="gone")
    assert_ok(client.delete("/deleteSelfFolder", query_string={"folderID": gone}, headers=user["headers"]))
    target = sign_up(client)
    [own] = make_items(app, target["user_id"])
    assert_error(client.post("/migrateLibrary", json={"sourceUserID": user["user_id"], "destinationUserID":
                                                     target["user_id"]}, headers=user["headers"]), 403)
    assert_error(client.post("/migrateLibrary", json={"sourceUserID": user["user_id"], "destinationUserID":
                                                     str(uuid.uuid4())}, headers=admin), 404)
    body = assert_ok(client.post("/migrateLibrary", json={"sourceUserID": user["user_id"],
                                                         "destinationUserID": target["user_id"]}, headers=admin))
    assert body["payload"]["success"] is True and "3 Items and 2 Folders" in body["payload"]["message"]
    assert counters(app, user["user_id"]) == {"item_count": 0, "root": 0, "public": 0, "pending": 0}
    assert counters(app, target["user_id"]) == {"item_count": 4, "root": 2, "public": 1, "pending": 1}
    mine = assert_ok(client.get("/getMyCreations", headers=target["headers"]))["payload"]
    assert sorted(i["id"] for i in mine) == sorted(ids[:3] + [own])
    assert len(folders(client, target)["payload"]) == 1
    assert_error(client.post("/migrateLibrary", json={"sourceUserID": user["user_id"], "destinationUserID":
                                                     user["user_id"]}, headers=admin), 400)
