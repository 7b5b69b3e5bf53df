"""setSelfUserProperties: username, password (revoking other sessions), email change, 18+."""
from __future__ import annotations

import uuid

from tests.conftest import (ADMIN_HEADERS, STRONG_PASSWORD, assert_error, assert_ok, last_otp, new_session_headers,
                            sign_up)


def props(client, user, **body):
    return client.post("/setSelfUserProperties", json=body, headers=user["headers"])


def test_change_username_and_uniqueness(client, user):
    name = f"n_{uuid.uuid4().hex[:8]}"
    assert assert_ok(props(client, user, username=name))["payload"]["username"] == name
    other = sign_up(client)
    assert_error(props(client, other, username=name.upper()), 409, "taken")
    assert_error(props(client, other, username="a b"), 400, "username")


def test_nothing_to_change_and_not_signed_in(client, user):
    assert_error(props(client, user), 400, "at least one")
    assert_error(client.post("/setSelfUserProperties", json={"username": "abcd"}, headers=new_session_headers()), 401)


def test_password_change_signs_out_every_other_session(client):
    user = sign_up(client)
    elsewhere = new_session_headers()
    assert_ok(client.post("/authenticateUser", json={"email": user["email"], "password": STRONG_PASSWORD}, headers=elsewhere))
    assert_error(props(client, user, password="weak"), 400, "password")
    assert_ok(props(client, user, password="N3w-Password!x"))
    assert assert_ok(client.get("/getSelfUser", headers=elsewhere))["payload"]["isAuthenticated"] is False
    assert_error(client.post("/setSelfUserProperties", json={"username": "zzzz"}, headers=elsewhere), 401)
    assert assert_ok(client.get("/getSelfUser", headers=user["headers"]))["payload"]["isAuthenticated"] is True
    assert_error(client.post("/authenticateUser", json={"email": user["email"], "password": STRONG_PASSWORD},
                             headers=new_session_headers()), 401)
    assert_ok(client.post("/authenticateUser", json={"email": user["email"], "password": "N3w-Password!x"},
                          headers=new_session_headers()))


def test_a_long_unicode_password_works_whole(client):
    password = "Ünïcödé-Pässwörd-1!" * 20
    user = sign_up(client, password=password)
    assert_ok(client.post("/authenticateUser", json={"email": user["email"], "password": password},
                          headers=new_session_headers()))
    assert_error(client.post("/authenticateUser", json={"email": user["email"], "password": password[:-1]},
                             headers=new_session_headers()), 401)


def test_email_change_with_otp_archives_the_old_address(client, services):
    user = sign_up(client)
    new = f"new-{uuid.uuid4().hex[:8]}@example.com"
    assert_error(props(client, user, email=new), 400, "otp")
    assert_ok(client.post("/requestOTP", json={"email": new, "signUp": True}, headers=user["headers"]))
    code = last_otp(services, new)
    assert_error(props(client, user, email=new, otp=f"{(int(code) + 1) % 10**6:06d}"), 401)
    me = assert_ok(props(client, user, email=new, otp=code))["payload"]
    assert me["email"] == new
    admin = assert_ok(client.get(f"/getUser?userID={user['user_id']}", headers=ADMIN_HEADERS))["payload"]
    assert [a["email"] for a in admin["archivedEmails"]] == [user["email"]]
    assert_error(props(client, user, email=new, otp=code), 400, "current")


def test_email_change_refusals_change_nothing(client, services):
    user, other = sign_up(client), sign_up(client)
    assert_error(props(client, user, email="not-an-email", otp="123456"), 400, "email")
    assert_error(props(client, user, email=other["email"], otp="123456"), 409)
    # an OTP not requested with signUp does not change an email
    new = f"n-{uuid.uuid4().hex[:8]}@example.com"
    assert_ok(client.post("/requestOTP", json={"email": new}, headers=new_session_headers()))
    assert_error(props(client, user, email=new, otp=last_otp(services, new)), 401, "signUp")
    assert assert_ok(client.get("/getSelfUser", headers=user["headers"]))["payload"]["email"] == user["email"]


def test_18_confirmation(client, user):
    assert assert_ok(props(client, user, isAtLeast18Confirmed=True))["payload"]["isAtLeast18Confirmed"] is True
