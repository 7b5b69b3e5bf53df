"""Every converted response schema, dumped from a fully populated object through the HTTP
API, carries each property the contract (Annex: Common Types, and getUser's tables) lists for
that object, with the contract's type.

The contract's tables are transcribed below (``CONTRACT``), so a property the schemas
forget or rename fails here; the last test checks the transcription against the contract's
text when ``AIMG_CONTRACT_TEXT`` names it.
"""
from __future__ import annotations

import base64
import datetime as dt
import io
import os
import re
import uuid
from pathlib import Path

import pytest
from PIL import Image as PILImage

from aimg_app.models.base import epoch_ms, utcnow
from aimg_app.models.billing import Subscription
from aimg_app.models.user import LoginProviderLink
from tests.conftest import ADMIN_HEADERS, assert_ok, last_otp, new_session_headers, sign_up
from tests.library_helpers import make_items, publish, set_user_fields
from tests.support.billing import create_plan, post_test_webhook

# The contract's tables (Annex: Common Types; getUser's two tables as "User" and, with the
# extended fields, "AdminUser"): property -> type. Checked against the contract's text by
# the last test when AIMG_CONTRACT_TEXT names it.
CONTRACT: dict[str, dict] = {
    "SelfUser": {
        "sessionID": "string", "userID": "string", "email": "string", "username": "string",
        "isAuthenticated": "boolean", "isAtLeast18Confirmed": "boolean", "profilePicture": "string",
        "tier": "number", "tierExpiration": "string", "merchantProcessor": "string",
        "subscriptions": "Subscription[]", "itemCount": "number", "rootFolderItemCount": "number"},
    "Subscription": {
        "merchantProcessor": "string", "tier": "number", "tierExpiration": "string", "nextBillingDate": "string",
        "productID": "string", "payerID": "string", "transactionID": "string", "additionalInformation": "string",
        "price": {"type": "string", "period": "string", "currency": "string", "currencyType": "string",
                  "value": "number"}},
    "LoginProvider": {
        "providerType": "string", "providerId": "string", "userId": "string"},
    "ArchivedEmail": {
        "email": "string", "archivedDate": "string"},
    "Folder": {
        "id": "string", "name": "string", "description": "string", "userID": "string", "isPublic": "boolean",
        "imageCount": "number", "sampleImages": "ImageThumbnail[]", "thumbnails": "ImageThumbnail[]",
        "createdDate": "Date", "updatedDate": "Date", "tags": "string[]"},
    "Image": {
        "id": "string", "userID": "string", "batchID": "string", "url": "string", "viewCount": "number",
        "likeCount": "number", "dislikeCount": "number", "completedDate": "number", "completedTimestamp": "string",
        "mtype": "string", "mediaType": "string", "tags": "string[]", "isLiked": "boolean", "isDisliked": "boolean",
        "isPublic": "boolean", "isPubliclyVisible": "boolean", "publicApprovalStatus": "string",
        "folderID": "string", "folderAddedDate": "number", "folderAddedTimestamp": "string"},
    "ImageInfo": {
        "id": "string", "userID": "string", "batchID": "string", "username": "string", "profilePicture": "string",
        "url": "string", "viewCount": "number", "likeCount": "number", "dislikeCount": "number",
        "completedDate": "number", "completedTimestamp": "string", "prompt": "string", "negprompt": "string",
        "generatorVersion": "string", "workflowTemplateName": "string",
        "workflowRunParameters": "WorkflowRunParameter[]", "modelName": "string", "modelID": "string",
        "steps": "number", "seed": "number", "subseed": "number", "subseed_strength": "number", "lora": "string[]",
        "lora_strength": "number[]", "sampler": "string", "cfgscale": "number", "restoreFaces": "boolean",
        "height": "number", "width": "number", "mtype": "string", "tags": "string[]", "isLiked": "boolean",
        "isDisliked": "boolean", "isPublic": "boolean", "isPubliclyVisible": "boolean",
        "publicApprovalStatus": "string", "folderID": "string"},
    "ImageThumbnail": {
        "imageID": "string", "url": "string"},
    "BillingPlan": {
        "id": "string", "name": "string", "description": "string", "features": "string[]",
        "mainBenefits": "string[]", "prices": "BillingPlanPrice[]", "tier": "number"},
    "BillingPlanPrice": {
        "name": "string", "type": "string", "period": "string", "currency": "string", "currencyType": "string",
        "value": "number", "trialDays": "number", "paymentProviders": "BillingPlanPaymentProvider[]"},
    "BillingPlanPaymentProvider": {
        "paymentProvider": "string", "paymentLabel": "string", "paymentUrl": "string"},
    "WorkflowRunParameter": {
        "name": "string", "value": "string"},
    "User": {
        "userID": "string", "username": "string", "profilePicture": "string"},
    "AdminUser": {
        "userID": "string", "username": "string", "profilePicture": "boolean", "email": "string",
        "createdDate": "string", "updatedDate": "string", "deletedDate": "string", "isDisabled": "boolean",
        "isAtLeast18Confirmed": "boolean", "tier": "number", "tierExpiration": "string",
        "merchantProcessor": "string", "subscriptions": "Subscription[]", "flaggedImagesCount": "number",
        "highHeatImagesCount": "number", "refList": "string[]", "rs": "string", "loginProviders": "LoginProvider[]",
        "connectProviders": "LoginProvider[]", "abuse": "number", "profilePictureBanned": "boolean",
        "archivedEmails": "ArchivedEmail[]", "itemCount": "number", "publicItemCount": "number",
        "rootFolderItemCount": "number", "additionalInformation": "string", "roles": "string[]"},
}

