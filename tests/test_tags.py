"""Tags Management through the HTTP API."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tests.conftest import assert_error, assert_ok, new_session_headers, sign_up
from tests.library_helpers import make_items, new_folder, publish


def post(client, who, path, **body):
    return assert_ok(client.post(path, json=body, headers=who["headers"]))["payload"]


def usage(client, who, *names):
    body = assert_ok(client.get("/getTagsList", query_string={"tags": ",".join(names)}, headers=who["headers"]))
    return {t["name"]: t["usageCount"] for t in body["payload"]}


def test_add_remove_set_on_an_item(app, client, user):
    [item_id] = make_items(app, user["user_id"])
    added = post(client, user, "/addTagsToItem", imageID=item_id, tags=["Sunset", "beach", "sunset"])
    assert added == {"success": True, "modified": ["sunset", "beach"], "actual": ["sunset", "beach"]}
    again = post(client, user, "/addTagsToItem", imageID=item_id, tags=["beach"])
    assert again == {"success": False, "modified": [], "actual": ["sunset", "beach"]}
    removed = post(client, user, "/removeTagsFromItem", imageID=item_id, tags=["beach", "nope"])
    assert removed == {"success": True, "modified": ["beach"], "actual": ["sunset"]}
    replaced = post(client, user, "/setTagsForItem", imageID=item_id, tags=["night", "SUNSET"])
    assert replaced["success"] is True and sorted(replaced["actual"]) == ["night", "sunset"]
    image = assert_ok(client.get("/getItem", query_string={"imageID": item_id}, headers=user["headers"]))["payload"]
    assert sorted(image["tags"]) == ["night", "sunset"]
    assert usage(client, user, "sunset", "night", "beach") == {"sunset": 1, "night": 1}


def test_invalid_tags_and_targets_are_refused(app, client, user):
    [item_id] = make_items(app, user["user_id"])
    assert_error(client.post("/addTagsToItem", json={"imageID": item_id, "tags": ["ok", "has space", "x" * 33]},
                             headers=user["headers"]), 400, "has space")
    assert_error(client.post("/addTagsToItem", json={"imageID": item_id, "tags": [""]}, headers=user["headers"]), 400)
    assert_error(client.post("/addTagsToItem", json={"tags": ["a"]}, headers=user["headers"]), 400, "imageID")
    assert_error(client.post("/addTagsToItem", json={"imageID": "missing", "tags": ["a"]}, headers=user["headers"]), 404)
    other = sign_up(client)
    assert_error(client.post("/addTagsToItem", json={"imageID": item_id, "tags": ["a"]}, headers=other["headers"]), 404)
    assert_error(client.post("/addTagsToItem", json={"imageID": item_id, "tags": "a"}, headers=user["headers"]), 400, "tags")
    # the contract's expression as written: "$-_" is a range, so upper-case input is folded first
    assert post(client, user, "/addTagsToItem", imageID=item_id, tags=["a.b+c!*'()", "x$y"])["success"] is True
    image = assert_ok(client.get("/getItem", query_string={"imageID": item_id}, headers=user["headers"]))["payload"]
    assert "a.b+c!*'()" in image["tags"]


def test_at_most_20_tags_per_item(app, client, user):
    [item_id] = make_items(app, user["user_id"])
    post(client, user, "/setTagsForItem", imageID=item_id, tags=[f"t{i}" for i in range(20)])
    assert_error(client.post("/addTagsToItem", json={"imageID": item_id, "tags": ["one-more"]}, headers=user["headers"]),
                 400, "20")
    assert_error(client.post("/setTagsForItem", json={"imageID": item_id, "tags": [f"u{i}" for i in range(21)]},
                             headers=user["headers"]), 400, "20")


def test_folder_tags_win_over_the_item(app, client, user):
    [item_id] = make_items(app, user["user_id"])
    folder = new_folder(client, user)
    result = post(client, user, "/addTagsToItem", imageID=item_id, folderID=folder, tags=["album"])
    assert result["actual"] == ["album"]
    listed = assert_ok(client.get("/getSelfFolders", headers=user["headers"]))["payload"][0]
    assert listed["tags"] == ["album"]
    image = assert_ok(client.get("/getItem", query_string={"imageID": item_id}, headers=user["headers"]))["payload"]
    assert image["tags"] == []
    assert usage(client, user, "album") == {"album": 1}
    assert_ok(client.delete("/deleteSelfFolder", query_string={"folderID": folder}, headers=user["headers"]))
    assert usage(client, user, "album") == {}


def test_tags_list_is_ordered_by_usage_with_exact_counts(app, client, user):
    ids = make_items(app, user["user_id"], 4)

    def tag(args):
        item_id, names = args
        return app.test_client().post("/addTagsToItem", json={"imageID": item_id, "tags": names},
                                      headers=user["headers"]).status_code

    jobs = [(ids[0], ["zz-common", "zz-rare"])] + [(i, ["zz-common", "zz-mid"]) for i in ids[1:]] * 2
    with ThreadPoolExecutor(max_workers=6) as pool:
        assert set(pool.map(tag, jobs)) == {200}
    body = assert_ok(client.get("/getTagsList", query_string={"tags": "zz-common,zz-mid,zz-rare"}, headers=user["headers"]))
    assert [(t["name"], t["usageCount"]) for t in body["payload"]] == [("zz-common", 4), ("zz-mid", 3), ("zz-rare", 1)]
    assert body["metadata"]["totalCount"] == 3
    page = assert_ok(client.get("/getTagsList", query_string={"limit": 1, "skipCount": 1, "tags": "zz-common,zz-mid,zz-rare"},
                                headers=user["headers"]))
    assert [t["name"] for t in page["payload"]] == ["zz-mid"]
    assert assert_ok(client.get("/getTagsList", query_string={"limit": 500}, headers=user["headers"]))["metadata"]["limit"] == 100


def test_tags_list_shows_only_public_tags_and_the_callers_own(app, client, user):
    """The attack: a stranger reads getTagsList to learn the tags on a user's private Items and folders."""
    private_item, public_item = make_items(app, user["user_id"], 2)
    post(client, user, "/addTagsToItem", imageID=private_item, tags=["zz-secret-item"])
    post(client, user, "/addTagsToItem", folderID=new_folder(client, user), tags=["zz-secret-folder"])
    post(client, user, "/addTagsToItem", folderID=new_folder(client, user, public=True), tags=["zz-open-folder"])
    shown_folder = new_folder(client, user, public=True, name="shown")
    publish(client, user, public_item, shown_folder)
    post(client, user, "/addTagsToItem", imageID=public_item, tags=["zz-open-item", "zz-secret-item"])
    names = ("zz-secret-item", "zz-secret-folder", "zz-open-folder", "zz-open-item")
    stranger = sign_up(client)
    anonymous = {"headers": new_session_headers()}
    for outsider in (stranger, anonymous):
        body = assert_ok(client.get("/getTagsList", headers=outsider["headers"]))
        listed = {t["name"]: t["usageCount"] for t in body["payload"]}
        assert "zz-secret-folder" not in listed
        assert listed["zz-secret-item"] == 1  # the public Item's use only
        assert usage(client, outsider, *names) == {"zz-secret-item": 1, "zz-open-folder": 1, "zz-open-item": 1}
        assert body["metadata"]["totalCount"] == len(listed)
    assert usage(client, user, *names) == {"zz-secret-item": 2, "zz-secret-folder": 1, "zz-open-folder": 1,
                                           "zz-open-item": 1}
