"""OAuth login through the real plugins and authlib, against a fake provider on loopback."""
from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.conftest import ADMIN_HEADERS, assert_error, assert_ok, new_session_headers, sign_up
from tests.support.fake_oauth import Account, FakeOAuthProvider, Running

FRONT = "http://localhost:3000"


@pytest.fixture(scope="module")
def fake():
    running = Running(FakeOAuthProvider())
    yield running
    running.stop()


@pytest.fixture(scope="module")
def oauth_app(make_app, fake):
    return make_app(plugin_settings={"google": fake.settings("google"), "discord": fake.settings("discord"),
                                     "github": fake.settings("github")})


@pytest.fixture()
def oc(oauth_app):
    return oauth_app.test_client()


def decode_b(url: str) -> dict:
    b = parse_qs(urlsplit(url).query)["b"][0]
    return json.loads(base64.urlsafe_b64decode(b + "=" * (-len(b) % 4)))


def start(oc, provider, redirect=f"{FRONT}/after-login", headers=None, **body):
    headers = headers or new_session_headers()
    response = oc.post(f"/auth/{provider}", json={"redirectURL": redirect, **body}, headers=headers)
    return response, headers


def login(oc, provider="google", **kwargs):
    response, headers = start(oc, provider, **kwargs)
    assert response.status_code == 302, response.get_data(as_text=True)
    back = requests.get(response.headers["Location"], allow_redirects=False, timeout=10)
    assert back.status_code == 302
    callback = urlsplit(back.headers["Location"])
    final = oc.get(f"{callback.path}?{callback.query}")
    return final, headers, f"{callback.path}?{callback.query}"


def test_google_login_creates_and_signs_in_the_user(oc, fake):
    fake.provider.account = Account("g-100", "gina@example.com", name="Gina")
    final, headers, _ = login(oc, "google", refList="ref.example", rs="aff-9", isAtLeast18Confirmed=True)
    assert final.status_code == 302 and final.headers["Location"].startswith(f"{FRONT}/after-login?b=")
    body = decode_b(final.headers["Location"])
    assert body["hasError"] is False
    me = body["payload"]
    assert me["isAuthenticated"] and me["email"] == "gina@example.com" and me["sessionID"] == headers["X-Session-ID"]
    assert me["isAtLeast18Confirmed"] is True
    assert assert_ok(oc.get("/getSelfUser", headers=headers))["payload"]["userID"] == me["userID"]
    admin = assert_ok(oc.get(f"/getUser?userID={me['userID']}", headers=ADMIN_HEADERS))["payload"]
    assert {"providerType": "oauth", "providerId": "Google", "userId": "g-100"} in admin["loginProviders"]
    assert admin["refList"] == ["ref.example"] and admin["rs"] == "aff-9"
    # PKCE was used
    assert fake.provider.authorize_requests[-1]["code_challenge_method"] == "S256"


def test_same_email_is_the_same_user(oc, fake):
    existing = sign_up(oc, email="linked@example.com")
    fake.provider.account = Account("g-200", "Linked@Example.com")
    first = decode_b(login(oc, "google")[0].headers["Location"])["payload"]
    second = decode_b(login(oc, "google")[0].headers["Location"])["payload"]
    assert first["userID"] == second["userID"] == existing["user_id"]


@pytest.mark.parametrize("provider", ["discord", "github"])
def test_discord_and_github(oc, fake, provider):
    fake.provider.account = Account(f"{provider}-42", f"{provider}-user@example.com")
    body = decode_b(login(oc, provider)[0].headers["Location"])
    assert body["hasError"] is False and body["payload"]["email"] == f"{provider}-user@example.com"


def test_unverified_email_does_not_take_over_an_account(oc, fake):
    victim = sign_up(oc, email="victim@example.com")
    fake.provider.account = Account("attacker-1", "victim@example.com", verified=False)
    final, headers, _ = login(oc, "google")
    body = decode_b(final.headers["Location"])
    assert body["hasError"] is True and "verified" in body["errorMessage"]
    assert assert_ok(oc.get("/getSelfUser", headers=headers))["payload"]["isAuthenticated"] is False
    admin = assert_ok(oc.get(f"/getUser?userID={victim['user_id']}", headers=ADMIN_HEADERS))["payload"]
    assert all(p["providerType"] == "internal" for p in admin["loginProviders"])


@pytest.mark.parametrize("url", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "/relative/path",
                                 "http://localhost:3000.evil.example/", "http://localhost:3000@evil.example/",
                                 "javascript:alert(1)", "http://localhost:4000/"])
def test_foreign_redirect_urls_are_refused(oc, url):
    response, _ = start(oc, "google", redirect=url)
    assert_error(response, 400, "redirectURL")


def test_forged_altered_and_replayed_state_are_refused(oc, fake):
    fake.provider.account = Account("g-300", "replay@example.com")
    response, headers = start(oc, "google")
    back = requests.get(response.headers["Location"], allow_redirects=False, timeout=10)
    query = parse_qs(urlsplit(back.headers["Location"]).query)
    code, state = query["code"][0], query["state"][0]
    assert_error(oc.get(f"/auth/google/callback?code={code}&state=forged"), 400, "does not match")
    assert_error(oc.get(f"/auth/google/callback?code={code}&state={state[:-1]}x"), 400)
    assert_error(oc.get(f"/auth/google/callback?code={code}"), 400, "state")
    assert_error(oc.get(f"/auth/discord/callback?code={code}&state={state}"), 400)  # another provider's state
    ok_final = oc.get(f"/auth/google/callback?code={code}&state={state}")
    assert decode_b(ok_final.headers["Location"])["hasError"] is False
    assert_error(oc.get(f"/auth/google/callback?code={code}&state={state}"), 400, "already used")