# Object types the tables refer to, checked recursively.
NESTED = {"Subscription", "LoginProvider", "ArchivedEmail", "ImageThumbnail", "BillingPlanPrice",
          "BillingPlanPaymentProvider", "WorkflowRunParameter"}


def _table(name: str) -> dict:
    return CONTRACT[name]


def assert_contract(value, spec, where: str) -> None:
    """``value`` has every property of ``spec`` (a table or a type name) with its type."""
    if isinstance(spec, dict):
        assert isinstance(value, dict), (where, value)
        missing = [name for name in spec if name not in value]
        assert not missing, f"{where}: missing {missing} in {sorted(value)}"
        for name, kind in spec.items():
            assert_contract(value[name], kind, f"{where}.{name}")
        return
    if spec == "list":  # entries checked by the caller
        assert isinstance(value, list) and value, (where, value)
        return
    if spec.endswith("[]"):
        assert isinstance(value, list), (where, value)
        assert value, f"{where}: a fully populated object has entries here"
        for i, entry in enumerate(value):
            assert_contract(entry, spec[:-2], f"{where}[{i}]")
        return
    if spec in NESTED:
        assert_contract(value, _table(spec), where)
        return
    expected = {"string": str, "Date": str, "boolean": bool, "number": (int, float)}[spec]
    assert isinstance(value, expected) and not (spec == "number" and isinstance(value, bool)), (where, spec, value)
    if spec == "Date":
        assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$", value), (where, value)


def _picture() -> str:
    buf = io.BytesIO()
    PILImage.new("RGB", (64, 64), (10, 120, 200)).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


