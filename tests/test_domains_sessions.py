"""Multi-domain requests and sessions stored in MongoDB."""
from __future__ import annotations

import uuid

import pytest

from aimg_app.config import Domain
from tests.conftest import ADMIN_HEADERS, assert_error, assert_ok

DOMAINS = (
    Domain("aimg.example", "AIMG", "prod", ("https://aimg.example",), ("api.aimg.example",)),
    Domain("other.example", "Other Site", "stage", ("https://other.example",), ("api.other.example",)),
)


@pytest.fixture(scope="module")
def multi(make_app):
    return make_app(domains=DOMAINS)


def ingest(client, host: str, sid: str, rid: str):
    return client.post("/ingestLogs", json={"logs": [{"message": "m"}]}, base_url=f"http://{host}",
                       headers={"X-Session-ID": sid, "X-Request-ID": rid})


def stored_row(client, rid):
    rows = assert_ok(client.post("/pgQuery", headers=ADMIN_HEADERS, json={
        "queryText": "SELECT domain, service_name FROM log_entries WHERE request_id = $1", "queryParams": [rid]}))
    return rows["payload"]["rows"][0]


def test_the_host_selects_the_domain(multi):
    from aimg_app.models import Session

    client = multi.test_client()
    sid, rid = str(uuid.uuid4()), str(uuid.uuid4())
    assert_ok(ingest(client, "api.other.example", sid, rid))
    assert stored_row(client, rid) == {"domain": "other.example", "service_name": "FrontEnd/Client/Other Site/stage"}
    with multi.app_context():
        session = Session.objects(id=sid).first()
        assert session is not None and session.domain == "other.example" and session.user_id is None


def test_an_unknown_host_falls_back_to_the_default_domain(multi):
    client = multi.test_client()
    rid = str(uuid.uuid4())
    assert_ok(ingest(client, "unknown.example", str(uuid.uuid4()), rid))
    assert stored_row(client, rid)["domain"] == "aimg.example"


def test_a_session_belongs_to_one_domain(multi):
    client = multi.test_client()
    sid = str(uuid.uuid4())
    assert_ok(ingest(client, "api.aimg.example", sid, str(uuid.uuid4())))
    assert_error(ingest(client, "api.other.example", sid, str(uuid.uuid4())), 400, "domain")


def test_session_ids_are_normalised(multi):
    from aimg_app.models import Session

    client = multi.test_client()
    sid = str(uuid.uuid4())
    assert_ok(ingest(client, "api.aimg.example", sid.upper(), str(uuid.uuid4())))
    with multi.app_context():
        assert Session.objects(id=sid).count() == 1


def test_a_fully_qualified_host_with_its_trailing_dot_is_the_same_site(multi):
    client = multi.test_client()
    sid, rid = str(uuid.uuid4()), str(uuid.uuid4())
    assert_ok(ingest(client, "api.other.example.", sid, rid))
    assert stored_row(client, rid)["domain"] == "other.example"
    assert_ok(ingest(client, "api.other.example", sid, str(uuid.uuid4())))  # the same session, the same site


def test_a_session_created_a_moment_before_on_another_site_is_refused_too(multi, monkeypatch):
    """The attack: race a request on site A against a sign-in on site B with one new session id;
    the request that loses the insert must not be handed the other site's session."""
    from aimg_app import context

    client = multi.test_client()
    sid = str(uuid.uuid4())
    assert_ok(ingest(client, "api.other.example", sid, str(uuid.uuid4())))  # B created it
    real, calls = context._stored, []

    def not_yet_there(sid_):  # what the loser read just before B's insert landed
        calls.append(sid_)
        return (None, None) if len(calls) == 1 else real(sid_)

    monkeypatch.setattr(context, "_stored", not_yet_there)
    assert_error(client.get("/getSelfUser", base_url="http://api.aimg.example", headers={"X-Session-ID": sid}),
                 400, "another domain")
    assert calls  # the loser's path was taken


def test_parallel_first_requests_on_two_sites_never_share_a_session(multi):
    import threading

    from aimg_app.models import User

    client = multi.test_client()
    b = {"X-Session-ID": str(uuid.uuid4())}
    email = f"b-{uuid.uuid4().hex[:8]}@example.com"
    assert_ok(client.post("/createUser", json={"email": email, "password": "Passw0rd!xy"}, headers=b,
                          base_url="http://api.other.example"))
    for _ in range(15):
        sid = str(uuid.uuid4())
        answers = {}

        def on_a():
            answers["a"] = multi.test_client().get("/getSelfUser", base_url="http://api.aimg.example",
                                                   headers={"X-Session-ID": sid})

        def sign_in_on_b():
            answers["b"] = multi.test_client().post("/authenticateUser", json={"email": email, "password": "Passw0rd!xy"},
                                                    base_url="http://api.other.example", headers={"X-Session-ID": sid})

        threads = [threading.Thread(target=on_a), threading.Thread(target=sign_in_on_b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert not (answers["a"].status_code == 200 and answers["b"].status_code == 200), "one session on two sites"
        after = client.get("/getSelfUser", base_url="http://api.aimg.example", headers={"X-Session-ID": sid})
        if after.status_code == 200:
            assert after.get_json()["payload"]["isAuthenticated"] is False
    with multi.app_context():
        assert User.objects(email=email).count() == 1
