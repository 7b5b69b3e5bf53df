"""ingestLogs: LogEntry validation, the default serviceName, storage in PostgreSQL."""
from __future__ import annotations

import uuid

import pytest

from tests.conftest import ADMIN_HEADERS, assert_error, assert_ok, new_session_headers


def stored(client, request_id: str) -> list[dict]:
    """Read the stored rows back through the admin SQL endpoint, as an operator would."""
    body = assert_ok(client.post("/pgQuery", headers=ADMIN_HEADERS, json={
        "queryText": "SELECT * FROM log_entries WHERE request_id = $1 ORDER BY id", "queryParams": [request_id]}))
    return body["payload"]["rows"]


def test_logs_are_stored_with_the_default_service_name(client):
    rid = str(uuid.uuid4())
    session = new_session_headers(**{"X-Request-ID": rid})
    entries = [
        {"message": "page loaded", "timestamp": 1_700_000_000_000},
        {"message": "boom", "level": "error", "apiSubscope": "gallery", "httpMethod": "POST",
         "httpPath": "getMyCreations", "httpUrl": "https://aimg.example/getMyCreations",
         "errorName": "TypeError", "errorMessage": "x is undefined", "errorStack": "at a.js:1"},
    ]
    body = assert_ok(client.post("/ingestLogs", json={"logs": entries}, headers=session))
    assert body["payload"] == {"success": True}
    rows = stored(client, rid)
    assert [r["message"] for r in rows] == ["page loaded", "boom"]
    assert all(r["service_name"] == "FrontEnd/Client/AIMG/dev" for r in rows)
    assert rows[0]["level"] == "info" and rows[0]["logged_at"].startswith("2023-11-14T22:13:20")
    assert rows[1]["level"] == "error" and rows[1]["http_method"] == "POST" and rows[1]["error_stack"] == "at a.js:1"
    assert rows[0]["session_id"] == session["X-Session-ID"] and rows[0]["domain"] == "localhost"


def test_custom_service_name_is_kept(client):
    rid = str(uuid.uuid4())
    assert_ok(client.post("/ingestLogs", json={"serviceName": "FrontEnd/Admin/AIMG/prod", "logs": [{"message": "m"}]},
                          headers=new_session_headers(**{"X-Request-ID": rid})))
    assert stored(client, rid)[0]["service_name"] == "FrontEnd/Admin/AIMG/prod"


@pytest.mark.parametrize("name", ["no-slashes", "/leading", "a//b", "a/b/", "a/<script>", "x" * 70 + "/y"])
def test_malformed_service_name_is_refused(client, name):
    response = client.post("/ingestLogs", json={"serviceName": name, "logs": [{"message": "m"}]},
                           headers=new_session_headers())
    assert_error(response, 400, "serviceName")


@pytest.mark.parametrize("entry, field", [
    ({}, "message"),
    ({"message": ""}, "message"),
    ({"message": "m", "level": "debug"}, "level"),
    ({"message": "m", "httpMethod": "TRACE"}, "httpMethod"),
    ({"message": "m", "timestamp": "yesterday"}, "timestamp"),
    ({"message": "m", "timestamp": -1}, "timestamp"),
    ({"message": 42}, "message"),
])
def test_invalid_log_entries_are_refused_and_nothing_is_stored(client, entry, field):
    rid = str(uuid.uuid4())
    response = client.post("/ingestLogs", json={"logs": [{"message": "valid"}, entry]},
                           headers=new_session_headers(**{"X-Request-ID": rid}))
    assert_error(response, 400, field)
    assert stored(client, rid) == []


def test_logs_must_be_a_non_empty_bounded_list(client):
    assert_error(client.post("/ingestLogs", json={}, headers=new_session_headers()), 400, "logs")
    assert_error(client.post("/ingestLogs", json={"logs": []}, headers=new_session_headers()), 400, "logs")
    too_many = {"logs": [{"message": "m"}] * 1001}
    assert_error(client.post("/ingestLogs", json=too_many, headers=new_session_headers()), 400, "logs")


def test_session_is_mandatory_without_admin_key(client):
    assert_error(client.post("/ingestLogs", json={"logs": [{"message": "m"}]}), 400, "X-Session-ID")


def test_admin_may_ingest_without_session(client):
    rid = str(uuid.uuid4())
    assert_ok(client.post("/ingestLogs", json={"logs": [{"message": "from admin"}]},
                          headers={**ADMIN_HEADERS, "X-Request-ID": rid}))
    row = stored(client, rid)[0]
    assert row["admin_name"] == "alice" and row["session_id"] is None


def test_ingestion_is_rate_limited_per_session(make_app):
    limited = make_app(ingest_logs_rate_limit="3 per minute").test_client()
    session, other = new_session_headers(), new_session_headers()
    for headers in (session, other):
        assert_ok(limited.get("/getSelfUser", headers=headers))  # sessions that exist key the limit
    for _ in range(3):
        assert_ok(limited.post("/ingestLogs", json={"logs": [{"message": "m"}]}, headers=session))
    response = limited.post("/ingestLogs", json={"logs": [{"message": "m"}]}, headers=session)
    assert_error(response, 429)
    assert response.headers.get("Retry-After")
    # another session is not affected
    assert_ok(limited.post("/ingestLogs", json={"logs": [{"message": "m"}]}, headers=other))


def test_nul_characters_do_not_break_storage(client):
    rid = str(uuid.uuid4())
    assert_ok(client.post("/ingestLogs", json={"logs": [{"message": "before\u0000after"}]},
                          headers=new_session_headers(**{"X-Request-ID": rid})))
    assert stored(client, rid)[0]["message"] == "before\ufffdafter"