@pytest.fixture(scope="module")
def world(app, services):
    """One owner with everything the contract can show: picture, subscriptions with price,
    an archived email, referrers, roles, providers; a public folder with description, tags,
    thumbnails and samples; a workflow Item in it, liked, tagged; a plan with every option."""
    client = app.test_client()
    owner = sign_up(client, refList=["https://ref.example/a"], rs="affiliate-7", isAtLeast18Confirmed=True)
    assert_ok(client.post("/setSelfUserProfilePicture", json={"profilePicture": _picture()}, headers=owner["headers"]))

    new_email = f"moved-{uuid.uuid4().hex[:8]}@example.com"
    assert_ok(client.post("/requestOTP", json={"email": new_email, "signUp": True}, headers=owner["headers"]))
    assert_ok(client.post("/setSelfUserProperties", json={"email": new_email, "otp": last_otp(services, new_email)},
                          headers=owner["headers"]))
    owner["email"] = new_email

    plan = assert_ok(client.post("/createBillingPlan", headers=ADMIN_HEADERS, json={
        "name": "Everything", "description": "All of it", "features": ["fast"], "mainBenefits": ["no ads"], "tier": 2,
        "prices": [{"name": "Launch offer", "type": "trial", "period": "monthly", "currency": "USD",
                    "currencyType": "fiat", "value": 4.5, "trialDays": 7,
                    "paymentProviders": [{"paymentProvider": "other", "paymentLabel": "Pay now"}]}]}))["payload"]
    product = plan["prices"][0]["productID"]
    sub = f"sub-{uuid.uuid4().hex[:8]}"
    now = utcnow()
    assert_ok(post_test_webhook(client, f"{sub}-1", [{
        "kind": "started", "subscription": sub, "at": epoch_ms(now), "user": owner["user_id"], "product": product,
        "until": epoch_ms(now + dt.timedelta(days=30)), "payment": "p1"}]))
    assert_ok(client.post("/setAdminProvidedPremiumTier", headers=ADMIN_HEADERS, json={
        "productId": "press", "email": owner["email"], "tier": 1, "isActive": True, "additionalInformation": "press"}))
    with app.app_context():
        app.extensions["aimg"].connect_mongo()
        # Set-up of facts other features own: the test processor sends no payer.
        Subscription.objects(user_id=owner["user_id"]).update(set__payer_id="payer-1",
                                                              set__additional_information="a note")
    set_user_fields(app, owner["user_id"], roles=["moderator"], connect_providers=[
        LoginProviderLink(provider_type="oauth", provider_id="Patreon", user_id="patreon-1")],
        login_providers=[LoginProviderLink(provider_type="internal", provider_id="Password"),
                         LoginProviderLink(provider_type="oauth", provider_id="Google", user_id="google-1")])
    assert_ok(client.post("/setUserAdditionalInformation", headers=ADMIN_HEADERS,
                          json={"userID": owner["user_id"], "additionalInformation": "a note"}))

    folder = assert_ok(client.post("/createPublicFolder", json={"name": "Best", "description": "The best ones"},
                                   headers=owner["headers"]))["payload"]["id"]
    [item] = make_items(app, owner["user_id"], generator_version="2", workflow_template_name="portrait",
                        workflow_run_parameters=[{"name": "steps", "value": "20"}], negprompt="blurry",
                        lora=["film"], lora_strength=[0.6], sampler="euler", cfgscale=7.5, restore_faces=True,
                        subseed=3, subseed_strength=0.2)
    publish(client, owner, item, folder)
    assert_ok(client.post("/addTagsToItem", json={"imageID": item, "tags": ["sea"]}, headers=owner["headers"]))
    assert_ok(client.post("/addTagsToItem", json={"folderID": folder, "tags": ["best"]}, headers=owner["headers"]))
    assert_ok(client.post("/setThumbnailImagesForPublicFolder", json={"folderID": folder, "imageIDs": [item]},
                          headers=owner["headers"]))
    assert_ok(client.post("/likeItems", json={"imageIDs": [item]}, headers=owner["headers"]))
    batch = assert_ok(client.get("/getItem", query_string={"imageID": item}, headers=owner["headers"]))["payload"]
    return {"client": client, "owner": owner, "folder": folder, "item": item, "batch": batch["batchID"],
            "product": product}


def _get(world, path, headers=None, **query):
    return assert_ok(world["client"].get(path, query_string=query, headers=headers or world["owner"]["headers"]))


