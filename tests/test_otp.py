"""requestOTP, OTP sign-up/sign-in, the magic link, brute force and rate limits."""
from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.conftest import assert_error, assert_ok, last_otp, new_session_headers, read_mails, sign_up


def fresh_email() -> str:
    return f"otp-{uuid.uuid4().hex[:10]}@example.com"


def request(client, email, sign_up=False, headers=None):
    return client.post("/requestOTP", json={"email": email, "signUp": sign_up}, headers=headers or new_session_headers())


def test_otp_sign_up_via_mail(client, services):
    email = fresh_email()
    body = assert_ok(request(client, email, sign_up=True))["payload"]
    assert body["success"] is True and body["message"]
    code = last_otp(services, email)
    assert re.fullmatch(r"\d{6}", code)
    me = assert_ok(client.post("/createUser", json={"email": email, "otp": code}, headers=new_session_headers()))["payload"]
    assert me["isAuthenticated"] and me["email"] == email


def test_magic_link_is_read_back_and_used(client, services):
    email = fresh_email()
    assert_ok(request(client, email))
    text = read_mails(services, email)[-1].get_body(("plain",)).get_content()
    link = re.search(r"(http\S+\?b=\S+)", text).group(1)
    assert link.startswith("http://localhost:3000/")
    b = parse_qs(urlsplit(link).query)["b"][0]
    decoded = json.loads(base64.urlsafe_b64decode(b + "=" * (-len(b) % 4)))
    assert decoded["email"] == email and re.fullmatch(r"\d{6}", decoded["otp"])
    # authenticateUser creates the user when the email is new
    me = assert_ok(client.post("/authenticateUser", json=decoded, headers=new_session_headers()))["payload"]
    assert me["isAuthenticated"] and me["email"] == email


def test_an_otp_is_single_use(client, services):
    email = fresh_email()
    assert_ok(request(client, email))
    code = last_otp(services, email)
    assert_ok(client.post("/authenticateUser", json={"email": email, "otp": code}, headers=new_session_headers()))
    assert_error(client.post("/authenticateUser", json={"email": email, "otp": code}, headers=new_session_headers()), 401)


def test_the_same_otp_twice_in_parallel_logs_in_once(app, services):
    email = fresh_email()
    client = app.test_client()
    assert_ok(request(client, email))
    code = last_otp(services, email)
    results = []

    def attempt():
        results.append(app.test_client().post("/authenticateUser", json={"email": email, "otp": code},
                                              headers=new_session_headers()).status_code)

    threads = [threading.Thread(target=attempt) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results).count(200) == 1 and len(results) == 6


def test_a_newer_otp_supersedes_the_older(client, services):
    email = fresh_email()
    assert_ok(request(client, email))
    first = last_otp(services, email)
    assert_ok(request(client, email))
    second = last_otp(services, email)
    if first != second:
        assert_error(client.post("/authenticateUser", json={"email": email, "otp": first}, headers=new_session_headers()), 401)
    assert_ok(client.post("/authenticateUser", json={"email": email, "otp": second}, headers=new_session_headers()))


def test_another_emails_otp_is_refused(client, services):
    a, b = fresh_email(), fresh_email()
    assert_ok(request(client, a))
    assert_ok(request(client, b))
    code_a = last_otp(services, a)
    if code_a != last_otp(services, b):
        assert_error(client.post("/authenticateUser", json={"email": b, "otp": code_a}, headers=new_session_headers()), 401)


def test_an_expired_otp_is_refused(client, services, app):
    import datetime as dt

    from aimg_app.models.otp import OtpChallenge

    email = fresh_email()
    assert_ok(request(client, email))
    code = last_otp(services, email)
    with app.app_context():  # a day passes
        OtpChallenge.objects(email=email).update(set__expires_date=dt.datetime(2000, 1, 1))
    assert_error(client.post("/authenticateUser", json={"email": email, "otp": code}, headers=new_session_headers()),
                 401, "invalid or expired")


def test_five_wrong_codes_burn_the_challenge(client, services):
    email = fresh_email()
    assert_ok(request(client, email))
    code = last_otp(services, email)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    statuses = [client.post("/authenticateUser", json={"email": email, "otp": wrong},
                            headers=new_session_headers()).status_code for _ in range(5)]
    assert statuses == [401, 401, 401, 401, 429]
    assert_error(client.post("/authenticateUser", json={"email": email, "otp": code}, headers=new_session_headers()),
                 429, "request a new one")


def test_sign_up_otp_for_an_existing_account_is_refused(client):
    existing = sign_up(client)
    assert_error(request(client, existing["email"], sign_up=True), 409, "already exists")


def test_requests_are_rate_limited_per_email_and_per_client(make_app):
    limited = make_app(otp_rate_limit_per_email="2 per hour", otp_rate_limit_per_client="3 per hour").test_client()
    email = fresh_email()
    assert_ok(request(limited, email))
    assert_ok(request(limited, email))
    assert_error(request(limited, email), 429, "this email")
    another_host = limited.application.test_client()
    for _ in range(3):
        assert_ok(request(another_host, fresh_email(), headers=new_session_headers()))
    assert_error(request(another_host, fresh_email(), headers=new_session_headers()), 429)


@pytest.mark.parametrize("email", ["", "no-at-sign", "a@b", "x" * 250 + "@example.com"])
def test_bad_emails_are_refused(client, email):
    assert_error(request(client, email), 400, "email")
