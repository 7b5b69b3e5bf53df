"""Infrastructure faults answer "try again later" in the envelope, and limits fail closed."""
from __future__ import annotations

from tests.conftest import assert_error, new_session_headers


def test_redis_down_fails_closed(make_app):
    # Nothing listens on port 1: every Redis call is refused at once.
    client = make_app(redis_url="redis://127.0.0.1:1/0").test_client()
    assert_error(client.post("/requestOTP", json={"email": "a@example.com"}, headers=new_session_headers()), 503)
    assert_error(client.post("/ingestLogs", json={"logs": [{"message": "m"}]}, headers=new_session_headers()), 503)


def test_file_store_down_is_503(make_app):
    client = make_app(seaweedfs_url="http://127.0.0.1:1").test_client()
    assert_error(client.get("/getFile?id=anything"), 404)  # metadata says there is no such file
    import io

    from tests.conftest import ADMIN_HEADERS

    response = client.post("/uploadFile", data={"file": (io.BytesIO(b"x"), "x.txt")}, headers=ADMIN_HEADERS)
    assert_error(response, 503)
