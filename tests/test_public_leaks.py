"""What must never leak to other users or other sites, attacked through the HTTP API:
Items that stopped being public, folders of other users, deleted users, other domains."""
from __future__ import annotations

import base64
import io
import uuid

import pytest
from PIL import Image

from aimg_app.config import Domain
from tests.conftest import ADMIN_HEADERS, STRONG_PASSWORD, assert_error, assert_ok, new_session_headers, sign_up
from tests.generation_support import clear_generation_queues, grant_tier
from tests.library_helpers import make_items, new_folder, publish

DOMAINS = (
    Domain("aimg.example", "AIMG", "prod", ("https://aimg.example",), ("api.aimg.example",)),
    Domain("other.example", "Other Site", "stage", ("https://other.example",), ("api.other.example",)),
)
OTHER_SITE = "http://api.other.example"


@pytest.fixture(scope="module")
def app(make_app):
    from tests.plugins import every_hook

    app = make_app(plugins=[every_hook], domains=DOMAINS)
    clear_generation_queues(app)
    yield app
    clear_generation_queues(app)  # nothing queued here is for another module's workers


def get(client, who, path, **query):
    return assert_ok(client.get(path, query_string=query, headers=who["headers"]))


def post(client, who, path, **body):
    return assert_ok(client.post(path, json=body, headers=who["headers"]))["payload"]


def public_folder_view(client, viewer, owner, folder_id):
    listed = get(client, viewer, "/getPublicFolders", userID=owner["user_id"])["payload"]
    return next(f for f in listed if f["id"] == folder_id)


def published_folder(app, client, owner, n=2):
    """A public folder of ``owner`` holding ``n`` published Items, all of them its thumbnails."""
    ids = make_items(app, owner["user_id"], n)
    folder = new_folder(client, owner, public=True)
    for item_id in ids:
        publish(client, owner, item_id, folder)
    assert post(client, owner, "/setThumbnailImagesForPublicFolder", folderID=folder, imageIDs=ids)["success"]
    return ids, folder


# --- 1. a public folder's thumbnails -------------------------------------------------------


def test_an_item_made_private_leaves_the_public_folders_thumbnails(app, client, user):
    ids, folder = published_folder(app, client, user)
    other = sign_up(client)
    assert {t["imageID"] for t in public_folder_view(client, other, user, folder)["thumbnails"]} == set(ids)
    post(client, user, "/setItemProperties", imageID=ids[0], isPublic=False)
    seen = public_folder_view(client, other, user, folder)
    assert [t["imageID"] for t in seen["thumbnails"]] == [ids[1]]
    assert [t["imageID"] for t in seen["sampleImages"]] == [ids[1]]
    # the owner's own view of the folder agrees: it is gone from the thumbnails, not hidden
    assert [t["imageID"] for t in public_folder_view(client, user, user, folder)["thumbnails"]] == [ids[1]]


def test_an_item_rejected_by_an_admin_leaves_the_public_folders_thumbnails(app, client, user):
    ids, folder = published_folder(app, client, user)
    body = assert_ok(client.post("/setPublicApprovalStatus", json={"imageIDs": [ids[1]], "publicApprovalStatus":
                                                                   "rejected"}, headers={**user["headers"], **ADMIN_HEADERS}))
    assert body["payload"][0]["success"], body
    seen = public_folder_view(client, sign_up(client), user, folder)
    assert [t["imageID"] for t in seen["thumbnails"]] == [ids[0]]
    assert all(ids[1] not in t["url"] for t in seen["thumbnails"] + seen["sampleImages"])


# --- 2. generating into another user's folder -------------------------------------------------


@pytest.mark.parametrize("public", [False, True])
def test_nobody_generates_into_another_users_folder(app, client, user, public):
    folder = new_folder(client, user, public=public)
    attacker = sign_up(client)
    grant_tier(attacker["user_id"], 1)
    assert_error(client.post("/generateImage", json={"prompt": "x", "modelName": "test-model", "folderID": folder},
                             headers=attacker["headers"]), 404, "folder")
    assert_error(client.post("/2/enqueueWorkflow", json={"workflowTemplateName": "test-blank", "folderID": folder},
                             headers=attacker["headers"]), 404, "folder")
    # anonymous callers have no folder to name
    assert_error(client.post("/generateImage", json={"prompt": "x", "modelName": "test-model", "folderID": folder},
                             headers=new_session_headers()), 404, "folder")
    # the owner still can, and getItemStatus names the folder
    queued = post(client, user, "/generateImage", prompt="x", modelName="test-model", folderID=folder)
    assert queued["folderID"] == folder
    status = get(client, user, "/getItemStatus", imageID=queued["imageID"])["payload"]
    assert status["folderID"] == folder


def test_a_folders_samples_are_its_owners_completed_items_only(app, client, user):
    folder = new_folder(client, user)
    queued = post(client, user, "/generateImage", prompt="x", modelName="test-model", folderID=folder)
    done = make_items(app, user["user_id"], 1)
    assert post(client, user, "/addImagesToSelfFolder", folderID=folder, imageIDs=done)["success"]
    view = next(f for f in get(client, user, "/getSelfFolders")["payload"] if f["id"] == folder)
    assert [s["imageID"] for s in view["sampleImages"]] == done, (queued, view)
    assert all(s["url"] for s in view["sampleImages"])


# --- 3. a deleted user -----------------------------------------------------------------------------


