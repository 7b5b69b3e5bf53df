"""createUser / authenticateUser with passwords, sessions, getSelfUser, signOutUser."""
from __future__ import annotations

import uuid

from tests.conftest import STRONG_PASSWORD, assert_error, assert_ok, new_session_headers, sign_up


def test_sign_up_signs_in_and_get_self_user_reads_it(client):
    user = sign_up(client, username="alice_1", isAtLeast18Confirmed=True, refList="a.example,b.example", rs="aff1")
    me = user["self"]
    assert me["isAuthenticated"] is True and me["username"] == "alice_1" and me["email"] == user["email"]
    assert me["sessionID"] == user["headers"]["X-Session-ID"] and me["tier"] == 0 and me["subscriptions"] == []
    assert me["isAtLeast18Confirmed"] is True and me["itemCount"] == 0 and me["merchantProcessor"] == "none"
    again = assert_ok(client.get("/getSelfUser", headers=user["headers"]))["payload"]
    assert again["userID"] == user["user_id"]


def test_email_is_unique_per_domain_case_insensitively(client):
    user = sign_up(client)
    response = client.post("/createUser", json={"email": user["email"].upper(), "password": STRONG_PASSWORD},
                           headers=new_session_headers())
    assert_error(response, 409, "already exists")


def test_weak_password_and_bad_email_are_refused(client):
    assert_error(client.post("/createUser", json={"email": "a@example.com", "password": "short"},
                             headers=new_session_headers()), 400, "password")
    assert_error(client.post("/createUser", json={"email": "not-an-email", "password": STRONG_PASSWORD},
                             headers=new_session_headers()), 400, "email")
    assert_error(client.post("/createUser", json={"email": "a@example.com"}, headers=new_session_headers()), 400,
                 "password or otp")


def test_password_login_and_uniform_failures(client):
    user = sign_up(client)
    headers = new_session_headers()
    me = assert_ok(client.post("/authenticateUser", json={"email": user["email"], "password": STRONG_PASSWORD},
                               headers=headers))["payload"]
    assert me["userID"] == user["user_id"] and me["isAuthenticated"] is True
    wrong = client.post("/authenticateUser", json={"email": user["email"], "password": "Wrong-pass1!"},
                        headers=new_session_headers())
    unknown = client.post("/authenticateUser", json={"email": f"nobody-{uuid.uuid4().hex}@example.com",
                                                     "password": "Wrong-pass1!"}, headers=new_session_headers())
    assert_error(wrong, 401)
    assert_error(unknown, 401)
    assert wrong.get_json()["errorMessage"] == unknown.get_json()["errorMessage"]


def test_anonymous_get_self_user_creates_a_session(client):
    me = assert_ok(client.get("/getSelfUser"))["payload"]
    uuid.UUID(me["sessionID"])
    assert me["isAuthenticated"] is False and me["userID"] is None


def test_18_confirmation_is_remembered_and_carried_to_the_user(client):
    headers = new_session_headers()
    assert assert_ok(client.get("/getSelfUser?isAtLeast18Confirmed=true", headers=headers))["payload"]["isAtLeast18Confirmed"]
    assert assert_ok(client.get("/getSelfUser", headers=headers))["payload"]["isAtLeast18Confirmed"] is True
    user = sign_up(client)
    me = assert_ok(client.post("/authenticateUser", json={"email": user["email"], "password": STRONG_PASSWORD},
                               headers=headers))["payload"]
    assert me["isAtLeast18Confirmed"] is True


def test_sign_out(client):
    user = sign_up(client)
    body = assert_ok(client.post("/signOutUser", headers=user["headers"]))["payload"]
    assert body["success"] is True and body["message"]
    assert assert_ok(client.get("/getSelfUser", headers=user["headers"]))["payload"]["isAuthenticated"] is False
    assert assert_ok(client.post("/signOutUser", headers=user["headers"]))["payload"]["success"] is False


def test_without_a_session_header_a_session_is_created_and_returned(client):
    import uuid as _uuid

    email = f"nohdr-{_uuid.uuid4().hex[:8]}@example.com"
    me = assert_ok(client.post("/createUser", json={"email": email, "password": STRONG_PASSWORD}))["payload"]
    _uuid.UUID(me["sessionID"])
    again = assert_ok(client.get("/getSelfUser", headers={"X-Session-ID": me["sessionID"]}))["payload"]
    assert again["isAuthenticated"] is True and again["email"] == email