def test_a_replayed_code_is_refused(oc, fake):
    fake.provider.account = Account("g-400", "code-replay@example.com")
    first, _, _ = login(oc, "google")
    assert decode_b(first.headers["Location"])["hasError"] is False
    # a new flow, but the provider is handed an already-used code
    response, headers = start(oc, "google")
    back = requests.get(response.headers["Location"], allow_redirects=False, timeout=10)
    state = parse_qs(urlsplit(back.headers["Location"]).query)["state"][0]
    final = oc.get(f"/auth/google/callback?code=already-used-code&state={state}")
    body = decode_b(final.headers["Location"])
    assert body["hasError"] is True and "refused" in body["errorMessage"]
    assert assert_ok(oc.get("/getSelfUser", headers=headers))["payload"]["isAuthenticated"] is False


def test_sign_out_revokes_the_token(oc, fake):
    fake.provider.account = Account("g-500", "revoke@example.com")
    _, headers, _ = login(oc, "google")
    revoked_before = len(fake.provider.revoked)
    assert assert_ok(oc.post("/signOutUser", headers=headers))["payload"]["success"] is True
    assert len(fake.provider.revoked) == revoked_before + 1


def test_unknown_and_unconfigured_providers_are_404(oc, client):
    assert_error(start(oc, "myspace")[0], 404, "myspace")
    assert_error(start(client, "google")[0], 404, "not configured")


def test_start_input_is_validated(oc):
    assert_error(oc.post("/auth/google", json={}, headers=new_session_headers()), 400, "redirectURL")


def test_login_csrf_a_victim_finishing_the_attackers_flow_signs_nobody_in(oauth_app, fake):
    """The attacker starts a login on their own session and has the victim's browser finish it."""
    attacker_browser, victim_browser = oauth_app.test_client(), oauth_app.test_client()
    fake.provider.account = Account("g-victim", "csrf-victim@example.com")
    response, attacker_session = start(attacker_browser, "google")
    assert response.status_code == 302
    set_cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=Lax" in set_cookie and "/auth/google/callback" in set_cookie
    back = requests.get(response.headers["Location"], allow_redirects=False, timeout=10)  # the victim at the provider
    callback = urlsplit(back.headers["Location"])
    final = victim_browser.get(f"{callback.path}?{callback.query}")
    body = decode_b(final.headers["Location"])
    assert body["hasError"] is True and "browser" in body["errorMessage"]
    me = assert_ok(attacker_browser.get("/getSelfUser", headers=attacker_session))["payload"]
    assert me["isAuthenticated"] is False
    # the victim's code cannot be replayed through the attacker's own browser (cookie) either
    replay = attacker_browser.get(f"{callback.path}?{callback.query}")
    assert_error(replay, 400, "already used")
    assert assert_ok(attacker_browser.get("/getSelfUser", headers=attacker_session))["payload"]["isAuthenticated"] is False
    assert_error(oauth_app.test_client().post("/authenticateUser", json={"email": "csrf-victim@example.com",
                                                                          "password": "Any-Passw0rd!"},
                                              headers=new_session_headers()), 401)


def test_a_callback_with_another_flows_cookie_is_refused(oauth_app, fake):
    browser = oauth_app.test_client()
    fake.provider.account = Account("g-two", "two-flows@example.com")
    first, _ = start(browser, "google")
    second, second_session = start(oauth_app.test_client(), "google")  # started elsewhere
    first_cookie = first.headers["Set-Cookie"].split(";", 1)[0].split("=", 1)
    back = requests.get(second.headers["Location"], allow_redirects=False, timeout=10)
    callback = urlsplit(back.headers["Location"])
    second_state = parse_qs(callback.query)["state"][0]
    from aimg_app.services.oauth import binding_cookie_name

    # the first flow's signed value, presented under the second flow's cookie name
    browser.set_cookie(binding_cookie_name(second_state), first_cookie[1], path="/auth/google/callback")
    body = decode_b(browser.get(f"{callback.path}?{callback.query}").headers["Location"])
    assert body["hasError"] is True
    assert assert_ok(browser.get("/getSelfUser", headers=second_session))["payload"]["isAuthenticated"] is False


def test_a_verified_provider_email_evicts_a_password_squatter(oc, fake):
    squatter = new_session_headers()
    assert_ok(oc.post("/createUser", json={"email": "squatted@example.com", "password": "Squatt3r-Pass!"},
                      headers=squatter))
    fake.provider.account = Account("g-owner", "squatted@example.com")
    body = decode_b(login(oc, "google")[0].headers["Location"])
    assert body["hasError"] is False
    assert assert_ok(oc.get("/getSelfUser", headers=squatter))["payload"]["isAuthenticated"] is False
    assert_error(oc.post("/authenticateUser", json={"email": "squatted@example.com", "password": "Squatt3r-Pass!"},
                         headers=new_session_headers()), 401)
