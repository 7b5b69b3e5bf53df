"""A browser front-end calls the API from its own origin; a foreign origin's page cannot read it."""
from __future__ import annotations

import uuid

import pytest
import requests

from aimg_app.config import Domain
from tests.conftest import STRONG_PASSWORD
from tests.support.live import free_port, serve_app, serve_page

PAGE = """<!doctype html><html><body><script>
window.callApi = async (api) => {
  const sid = crypto.randomUUID();
  const email = `cors-${sid.slice(0, 8)}@example.com`;
  const created = await fetch(api + "/createUser", {method: "POST",
    headers: {"Content-Type": "application/json", "X-Session-ID": sid},
    body: JSON.stringify({email, password: "%s"})});
  const self = await fetch(api + "/getSelfUser", {headers: {"X-Session-ID": sid}});
  const body = await self.json();
  return {created: created.status, status: self.status, email: body.payload.email, expected: email,
          requestId: self.headers.get("X-Request-ID")};
};
window.tryApi = async (api) => {
  try { await fetch(api + "/getSelfUser", {headers: {"X-Session-ID": crypto.randomUUID()}}); return "read"; }
  catch (e) { return "blocked: " + e.name; }
};
</script></body></html>""" % STRONG_PASSWORD


@pytest.fixture(scope="module")
def front_end():
    """An allowed origin (127.0.0.1:<port>) and a live API whose domain lists it."""
    return free_port()


@pytest.fixture(scope="module")
def live_api(make_app, front_end):
    domain = Domain(identifier="localhost", display_name="AIMG", environment="dev",
                    origins=(f"http://127.0.0.1:{front_end}",), hosts=("127.0.0.1", "localhost"))
    with serve_app(make_app(domains=(domain,))) as url:
        yield url


def test_preflight_from_the_allowed_origin_is_answered_and_cached(live_api, front_end):
    origin = f"http://127.0.0.1:{front_end}"
    response = requests.options(f"{live_api}/createUser", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-session-id,idempotency-key,x-administration-key,x-request-id",
    }, timeout=10)
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == origin
    allowed = {h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"x-session-id", "x-administration-key", "idempotency-key", "x-request-id", "content-type"} <= allowed
    assert int(response.headers["Access-Control-Max-Age"]) >= 600
    simple = requests.get(f"{live_api}/generateStrongPassword", headers={"Origin": origin}, timeout=10)
    assert simple.headers["Access-Control-Allow-Origin"] == origin
    assert "x-request-id" in simple.headers["Access-Control-Expose-Headers"].lower()


def test_a_foreign_origin_gets_no_allow_header(live_api):
    for origin in ("https://evil.example", "http://127.0.0.1:1"):
        preflight = requests.options(f"{live_api}/createUser", headers={
            "Origin": origin, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-session-id"}, timeout=10)
        assert "Access-Control-Allow-Origin" not in preflight.headers
        plain = requests.get(f"{live_api}/generateStrongPassword", headers={"Origin": origin}, timeout=10)
        assert "Access-Control-Allow-Origin" not in plain.headers


def test_a_page_on_the_allowed_origin_signs_up_and_reads_its_session(page, live_api, front_end):
    with serve_page(PAGE, port=front_end) as origin:
        page.goto(origin + "/")
        result = page.evaluate("api => window.callApi(api)", live_api)
    assert result["created"] == 200 and result["status"] == 200
    assert result["email"] == result["expected"]
    uuid.UUID(result["requestId"])  # an exposed header the front-end can read


def test_a_page_on_a_foreign_origin_is_blocked(page, live_api):
    with serve_page(PAGE, host="localhost") as origin:
        page.goto(origin + "/")
        assert page.evaluate("api => window.tryApi(api)", live_api) == "blocked: TypeError"