def _png_uri() -> str:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 10, 10)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def test_a_deleted_users_public_content_and_name_are_no_longer_public(app, client):
    owner = sign_up(client)
    assert_ok(client.post("/setSelfUserProfilePicture", json={"profilePicture": _png_uri()}, headers=owner["headers"]))
    ids, folder = published_folder(app, client, owner)
    loose = make_items(app, owner["user_id"], 1)[0]  # public, approved, but in no folder
    publish(client, owner, loose)
    waiting = make_items(app, owner["user_id"], 1)[0]
    post(client, owner, "/setItemProperties", imageID=waiting, publicApprovalStatus="pending")
    viewer = sign_up(client)
    details = get(client, viewer, "/getItemDetails", imageID=ids[0])["payload"]
    assert details.get("username") and details.get("profilePicture")

    assert_ok(client.delete("/deleteUser", headers=owner["headers"]))

    for item_id in ids + [loose]:
        assert_error(client.get("/getItemDetails", query_string={"imageID": item_id}, headers=viewer["headers"]), 404)
    assert get(client, viewer, "/getPublicCreations", userID=owner["user_id"])["payload"] == []
    assert get(client, viewer, "/getPublicFolders", userID=owner["user_id"])["payload"] == []
    every_public = {f["id"] for f in get(client, viewer, "/getPublicFolders", limit=100)["payload"]}
    assert folder not in every_public
    latest = {i["id"] for i in get(client, viewer, "/getLatestItems", limit=100)["payload"]}
    assert not latest & set(ids + [loose])
    # an admin still reads the Item (kept, not deleted) but no longer the deleted owner's name or picture
    admin_view = assert_ok(client.get("/getItemDetails", query_string={"imageID": ids[0]},
                                      headers={**viewer["headers"], **ADMIN_HEADERS}))["payload"]
    assert "username" not in admin_view and "profilePicture" not in admin_view
    assert admin_view["isPublic"] is False and admin_view["isPubliclyVisible"] is False
    # nor can an admin publish one of them afterwards
    late = assert_ok(client.post("/setPublicApprovalStatus", json={"imageIDs": [waiting], "publicApprovalStatus":
                                                                   "approved"}, headers={**viewer["headers"], **ADMIN_HEADERS}))
    assert late["payload"][0]["success"] is False
    assert_error(client.get("/getItemDetails", query_string={"imageID": waiting}, headers=viewer["headers"]), 404)


# --- 4. public lists of another site ---------------------------------------------------------------


def test_public_lists_by_user_stay_on_the_requests_site(app, client):
    elsewhere = new_session_headers()
    email = f"user-{uuid.uuid4().hex[:10]}@example.com"
    created = assert_ok(client.post("/createUser", json={"email": email, "password": STRONG_PASSWORD},
                                    headers=elsewhere, base_url=OTHER_SITE))["payload"]
    stranger = {"headers": elsewhere, "user_id": created["userID"]}

    def on_other_site(method, path, **kw):
        return getattr(client, method)(path, base_url=OTHER_SITE, headers=elsewhere, **kw)

    folder = assert_ok(on_other_site("post", "/createPublicFolder", json={"name": "f"}))["payload"]["id"]
    with app.app_context():
        from aimg_app.models.item import Item
        from aimg_app.services import items as items_service

        made = items_service.create_queued_items(user_id=stranger["user_id"], domain="other.example", count=1,
                                                 mtype="image", params={"prompt": "p"})
        items_service.complete_item(made[0].id, url="https://files.example/x.png", file_id=None, width=8, height=8)
    item_id = made[0].id
    assert_ok(on_other_site("post", "/setItemProperties", json={"imageID": item_id,
                                                                "publicApprovalStatus": "pending"}))
    assert_ok(client.post("/setPublicApprovalStatus", json={"imageIDs": [item_id], "publicApprovalStatus": "approved"},
                          base_url=OTHER_SITE, headers={**elsewhere, **ADMIN_HEADERS}))
    assert_ok(on_other_site("post", "/addImagesToPublicFolder", json={"folderID": folder, "imageIDs": [item_id]}))
    there = assert_ok(on_other_site("get", "/getPublicCreations", query_string={"userID": stranger["user_id"]}))
    assert [i["id"] for i in there["payload"]] == [item_id] and there["metadata"]["totalCount"] == 1

    here = sign_up(client)  # the default site
    creations = get(client, here, "/getPublicCreations", userID=stranger["user_id"])
    assert creations["payload"] == [] and creations["metadata"].get("totalCount", 0) == 0
    folders = get(client, here, "/getPublicFolders", userID=stranger["user_id"])
    assert folders["payload"] == [] and folders["metadata"]["totalCount"] == 0


def test_public_creations_total_counts_what_the_filters_can_return(app, client, user):
    ids, folder = published_folder(app, client, user)
    other = sign_up(client)
    body = get(client, other, "/getPublicCreations", folderID=folder, userID=other["user_id"])
    assert body["payload"] == [] and body["metadata"]["totalCount"] == 0
    body = get(client, other, "/getPublicCreations", folderID=folder, userID=user["user_id"])
    assert len(body["payload"]) == 2 and body["metadata"]["totalCount"] == 2


# --- 5. legacy Items ---------------------------------------------------------------------------------


def test_a_legacy_items_details_have_no_workflow_template_name(app, client, user):
    legacy = make_items(app, user["user_id"], 1, generator_version="1", workflow_template_name="txt2img-sd15")[0]
    details = get(client, user, "/getItemDetails", imageID=legacy)["payload"]
    assert details["generatorVersion"] == "1"
    assert "workflowTemplateName" not in details and "workflowRunParameters" not in details
    api2 = make_items(app, user["user_id"], 1, generator_version="2", workflow_template_name="test-blank")[0]
    assert get(client, user, "/getItemDetails", imageID=api2)["payload"]["workflowTemplateName"] == "test-blank"