# --- SelfUser ------------------------------------------------------------------------------------


def test_self_user(world):
    me = _get(world, "/getSelfUser", profilePicture="true", extendedPriceInfo="true")["payload"]
    assert_contract(me, {**_table("SelfUser"), "subscriptions": "list"}, "SelfUser")
    assert me["userID"] == world["owner"]["user_id"] and me["isAuthenticated"] is True
    assert me["profilePicture"].startswith("data:image/webp;base64,")
    [paid, granted] = me["subscriptions"]
    # every Subscription property, the optional ones included, on the vendor's subscription
    assert_contract(paid, _table("Subscription"), "SelfUser.subscriptions[0]")
    assert paid["price"] == {"type": "trial", "period": "monthly", "currency": "USD", "currencyType": "fiat",
                             "value": 4.5}
    mandatory = {k: v for k, v in _table("Subscription").items() if k in ("merchantProcessor", "tier", "productID")}
    assert_contract(granted, mandatory, "SelfUser.subscriptions[1]")
    assert "price" not in granted and "nextBillingDate" not in granted  # an admin grant has neither
    plain = _get(world, "/getSelfUser")["payload"]
    assert "profilePicture" not in plain and all("price" not in s for s in plain["subscriptions"])


def test_anonymous_self_user_has_nulls_where_the_contract_has_a_user(world):
    me = _get(world, "/getSelfUser", headers=new_session_headers())["payload"]
    assert me["userID"] is None and me["email"] is None and me["username"] is None
    assert me["isAuthenticated"] is False and me["subscriptions"] == [] and me["tier"] == 0
    assert "tierExpiration" not in me and "profilePicture" not in me


def test_sign_in_answers_are_self_users(world):
    client = world["client"]
    email = f"fresh-{uuid.uuid4().hex[:8]}@example.com"
    created = assert_ok(client.post("/createUser", json={"email": email, "password": "Sup3r-Secret!pass"},
                                    headers=new_session_headers()))["payload"]
    signed_in = assert_ok(client.post("/authenticateUser", json={"email": email, "password": "Sup3r-Secret!pass"},
                                      headers=new_session_headers()))["payload"]
    for me in (created, signed_in):
        table = {k: v for k, v in _table("SelfUser").items() if k not in ("profilePicture", "tierExpiration",
                                                                          "subscriptions")}
        assert_contract(me, table, "SelfUser")
        assert me["subscriptions"] == []


# --- getUser ---------------------------------------------------------------------------------------


def test_public_and_admin_user(world):
    public_table, admin_table = CONTRACT["User"], CONTRACT["AdminUser"]
    stranger = new_session_headers()
    public = _get(world, "/getUser", headers=stranger, userID=world["owner"]["user_id"])["payload"]
    assert_contract(public, public_table, "User")
    assert set(public) == set(public_table)  # nothing private leaks to others

    admin = _get(world, "/getUser", headers=ADMIN_HEADERS, userID=world["owner"]["user_id"])["payload"]
    table = {k: v for k, v in admin_table.items() if k != "deletedDate"}  # deletedDate once deleted
    # an internal login provider has no userId: its entries are checked one by one below
    assert_contract(admin, {**table, "subscriptions": "list", "loginProviders": "list"}, "admin User")
    no_price = {k: v for k, v in _table("Subscription").items() if k != "price"}  # price: extendedPriceInfo only
    assert_contract(admin["subscriptions"][0], no_price, "admin User.subscriptions[0]")
    assert admin["profilePicture"] is True and admin["refList"] == ["https://ref.example/a"]
    assert admin["archivedEmails"] and admin["loginProviders"][0] == {"providerType": "internal",
                                                                      "providerId": "Password"}
    assert {"providerType": "oauth", "providerId": "Google", "userId": "google-1"} in admin["loginProviders"]
    assert admin["tierExpiration"] == admin["subscriptions"][0]["tierExpiration"]


