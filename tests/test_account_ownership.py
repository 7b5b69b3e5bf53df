"""Pre-account takeover: a password set by someone who never proved the email does not
survive the mailbox's owner proving it."""
from __future__ import annotations

import uuid

from tests.conftest import ADMIN_HEADERS, STRONG_PASSWORD, assert_error, assert_ok, last_otp, new_session_headers

ATTACKER_PASSWORD = "Attack3r-Knows!this"


def fresh_email() -> str:
    return f"owner-{uuid.uuid4().hex[:10]}@example.com"


def otp_sign_in(client, services, email, headers):
    assert_ok(client.post("/requestOTP", json={"email": email}, headers=headers))
    return assert_ok(client.post("/authenticateUser", json={"email": email, "otp": last_otp(services, email)},
                                 headers=headers))["payload"]


def password_sign_in(client, email, password):
    return client.post("/authenticateUser", json={"email": email, "password": password}, headers=new_session_headers())


def test_the_owner_proving_the_email_drops_the_squatters_password_and_sessions(client, services):
    email = fresh_email()
    squatter = new_session_headers()
    squatted = assert_ok(client.post("/createUser", json={"email": email, "password": ATTACKER_PASSWORD},
                                     headers=squatter))["payload"]
    assert_ok(password_sign_in(client, email, ATTACKER_PASSWORD))  # works while nobody proved the email
    squatter_again = new_session_headers()
    assert_ok(client.post("/authenticateUser", json={"email": email, "password": ATTACKER_PASSWORD},
                          headers=squatter_again))

    owner = new_session_headers()
    me = otp_sign_in(client, services, email, owner)
    assert me["isAuthenticated"] and me["userID"] == squatted["userID"]

    # the squatter is out: both sessions signed out, the password gone
    for headers in (squatter, squatter_again):
        assert assert_ok(client.get("/getSelfUser", headers=headers))["payload"]["isAuthenticated"] is False
    assert_error(password_sign_in(client, email, ATTACKER_PASSWORD), 401)
    admin = assert_ok(client.get(f"/getUser?userID={me['userID']}", headers=ADMIN_HEADERS))["payload"]
    assert {"providerType": "internal", "providerId": "Password"} not in admin["loginProviders"]
    # the owner stays signed in and may set a password of their own, which then lasts
    assert_ok(client.post("/setSelfUserProperties", json={"password": STRONG_PASSWORD}, headers=owner))
    assert_ok(password_sign_in(client, email, STRONG_PASSWORD))
    otp_sign_in(client, services, email, new_session_headers())
    assert_ok(password_sign_in(client, email, STRONG_PASSWORD))


def test_a_password_set_with_a_proven_email_survives_otp_sign_ins(client, services):
    email = fresh_email()
    assert_ok(client.post("/requestOTP", json={"email": email, "signUp": True}, headers=new_session_headers()))
    first = new_session_headers()
    assert_ok(client.post("/createUser", json={"email": email, "password": STRONG_PASSWORD,
                                               "otp": last_otp(services, email)}, headers=first))
    otp_sign_in(client, services, email, new_session_headers())
    assert_ok(password_sign_in(client, email, STRONG_PASSWORD))
    assert assert_ok(client.get("/getSelfUser", headers=first))["payload"]["isAuthenticated"] is True


def _password_logins_in_flight(app, email, password, count):
    """``count`` password sign-ins started at once; returns the futures and their sessions."""
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=count)
    sessions = [new_session_headers() for _ in range(count)]
    futures = [pool.submit(lambda h: app.test_client().post("/authenticateUser", json={"email": email, "password": password},
                                                            headers=h).status_code, h) for h in sessions]
    return pool, futures, sessions


def test_sign_ins_in_flight_when_the_owner_proves_the_email_are_signed_out(app, client, services):
    email = fresh_email()
    assert_ok(client.post("/createUser", json={"email": email, "password": ATTACKER_PASSWORD}, headers=new_session_headers()))
    assert_ok(client.post("/requestOTP", json={"email": email}, headers=new_session_headers()))
    code = last_otp(services, email)
    pool, futures, sessions = _password_logins_in_flight(app, email, ATTACKER_PASSWORD, 8)
    owner = new_session_headers()
    assert_ok(client.post("/authenticateUser", json={"email": email, "otp": code}, headers=owner))
    [f.result() for f in futures]
    pool.shutdown()
    for headers in sessions:
        assert assert_ok(client.get("/getSelfUser", headers=headers))["payload"]["isAuthenticated"] is False
    assert assert_ok(client.get("/getSelfUser", headers=owner))["payload"]["isAuthenticated"] is True


def test_sign_ins_in_flight_during_a_password_change_are_signed_out(app, client):
    from tests.conftest import sign_up

    owner = sign_up(client)
    pool, futures, sessions = _password_logins_in_flight(app, owner["email"], STRONG_PASSWORD, 8)
    assert_ok(client.post("/setSelfUserProperties", json={"password": "Brand-N3w!password"}, headers=owner["headers"]))
    [f.result() for f in futures]
    pool.shutdown()
    for headers in sessions:
        assert assert_ok(client.get("/getSelfUser", headers=headers))["payload"]["isAuthenticated"] is False
    assert assert_ok(client.get("/getSelfUser", headers=owner["headers"]))["payload"]["isAuthenticated"] is True
