"""The Admin UI's security and lists, through Flask's test client (the browser tests are in
``test_admin_ui_browser.py``)."""
from __future__ import annotations

import datetime as dt
import re
import time

import pytest

from aimg_app.admin import COOKIE_NAME, views
from aimg_app.models.admin_action import AdminAction
from aimg_app.models.item import Item
from tests.conftest import ADMIN_HEADERS, ADMIN_KEY, assert_ok, new_session_headers
from tests.indexes import covering_index
from tests.library_helpers import make_items

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(response) -> str:
    return CSRF.search(response.get_data(as_text=True)).group(1)


def signed_in(client, key: str = ADMIN_KEY):
    token = csrf_of(client.get("/admin/sign-in"))
    response = client.post("/admin/sign-in", data={"key": key, "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)
    return response


def submit_pending(client, user, item_id):
    assert_ok(client.post("/setItemProperties", json={"imageID": item_id, "publicApprovalStatus": "pending"},
                          headers=user["headers"]))


def test_pages_without_a_session_redirect_to_sign_in(client):
    for path in ("/admin/", "/admin/approval", "/admin/approval/approved", "/admin/reports", "/admin/users?q=x",
                 "/admin/generation", "/admin/activity"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].split("?")[0].endswith("/admin/sign-in"), path
    # an action without a session changes nothing
    response = client.post("/admin/approval", data={"one": "x:approved"})
    assert response.status_code == 302 and "/admin/sign-in" in response.headers["Location"]


def test_sign_in_sets_a_strict_http_only_expiring_cookie_and_records_the_admin(app, client, json_log):
    response = signed_in(client)
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith(COOKIE_NAME + "="))
    attributes = cookie.lower()
    assert "httponly" in attributes and "samesite=strict" in attributes and "path=/admin" in attributes
    assert "expires=" in attributes
    assert ADMIN_KEY not in cookie
    page = client.get("/admin/approval")
    assert page.status_code == 200 and "alice" in page.get_data(as_text=True)
    assert page.headers["Cache-Control"] == "no-store" and "frame-ancestors 'none'" in page.headers[
        "Content-Security-Policy"]
    with app.app_context():
        assert AdminAction.objects(admin="alice", action="admin.signIn").count() >= 1
    # signing out ends the session
    client.post("/admin/sign-out", data={"csrf_token": csrf_of(page)})
    assert client.get("/admin/approval").status_code == 302
    assert ADMIN_KEY not in json_log.getvalue()


def test_a_wrong_key_is_refused_and_never_echoed(client, json_log):
    token = csrf_of(client.get("/admin/sign-in"))
    wrong = "not-the-admin-key-1234567890"
    response = client.post("/admin/sign-in", data={"key": wrong, "csrf_token": token})
    assert response.status_code == 403
    assert wrong not in response.get_data(as_text=True)
    assert client.get("/admin/approval").status_code == 302
    # the right key's sign-in never writes the key in a page, a URL or a log either
    response = signed_in(client)
    assert ADMIN_KEY not in response.headers["Location"]
    assert ADMIN_KEY not in client.get("/admin/approval").get_data(as_text=True)
    logged = json_log.getvalue()
    assert wrong not in logged and ADMIN_KEY not in logged and "admin sign-in refused" in logged


def test_forms_without_a_csrf_token_are_refused(app, client, user):
    assert client.post("/admin/sign-in", data={"key": ADMIN_KEY}).status_code == 400
    signed_in(client)
    [item_id] = make_items(app, user["user_id"])
    submit_pending(client, user, item_id)
    for data in ({"one": f"{item_id}:approved"}, {"one": f"{item_id}:approved", "csrf_token": "forged"}):
        response = client.post("/admin/approval", data=data)
        assert response.status_code == 400 and "form expired" in response.get_data(as_text=True)
    with app.app_context():
        assert Item.objects(id=item_id).first().public_approval_status == "pending"
    # the JSON API still takes its admin key header, with no CSRF token
    body = assert_ok(client.post("/setPublicApprovalStatus", json={"imageIDs": [item_id], "publicApprovalStatus":
                                                                   "approved"}, headers={**new_session_headers(),
                                                                                         **ADMIN_HEADERS}))
    assert body["payload"][0]["success"] is True


def _forge_session(app, client, **changes):
    """Re-sign the client's session cookie with ``changes`` (what a stale cookie would hold)."""
    serializer = app.session_interface.get_signing_serializer(app)
    data = serializer.loads(client.get_cookie(COOKIE_NAME, path="/admin").value)
    data.update(changes)
    client.set_cookie(COOKIE_NAME, serializer.dumps(data), path="/admin", domain="localhost")


def test_an_expired_session_or_a_removed_key_is_refused(app, client):
    signed_in(client)
    assert client.get("/admin/approval").status_code == 200
    _forge_session(app, client, exp=int(time.time()) - 1)
    assert client.get("/admin/approval").status_code == 302
    signed_in(client)
    keys = app.extensions["aimg"].settings.admin_keys
    saved = dict(keys)
    try:
        keys["alice"] = "a-rotated-key-0123456789"
        assert client.get("/admin/approval").status_code == 302
    finally:
        keys.clear()
        keys.update(saved)


def test_approval_through_the_form_records_the_admin(app, client, user):
    ids = make_items(app, user["user_id"], n=3)
    for item_id in ids:
        submit_pending(client, user, item_id)
    signed_in(client)
    page = client.get("/admin/approval")
    text = page.get_data(as_text=True)
    assert all(i in text for i in ids) and user["email"] in text
    # oldest first
    assert text.index(ids[0]) < text.index(ids[1]) < text.index(ids[2])
    token = csrf_of(page)
    response = client.post("/admin/approval", data={"ids": ids[:2], "decision": "approved", "csrf_token": token,
                                                    "back": "/admin/approval/pending"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/admin/approval/pending")
    client.post("/admin/approval", data={"one": f"{ids[2]}:rejected", "csrf_token": token,
                                         "back": "https://evil.example/"})
    with app.app_context():
        states = {i.id: (i.public_approval_status, i.is_public, i.approver_id) for i in Item.objects(id__in=ids)}
        assert states == {ids[0]: ("approved", True, "alice"), ids[1]: ("approved", True, "alice"),
                          ids[2]: ("rejected", False, "alice")}
        assert AdminAction.objects(action="approval.approved", admin="alice", target_id=ids[0]).count() == 1
    approved = client.get("/admin/approval/approved").get_data(as_text=True)
    assert ids[0] in approved and ids[2] not in approved
    # the state machine's rules hold through the UI: approving twice says so
    client.post("/admin/approval", data={"one": f"{ids[0]}:approved", "csrf_token": token})
    assert "already approved" in client.get("/admin/approval/approved").get_data(as_text=True)


def test_the_lists_page_by_keyset(app, client, user, monkeypatch):
    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    ids = make_items(app, user["user_id"], n=3)
    with app.app_context():  # distinct reference times, one per page boundary
        base = dt.datetime(2031, 1, 1)
        for n, item_id in enumerate(ids):
            Item.objects(id=item_id).update_one(set__completed_date=base + dt.timedelta(minutes=n),
                                                set__public_approval_status="rejected")
    signed_in(client)
    first = client.get("/admin/approval/rejected").get_data(as_text=True)
    assert ids[2] in first and ids[1] in first and ids[0] not in first
    nxt = re.search(r'href="([^"]+)" rel="next"', first).group(1).replace("&amp;", "&")
    second = client.get(nxt).get_data(as_text=True)
    assert ids[0] in second and ids[1] not in second


@pytest.mark.parametrize("name", sorted(views.LIST_SHAPES))
def test_each_list_is_served_by_a_declared_index(app, name):
    shape = views.LIST_SHAPES[name]
    with app.app_context():
        shape.document.ensure_indexes()
        assert covering_index(shape.document, list(shape.equality), list(shape.sort)) is not None, name


def test_the_generation_page_survives_missing_pieces(app, client, monkeypatch):
    signed_in(client)
    assert client.get("/admin/generation").status_code == 200

    def broken(*_args):
        raise AttributeError("the fleet changed shape")

    for reader in ("queue_rows", "comfy_servers", "workers_alive", "failed_runs"):
        monkeypatch.setattr(f"aimg_app.admin.fleet.{reader}", broken)
    page = client.get("/admin/generation")
    assert page.status_code == 200 and page.get_data(as_text=True).count("unknown") >= 4


def test_a_server_no_worker_asked_lately_is_not_unknown(app, client):
    """The workers' health record of a server lapses when no job ran for a while: that is a
    known state ("not checked lately"), not a reader that failed ("unknown")."""
    signed_in(client)
    settings = app.extensions["aimg"].settings
    configured, settings.comfyui_urls = settings.comfyui_urls, ("http://127.0.0.1:9",)
    try:
        text = client.get("/admin/generation").get_data(as_text=True)
    finally:
        settings.comfyui_urls = configured
    row = text[text.index('data-server="http://127.0.0.1:9"'):]
    row = row[:row.index("</tr>")]
    assert "not checked lately" in row and "unknown" not in row


def test_admin_pages_are_not_in_the_openapi_document(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    assert not [p for p in paths if p.startswith("/admin")]


def test_a_tier_given_and_taken_back_and_the_abuse_level(app, client, user):
    signed_in(client)
    page = client.get("/admin/users", query_string={"q": user["email"]})
    assert user["user_id"] in page.get_data(as_text=True)
    token = csrf_of(page)
    base = f"/admin/users/{user['user_id']}"
    client.post(f"{base}/tier", data={"tier": "3", "productId": "friend", "isActive": "true", "csrf_token": token})
    self_user = assert_ok(client.get("/getSelfUser", headers=user["headers"]))["payload"]
    assert self_user["tier"] == 3
    text = client.get("/admin/users", query_string={"q": user["user_id"]}).get_data(as_text=True)
    assert "Take back" in text and "friend" in text
    client.post(f"{base}/tier", data={"tier": "3", "productId": "friend", "isActive": "false", "csrf_token": token})
    assert assert_ok(client.get("/getSelfUser", headers=user["headers"]))["payload"]["tier"] == 0
    assert client.post(f"{base}/abuse", data={"abuse": "12", "csrf_token": token}).status_code == 400
    assert client.post(f"{base}/tier", data={"tier": "1", "productId": "bad id!", "csrf_token": token}
                       ).status_code == 400
    client.post(f"{base}/abuse", data={"abuse": "1", "csrf_token": token})
    with app.app_context():
        actions = [a.action for a in AdminAction.objects(target_id=user["user_id"]).order_by("created_date")]
    assert actions == ["user.tier.grant", "user.tier.revoke", "user.abuse"]
    assert client.post("/admin/users/no-such-user/abuse", data={"abuse": "1", "csrf_token": token}).status_code == 404


def test_a_cookie_copied_before_sign_out_is_worth_nothing_after(app, client):
    signed_in(client)
    copied = client.get_cookie(COOKIE_NAME, path="/admin").value
    page = client.get("/admin/approval")
    assert page.status_code == 200
    client.post("/admin/sign-out", data={"csrf_token": csrf_of(page)})
    thief = app.test_client()
    thief.set_cookie(COOKIE_NAME, copied, path="/admin", domain="localhost")
    assert thief.get("/admin/users").status_code == 302


def test_a_next_with_control_characters_lands_on_the_approval_page(client):
    token = csrf_of(client.get("/admin/sign-in"))
    response = client.post("/admin/sign-in?next=/admin/reports?x=%0d%0aSet-Cookie:a=b",
                           data={"key": ADMIN_KEY, "csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"].endswith("/admin/approval")


PAYLOADS = ("<script>alert(1)</script>", '"><img src=x onerror=alert(2)>', "javascript:alert(3)")
EXECUTABLE = re.compile(r"<script>alert|<img src=x onerror|(?:href|src|action|formaction)\s*=\s*[\"']?\s*javascript:",
                        re.IGNORECASE)


def test_prompts_report_texts_and_names_render_as_text(app, client, user):
    """The attack: a prompt, a report text, a user name or a search carrying markup, run in the admin's console."""
    from aimg_app.services import items as items_service
    from tests.conftest import sign_up
    from tests.library_helpers import domain_of, publish

    text = " ".join(PAYLOADS)
    [by_prompt] = make_items(app, user["user_id"], prompt=text, negprompt=text)
    with app.app_context():  # an Item whose address is a javascript: URL (as an imported library could carry)
        [linked] = items_service.create_queued_items(user_id=user["user_id"], domain=domain_of(app), count=1,
                                                     mtype="image", params={"prompt": "p", "model_id": "m1"})
        assert items_service.complete_item(linked.id, url="javascript:alert(4)", file_id=None, width=1, height=1, seed=1)
    submit_pending(client, user, linked.id)
    publish(client, user, by_prompt)  # public, so that others can report it
    reporter = sign_up(client)
    reported = assert_ok(client.post("/reportItems", json={"itemIds": [by_prompt], "additionalInformation": text},
                                     headers=reporter["headers"]))["payload"]
    assert reported[0]["success"], reported
    named = client.post("/setSelfUserProperties", json={"username": PAYLOADS[1][:30]}, headers=user["headers"])
    signed_in(client)
    pages = {path: client.get(path) for path in (
        "/admin/approval", "/admin/approval/approved", "/admin/reports", f"/admin/users?q={user['user_id']}", f"/admin/users?q={reporter['email']}")}
    pages["search"] = client.get("/admin/users", query_string={"q": text})
    for where, page in pages.items():
        body = page.get_data(as_text=True)
        assert page.status_code == 200, where
        assert not EXECUTABLE.search(body), (where, EXECUTABLE.search(body).group(0))
    assert linked.id in pages["/admin/approval"].get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages["/admin/approval/approved"].get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages["/admin/reports"].get_data(as_text=True)
    assert "&lt;script&gt;" in pages["search"].get_data(as_text=True)
    if named.status_code == 200:  # a name the rules let through is shown as text
        assert "&lt;img src=x onerror" in pages[f"/admin/users?q={user['user_id']}"].get_data(as_text=True)
