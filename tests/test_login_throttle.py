"""Password guessing is throttled per account and per client; the limits key on nothing a
client can mint for free (not a fresh X-Session-ID, not a spoofed X-Forwarded-For)."""
from __future__ import annotations

import time
import uuid

import pytest

from tests.conftest import STRONG_PASSWORD, assert_error, assert_ok, new_session_headers, sign_up

WRONG = "Wrong-Passw0rd!"


def login(client, email, password, **headers):
    return client.post("/authenticateUser", json={"email": email, "password": password},
                       headers={**new_session_headers(), **headers})


@pytest.fixture(scope="module")
def quick(make_app):
    """Small limits and a short window, so the wait for the window fits in a test."""
    return make_app(login_failures_per_account="4 per 8 seconds", login_failures_per_client="9 per 8 seconds")


@pytest.fixture(scope="module")
def strict(make_app):
    return make_app(login_failures_per_account="4 per 10 minutes", login_failures_per_client="9 per 10 minutes")


def test_forty_wrong_passwords_from_one_client_meet_a_429(client):
    victim = sign_up(client)
    statuses = [login(client, victim["email"], WRONG).status_code for _ in range(40)]
    assert 429 in statuses and statuses[:10] == [401] * 10, statuses
    assert_error(login(client, victim["email"], WRONG), 429, "too many failed sign-in attempts")
    # a fresh session per attempt and a forged X-Forwarded-For change nothing
    assert_error(login(client, victim["email"], WRONG, **{"X-Forwarded-For": "198.51.100.7"}), 429)
    # ... and the right password is refused too while the account is throttled
    assert_error(login(client, victim["email"], STRONG_PASSWORD), 429)


def test_the_right_password_works_again_once_the_window_passes(quick):
    client = quick.test_client()
    victim = sign_up(client)
    started = time.monotonic()
    for _ in range(4):
        assert_error(login(client, victim["email"], WRONG), 401)
    assert_error(login(client, victim["email"], STRONG_PASSWORD), 429)
    time.sleep(max(0.0, started + 8.3 - time.monotonic()))
    body = assert_ok(login(client, victim["email"], STRONG_PASSWORD))
    assert body["payload"]["isAuthenticated"] is True


def test_other_clients_are_throttled_on_that_account_too(strict):
    victim = sign_up(strict.test_client())
    for _ in range(4):
        assert_error(login(strict.test_client(), victim["email"], WRONG), 401)  # four hosts
    assert_error(login(strict.test_client(), victim["email"], WRONG), 429)


def test_an_unknown_email_is_throttled_exactly_like_a_known_one(strict):
    client = strict.test_client()
    known = sign_up(client)
    unknown = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
    answers = {}
    for email in (known["email"], unknown):
        seen = [login(client, email, WRONG) for _ in range(5)]
        answers[email] = [(r.status_code, r.get_json()["errorMessage"]) for r in seen]
    assert answers[known["email"]] == answers[unknown]
    assert [status for status, _ in answers[unknown]] == [401, 401, 401, 401, 429]


def test_one_client_guessing_across_many_accounts_is_throttled(strict):
    client = strict.test_client()
    statuses = [login(client, f"spray-{i}-{uuid.uuid4().hex[:6]}@example.com", WRONG).status_code for i in range(10)]
    assert statuses == [401] * 9 + [429]
    # another host is not affected
    assert_error(login(strict.test_client(), f"x-{uuid.uuid4().hex[:6]}@example.com", WRONG), 401)


def test_otp_requests_are_limited_per_client_whatever_the_session(client):
    """A new X-Session-ID per request does not reset the per-client limit (a mail-bombing tool)."""
    statuses = []
    for i in range(25):
        response = client.post("/requestOTP", json={"email": f"bomb-{i}-{uuid.uuid4().hex[:6]}@example.com"},
                               headers=new_session_headers())
        statuses.append(response.status_code)
    assert statuses[:20] == [200] * 20 and statuses[20:] == [429] * 5, statuses


@pytest.mark.parametrize("spelling", ["{%s}", "%s", "urn:uuid:%s"])
def test_session_spellings_do_not_reset_the_ingest_limit(make_app, spelling):
    limited = make_app(ingest_logs_rate_limit="3 per minute").test_client()
    sid = str(uuid.uuid4())
    assert_ok(limited.get("/getSelfUser", headers={"X-Session-ID": sid}))  # the session exists from now on
    for _ in range(3):
        assert_ok(limited.post("/ingestLogs", json={"logs": [{"message": "m"}]}, headers={"X-Session-ID": sid}))
    other = (spelling % sid) if spelling != "%s" else sid.replace("-", "").upper()
    assert_error(limited.post("/ingestLogs", json={"logs": [{"message": "m"}]}, headers={"X-Session-ID": other}), 429)


def test_a_fresh_session_id_counts_against_the_client_address(make_app):
    limited = make_app(ingest_logs_rate_limit="3 per minute").test_client()
    statuses = [limited.post("/ingestLogs", json={"logs": [{"message": "m"}]}, headers=new_session_headers()).status_code
                for _ in range(5)]
    assert statuses == [200] * 3 + [429] * 2, statuses


def test_many_existing_sessions_of_one_client_meet_the_per_client_limit(make_app):
    limited = make_app(ingest_logs_rate_limit="3 per minute", ingest_logs_rate_limit_per_client="5 per minute").test_client()
    sessions = [new_session_headers() for _ in range(7)]
    for headers in sessions:
        assert_ok(limited.get("/getSelfUser", headers=headers))
    statuses = [limited.post("/ingestLogs", json={"logs": [{"message": "m"}]}, headers=h).status_code for h in sessions]
    assert statuses == [200] * 5 + [429] * 2, statuses


def test_guessing_admin_keys_is_throttled_per_client(make_app):
    from tests.conftest import ADMIN_KEY

    app = make_app(admin_key_failures_per_client="5 per 10 minutes")
    guesser = app.test_client()
    statuses = [guesser.get("/getReports", headers={"X-Administration-Key": f"guess-{i}"}).status_code for i in range(7)]
    assert statuses == [403] * 5 + [429] * 2
    assert_error(guesser.get("/getReports", headers={"X-Administration-Key": ADMIN_KEY}), 429, "X-Administration-Key")
    assert assert_ok(app.test_client().get("/getReports", headers={"X-Administration-Key": ADMIN_KEY}))


def test_behind_a_trusted_proxy_the_forwarded_address_is_the_client(make_app):
    app = make_app(trusted_proxy_count=1, login_failures_per_client="3 per 10 minutes")
    proxy = app.test_client()  # every request arrives from the one balancer

    def attempt(forwarded):
        return login(proxy, f"p-{uuid.uuid4().hex[:8]}@example.com", WRONG, **{"X-Forwarded-For": forwarded}).status_code

    # the client prepends made-up entries; the proxy appends the address it saw (the last one)
    assert [attempt(f"10.9.9.{i}, 203.0.113.5") for i in range(4)] == [401, 401, 401, 429]
    assert attempt("203.0.113.6") == 401  # another client behind the same balancer


def test_a_parallel_burst_gets_no_more_guesses_than_the_limit(strict):
    from concurrent.futures import ThreadPoolExecutor

    victim = sign_up(strict.test_client())
    attacker = strict.test_client()
    passwords = [WRONG] * 12 + [STRONG_PASSWORD] + [WRONG] * 7
    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(lambda pw: login(attacker, victim["email"], pw).status_code, passwords))
    evaluated = [s for s in statuses if s != 429]
    assert len(evaluated) <= 4, statuses  # the account's limit, whatever the parallelism
    assert statuses.count(429) >= 16
