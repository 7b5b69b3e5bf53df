"""One error shape over every error path, and the request id on every response."""
from __future__ import annotations

import uuid

import pytest

from tests.conftest import ADMIN_HEADERS, assert_error, assert_ok, new_session_headers


def test_unknown_path_is_404_in_the_envelope(client):
    assert_error(client.get("/doesNotExist"), 404, "does not exist")


def test_wrong_method_is_405_in_the_envelope(client):
    response = client.delete("/generateStrongPassword")
    assert_error(response, 405, "method")
    assert "GET" in response.headers["Allow"]


def test_validation_error_is_400_not_422_and_names_the_field(client):
    response = client.post("/ingestLogs", json={"logs": [{"level": "info"}]}, headers=new_session_headers())
    assert_error(response, 400, "logs.0.message")


def test_body_that_is_not_json_is_400(client):
    response = client.post("/ingestLogs", data="{not json", content_type="application/json",
                           headers=new_session_headers())
    assert_error(response, 400)


def test_body_that_is_a_list_is_400(client):
    response = client.post("/ingestLogs", json=[1, 2], headers=new_session_headers())
    assert_error(response, 400)


def test_unknown_body_field_is_named(client):
    response = client.post("/ingestLogs", json={"logs": [{"message": "m"}], "servceName": "x/y"},
                           headers=new_session_headers())
    assert_error(response, 400, "servceName")


def test_unexpected_error_is_500_without_internal_detail(client):
    response = client.get("/test-plugin/boom")
    body = assert_error(response, 500)
    assert "secret" not in response.get_data(as_text=True)
    assert "RuntimeError" not in body["errorMessage"]


def test_plugin_errors_keep_the_envelope(client):
    assert_error(client.get("/test-plugin/refuse"), 400, "refused by the plugin")


def test_admin_endpoint_without_key_is_403(client):
    assert_error(client.get("/getFileMetadata?id=x"), 403, "X-Administration-Key")


def test_malformed_session_id_is_400_everywhere(client):
    for path in ("/generateStrongPassword", "/getAffiliateAd", "/doesNotExist"):
        assert_error(client.get(path, headers={"X-Session-ID": "not-a-uuid"}), 400, "X-Session-ID")


def test_request_id_is_echoed(client):
    response = client.get("/generateStrongPassword", headers={"X-Request-ID": "req-123.abc"})
    assert response.headers["X-Request-ID"] == "req-123.abc"


def test_request_id_is_generated_when_absent_or_unsafe(client):
    generated = client.get("/generateStrongPassword").headers["X-Request-ID"]
    uuid.UUID(generated)
    unsafe = client.get("/generateStrongPassword", headers={"X-Request-ID": "a\tb" + "x" * 300})
    assert unsafe.headers["X-Request-ID"] != "a\tb" + "x" * 300
    uuid.UUID(unsafe.headers["X-Request-ID"])


def test_request_id_is_in_the_log_lines(client, json_log):
    import json

    client.get("/generateStrongPassword", headers={"X-Request-ID": "trace-me-42"})
    entries = [json.loads(line) for line in json_log.getvalue().splitlines()]
    assert any(e["requestId"] == "trace-me-42" and e.get("path") == "/generateStrongPassword" for e in entries)


def test_body_over_the_limit_is_413(make_app):
    small = make_app(max_request_bytes=1024).test_client()
    response = small.post("/ingestLogs", json={"logs": [{"message": "x" * 5000}]}, headers=new_session_headers())
    assert_error(response, 413)


def test_success_envelope_shape(client):
    body = assert_ok(client.get("/generateStrongPassword"))
    assert set(body) == {"hasError", "payload"}


def test_conflict_is_409(client):
    import io

    data = lambda: {"file": (io.BytesIO(b"abc"), "a.txt"), "id": "conflict-id"}  # noqa: E731
    assert_ok(client.post("/uploadFile", data=data(), headers=ADMIN_HEADERS))
    assert_error(client.post("/uploadFile", data=data(), headers=ADMIN_HEADERS), 409, "conflict-id")


@pytest.mark.parametrize("path, body", [
    ("/createSelfFolder", '{"name": "x\\ud800y"}'),
    ("/createPublicFolder", '{"name": "ok", "description": "\\udbff"}'),
    ("/setUserKVP", '{"key": "k", "value": "v\\udfff"}'),
    ("/generateImage", '{"prompt": "cat \\ud800"}'),
    ("/reportItems", '{"imageIDs": ["x"], "reportQueue": "\\ud800"}'),
    ("/ingestLogs", '{"logs": [{"level": "info", "message": "\\ud800"}]}'),
    ("/createSelfFolder", '{"\\ud800": "a key that is no character"}'),
])
def test_a_lone_surrogate_escape_is_400_not_500(client, path, body):
    """JSON can escape half a UTF-16 pair, which no store can encode: refused, named, nothing written."""
    from tests.conftest import sign_up

    user = sign_up(client)
    response = client.post(path, data=body, content_type="application/json", headers=user["headers"])
    assert_error(response, 400, "surrogate")
    # a whole pair escaped is a character, and passes
    ok = client.post("/createSelfFolder", data='{"name": "smile \\ud83d\\ude00"}', content_type="application/json",
                     headers=user["headers"])
    assert ok.status_code == 200 and ok.get_json()["payload"]


@pytest.mark.parametrize("body, named", [
    ('{"prompt": "a", "steps": ' + "9" * 5000 + "}", "number too long"),  # past Python's 4300-digit limit
    ('{"prompt": "a", "x": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
    ('{"prompt": "a", "x": ' + "[" * 5_000 + "]" * 5_000 + "}", ""),  # deep enough for the surrogate check
])
@pytest.mark.parametrize("path", ["/createUser", "/generateImage"])
def test_a_json_body_python_cannot_hold_is_400_not_500(client, path, body, named):
    from tests.conftest import new_session_headers

    assert_error(client.post(path, data=body, content_type="application/json", headers=new_session_headers()), 400,
                 named)