def test_admin_user_of_a_deleted_account(app, world):
    client = world["client"]
    doomed = sign_up(client)
    assert_ok(client.delete("/deleteUser", headers=doomed["headers"]))
    admin = _get(world, "/getUser", headers=ADMIN_HEADERS, userID=doomed["user_id"])["payload"]
    assert_contract(admin["deletedDate"], "Date", "deletedDate")
    assert admin["isDisabled"] is True and admin["rs"] is None  # the contract's rs, null when none


# --- Folder ----------------------------------------------------------------------------------------


def test_folder(world):
    client, owner = world["client"], world["owner"]
    table = _table("Folder")
    listed = _get(world, "/getPublicFolders", headers=new_session_headers(), userID=owner["user_id"])["payload"]
    [folder] = [f for f in listed if f["id"] == world["folder"]]
    assert_contract(folder, table, "Folder")
    assert folder["imageCount"] == 1 and folder["thumbnails"] == [{"imageID": world["item"], "url": folder[
        "thumbnails"][0]["url"]}]
    changed = assert_ok(client.post("/setPublicFolderProperties", json={"folderID": world["folder"],
                                                                       "folderName": "Better"},
                                    headers=owner["headers"]))["payload"]
    assert_contract(changed, table, "Folder")
    bare = assert_ok(client.post("/createSelfFolder", json={"name": "plain"}, headers=owner["headers"]))["payload"]
    assert "description" not in bare and bare["sampleImages"] == [] and bare["thumbnails"] == []
    private = _get(world, "/getSelfFolders")["payload"]
    assert [f["id"] for f in private] == [bare["id"]]


# --- Image and ImageInfo -----------------------------------------------------------------------------


def test_image(world):
    table = _table("Image")
    item = world["item"]
    one = _get(world, "/getItem", imageID=item)["payload"]
    assert_contract(one, table, "Image")
    assert one["isLiked"] is True and one["isDisliked"] is False and one["publicApprovalStatus"] == "approved"
    for path in ("/getMyCreations", "/getPublicCreations"):
        [listed] = [i for i in _get(world, path, userID=world["owner"]["user_id"])["payload"] if i["id"] == item]
        assert_contract(listed, table, f"{path} Image")
    assert_contract(_get(world, "/getLastCompletedItem")["payload"], table, "getLastCompletedItem")
    [admin] = [i for i in _get(world, "/getItems", headers={**world["owner"]["headers"], **ADMIN_HEADERS},
                               userID=world["owner"]["user_id"])["payload"] if i["id"] == item]
    assert_contract(admin, table, "getItems Image")

    other = _get(world, "/getItem", headers=new_session_headers(), imageID=item)["payload"]
    assert "batchID" not in other and "publicApprovalStatus" not in other and "isLiked" not in other
    assert other["folderID"] == world["folder"]  # a public folder shows to everyone


def test_sample_images_are_reduced(world):
    mandatory = {k: v for k, v in _table("Image").items() if k in ("id", "url", "mtype", "mediaType", "isPublic")}
    for path in ("/getLatestItems", "/getSampleItems"):
        [sample] = [i for i in _get(world, path)["payload"] if i["id"] == world["item"]]
        assert_contract(sample, mandatory, f"{path} Image")
        assert "batchID" not in sample and "isLiked" not in sample and "folderID" not in sample


def test_image_info(world):
    table = _table("ImageInfo")
    details = _get(world, "/getItemDetails", imageID=world["item"])["payload"]
    assert_contract(details, table, "ImageInfo")
    assert details["workflowRunParameters"] == [{"name": "steps", "value": "20"}]
    assert details["cfgscale"] == 7.5 and details["lora"] == ["film"] and details["restoreFaces"] is True
    assert details["profilePicture"].startswith("data:image/webp;base64,")
    [in_batch] = _get(world, "/getBatchItems", batchID=world["batch"])["payload"]
    # a batch lists the caller's own Items: their owner's name and picture are not repeated
    assert_contract(in_batch, {k: v for k, v in table.items() if k not in ("username", "profilePicture")},
                    "getBatchItems ImageInfo")


