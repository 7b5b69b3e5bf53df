"""Every endpoint, fed generated input from our own OpenAPI document: no 5xx, and every
JSON answer is the envelope (RELIABILITY 18). Bounded: a few examples per operation."""
from __future__ import annotations

import uuid

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from aimg_app import create_app
from aimg_app.config import load_settings
from tests.conftest import ADMIN_KEY, sign_up

METHODS = {"get", "post", "put", "patch", "delete"}
# Parameters that ask for bulk work are capped so the run stays bounded in time.
BOUNDED = {("/downloadGiftCards", "get"): {"numberOfCards": 3}}


def _operations() -> list[tuple[str, str]]:
    """Every operation of the document (built without any service)."""
    app = create_app(load_settings({}, migrate_on_start=False, mongodb_uri="", redis_url=""))
    doc = app.extensions["aimg_api"].spec.to_dict()
    return sorted((path, method) for path, item in doc["paths"].items() for method in item if method in METHODS)


@pytest.fixture(scope="module")
def app(make_app):
    from tests.plugins import every_hook

    # /events streams end after a second (the fuzzer reads each answer to its end)
    return make_app(plugins=[every_hook], events_stream_seconds=1.0)


@pytest.fixture(scope="module")
def api_schema(app):
    return schemathesis.openapi.from_wsgi("/openapi.json", app)


@pytest.fixture(scope="module")
def identities(app):
    """A signed-in user's session with the admin key (user and admin paths), and an unknown session."""
    user = sign_up(app.test_client())
    return [{**user["headers"], "X-Administration-Key": ADMIN_KEY}, {"X-Session-ID": str(uuid.uuid4())}]


@pytest.mark.parametrize("path, method", _operations())
def test_no_server_error_and_always_the_envelope(api_schema, identities, path, method):
    operation = api_schema[path][method]

    @given(case=operation.as_strategy())
    @settings(max_examples=6, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    def check(case):
        for name, cap in BOUNDED.get((path, method), {}).items():
            value = (case.query or {}).get(name)
            if not isinstance(value, int) or isinstance(value, bool) or value > cap:
                case.query = {**(case.query or {}), name: cap}
        for headers in identities:
            response = case.call(headers=headers)
            assert response.status_code < 500, (method, path, response.status_code, response.text[:300])
            content_type = response.headers.get("Content-Type") or [""]
            if (content_type[0] if isinstance(content_type, list) else content_type).startswith("application/json"):
                body = response.json()
                assert isinstance(body, dict) and "hasError" in body, body
                if response.status_code >= 400:
                    assert body["hasError"] is True and body["errorMessage"] and body["payload"] is None

    check()
