"""Likes and dislikes, including counts under parallel requests."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tests.conftest import assert_error, assert_ok, sign_up
from tests.library_helpers import make_items, publish


def image(client, who, item_id):
    return assert_ok(client.get("/getItem", query_string={"imageID": item_id}, headers=who["headers"]))["payload"]


def react(client, who, path, ids):
    return assert_ok(client.post(path, json={"imageIDs": ids}, headers=who["headers"]))["payload"]


def test_like_and_dislike_exclude_each_other(app, client, user):
    [item_id] = make_items(app, user["user_id"])
    assert react(client, user, "/likeItems", [item_id]) == [{"id": item_id, "success": True}]
    again = react(client, user, "/likeItems", [item_id])[0]
    assert again["success"] is False and "already" in again["message"]
    seen = image(client, user, item_id)
    assert (seen["likeCount"], seen["dislikeCount"], seen["isLiked"], seen["isDisliked"]) == (1, 0, True, False)
    assert react(client, user, "/dislikeItems", [item_id])[0]["success"]
    seen = image(client, user, item_id)
    assert (seen["likeCount"], seen["dislikeCount"], seen["isLiked"], seen["isDisliked"]) == (0, 1, False, True)
    assert react(client, user, "/unlikeItems", [item_id])[0]["success"] is False
    assert react(client, user, "/undislikeItems", [item_id])[0]["success"] is True
    seen = image(client, user, item_id)
    assert (seen["likeCount"], seen["dislikeCount"], seen["isLiked"], seen["isDisliked"]) == (0, 0, False, False)


def test_reactions_need_a_visible_item_and_a_signed_in_user(app, client, user):
    [private] = make_items(app, user["user_id"])
    other = sign_up(client)
    result = react(client, other, "/likeItems", [private, "missing"])
    assert [r["success"] for r in result] == [False, False]
    assert_error(client.post("/likeItems", json={"imageIDs": [private]}), 401, "signed in")
    assert_error(client.post("/likeItems", json={"imageIDs": []}, headers=user["headers"]), 400, "imageIDs")
    assert_error(client.post("/likeItems", json={"imageIDs": 5}, headers=user["headers"]), 400, "imageIDs")
    # comma-separated ids are accepted too (SPEC-GAPS 17)
    assert react(client, user, "/likeItems", private)[0]["success"] is True


def test_parallel_likes_count_exactly(app, client, user):
    [item_id] = make_items(app, user["user_id"])
    publish(client, user, item_id)
    likers = [sign_up(client) for _ in range(8)]

    def like(who):
        c = app.test_client()
        return c.post("/likeItems", json={"imageIDs": [item_id]}, headers=who["headers"]).get_json()

    # every liker twice, all at once: 8 likes counted, 8 refused as repeats
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(like, likers + likers))
    successes = sum(a["payload"][0]["success"] for a in answers)
    assert successes == 8
    assert image(client, user, item_id)["likeCount"] == 8
    # half switch to dislike in parallel while the others unlike
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda who: app.test_client().post("/dislikeItems", json={"imageIDs": [item_id]},
                                                         headers=who["headers"]), likers[:4]))
        list(pool.map(lambda who: app.test_client().post("/unlikeItems", json={"imageIDs": [item_id]},
                                                         headers=who["headers"]), likers[4:]))
    seen = image(client, user, item_id)
    assert (seen["likeCount"], seen["dislikeCount"]) == (0, 4)
    assert image(client, likers[0], item_id)["isDisliked"] is True