def test_v1_item_info_has_no_workflow_properties(app, world):
    [item] = make_items(app, world["owner"]["user_id"])
    details = _get(world, "/getItemDetails", imageID=item)["payload"]
    assert details["generatorVersion"] == "1" and "workflowRunParameters" not in details
    assert details["cfgscale"] == 0 and isinstance(details["cfgscale"], float)  # number, written as 0.0


def test_changed_item_is_an_image(world, app):
    [item] = make_items(app, world["owner"]["user_id"])
    changed = assert_ok(world["client"].post("/setItemProperties", json={"imageID": item,
                                                                         "publicApprovalStatus": "pending"},
                                             headers=world["owner"]["headers"]))["payload"]
    assert changed["publicApprovalStatus"] == "pending" and changed["id"] == item
    assert_contract(changed, {k: v for k, v in _table("Image").items()
                                if not k.startswith("folder") and k != "tags"}, "Image")


# --- BillingPlan -------------------------------------------------------------------------------------


def test_billing_plan(world):
    [plan] = [p for p in _get(world, "/getBillingPlans")["payload"]
              if p["prices"][0]["productID"] == world["product"]]
    assert_contract(plan, _table("BillingPlan"), "BillingPlan")
    assert_contract(plan["prices"][0], _table("BillingPlanPrice"), "BillingPlanPrice")
    assert plan["prices"][0]["paymentProviders"][0]["paymentLabel"] == "Pay now"
    bare = create_plan(world["client"])
    assert "description" not in bare and "name" not in bare["prices"][0] and "trialDays" not in bare["prices"][0]


# --- the transcription above --------------------------------------------------------------------


def _rows(lines: list[str], start: int) -> list[tuple[str, str]]:
    """(name, type) of a table's rows, from the line after its header to the first blank line."""
    out = []
    for line in lines[start:]:
        if not line.strip():
            break
        name, kind = line.split()[:2]
        out.append((name, kind))
    return out


def _text_table(text: str, title: str) -> dict[str, str]:
    """The contract's table of the common type ``title``: property -> type."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip() == title and i + 2 < len(lines) and lines[i + 2].startswith("Parameter Type M/O"):
            return _as_object(_rows(lines, i + 3))
    raise AssertionError(f"no table for {title} in the contract")


def _text_get_user_tables(text: str) -> tuple[dict[str, str], dict[str, str]]:
    """getUser's two tables: what everyone gets, and what admins get on top."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "GET {BaseURL}/getUser")
    headers = [i for i in range(start, len(lines)) if lines[i].startswith("Parameter Type Description")][:2]
    public = _as_object(_rows(lines, headers[0] + 1))
    extended = _as_object(_rows(lines, headers[1] + 1))
    return public, {**public, **extended}


def _as_object(rows: list[tuple[str, str]]) -> dict:
    """Rows to {name: type}; ``price.type``-style rows make ``price`` an object of them."""
    table: dict = {}
    for name, kind in rows:
        if "." in name:
            parent, child = name.split(".", 1)
            if not isinstance(table.get(parent), dict):
                table[parent] = {}
            table[parent][child] = kind
        else:
            table.setdefault(name, kind)
    return table


@pytest.mark.skipif(not os.environ.get("AIMG_CONTRACT_TEXT"), reason="AIMG_CONTRACT_TEXT names no contract text")
def test_the_tables_are_the_contracts():
    text = Path(os.environ["AIMG_CONTRACT_TEXT"]).read_text(encoding="utf-8")
    for name, table in CONTRACT.items():
        if name not in ("User", "AdminUser"):
            assert _text_table(text, name) == table, name
    assert _text_get_user_tables(text) == (CONTRACT["User"], CONTRACT["AdminUser"])
