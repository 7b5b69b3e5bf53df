"""Real services for the whole test session, a fresh MongoDB database per test module.

The embedded launcher (the one ``aimg serve`` uses) starts MongoDB-protocol, PostgreSQL,
Redis, SeaweedFS and SMTP servers on loopback once; each test module gets its own MongoDB
database (mongoeco is slow on large collections, so nothing shares one big collection).
"""
from __future__ import annotations

import os
import re
import secrets
import uuid
from urllib.parse import urlsplit, urlunsplit

import pymongo
import pytest
import redis
from flask.testing import FlaskClient

from aimg_app import create_app
from aimg_app.config import load_settings
from aimg_app.devservices import EmbeddedServices

pytest_plugins = ["tests.support.browser"]

@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    # A private base temp dir per run: pytest's shared numbered dirs are pruned by
    # concurrent runs on the same machine, which would pull data from under live services.
    if not config.option.basetemp:
        import tempfile

        config.option.basetemp = tempfile.mkdtemp(prefix="aimg-pytest-")
        config._aimg_basetemp = config.option.basetemp


def pytest_unconfigure(config):
    import shutil

    if getattr(config, "_aimg_basetemp", None):
        shutil.rmtree(config._aimg_basetemp, ignore_errors=True)


ADMIN_KEY = "admin-key-0123456789abcdef"
OTHER_ADMIN_KEY = "second-admin-key-fedcba9876543210"
ADMIN_HEADERS = {"X-Administration-Key": ADMIN_KEY}


@pytest.fixture(scope="session")
def services(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("aimg-data")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIMG_")}
    launcher = EmbeddedServices(data_dir, env=env, say=lambda _m: None)
    exports = launcher.start()
    try:
        yield {"data_dir": data_dir, **exports}
    finally:
        launcher.stop()


def _database_uri(uri: str, name: str) -> str:
    return urlunsplit(urlsplit(uri)._replace(path=f"/{name}"))


class OwnAddressClient(FlaskClient):
    """A test client with an address of its own, as a separate host would have: limits
    keyed on the client address (OTP requests, failed sign-ins) do not add up across tests."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.environ_base["REMOTE_ADDR"] = f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{1 + secrets.randbelow(254)}"


@pytest.fixture(scope="module")
def make_app(services, request):
    """Build an application on the shared services; settings overrides as keywords."""
    module = re.sub(r"\W", "_", request.module.__name__.rsplit(".", 1)[-1])
    built = []

    def factory(*, plugins=(), database: str | None = None, **overrides):
        env = {k: v for k, v in services.items() if k.startswith("AIMG_")}
        env["AIMG_ADMIN_KEYS"] = f"alice:{ADMIN_KEY},bob:{OTHER_ADMIN_KEY}"
        env["AIMG_DATA_DIR"] = str(services["data_dir"])
        settings = load_settings(env)
        db = database or f"t_{module}_{uuid.uuid4().hex[:6]}"
        settings.mongodb_uri = _database_uri(settings.mongodb_uri, db)
        for key, value in overrides.items():
            setattr(settings, key, value)
        if not built:  # a module starts on an empty Redis: no queued job, limit or lock of an earlier module
            redis.Redis.from_url(services["AIMG_REDIS_URL"]).flushdb()
        app = create_app(settings, extra_plugins=plugins)
        app.testing = True
        app.test_client_class = OwnAddressClient
        built.append(app)
        return app

    yield factory
    for app in built:
        app.extensions["aimg"].close()
    # The embedded MongoDB-protocol server keeps every database in one file: a module's data
    # goes with the module, so later modules do not work on a store that grew all along.
    with pymongo.MongoClient(services["AIMG_MONGODB_URI"], serverSelectionTimeoutMS=5000) as mongo:
        for name in {urlsplit(app.extensions["aimg"].settings.mongodb_uri).path.strip("/") for app in built}:
            if name:
                mongo.drop_database(name)


@pytest.fixture(scope="module")
def app(make_app):
    from tests.plugins import every_hook

    return make_app(plugins=[every_hook])


@pytest.fixture()
def client(app):
    return app.test_client()


def new_session_headers(**extra) -> dict:
    return {"X-Session-ID": str(uuid.uuid4()), **extra}


def assert_error(response, status: int, *fragments: str) -> dict:
    """The contract's error envelope, with ``status`` and a message naming the problem."""
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True))
    body = response.get_json()
    assert body is not None, response.get_data(as_text=True)
    assert body["hasError"] is True
    assert body["payload"] is None
    assert isinstance(body["errorMessage"], str) and body["errorMessage"]
    assert body["errorCode"] == status
    assert "Traceback" not in body["errorMessage"]
    for fragment in fragments:
        assert fragment.lower() in body["errorMessage"].lower(), body["errorMessage"]
    assert response.headers.get("X-Request-ID")
    return body


def assert_ok(response) -> dict:
    assert response.status_code == 200, (response.status_code, response.get_data(as_text=True))
    body = response.get_json()
    assert body["hasError"] is False, body
    assert "payload" in body
    assert response.headers.get("X-Request-ID")
    return body


@pytest.fixture()
def json_log():
    """The JSON log lines emitted during the test, as text."""
    import io
    import logging

    from aimg_app.jsonlog import JsonFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logging.getLogger().addHandler(handler)
    try:
        yield stream
    finally:
        logging.getLogger().removeHandler(handler)


STRONG_PASSWORD = "Sup3r-Secret!pass"


def sign_up(client, email: str | None = None, password: str = STRONG_PASSWORD, **extra) -> dict:
    """Create a user through the API and return the headers of their signed-in session
    (``X-Session-ID``) plus ``user_id`` and ``email`` for convenience."""
    email = email or f"user-{uuid.uuid4().hex[:10]}@example.com"
    headers = new_session_headers()
    body = assert_ok(client.post("/createUser", json={"email": email, "password": password, **extra}, headers=headers))
    return {"headers": headers, "user_id": body["payload"]["userID"], "email": email, "self": body["payload"]}


@pytest.fixture()
def user(client):
    """A freshly signed-up user of the module's app: {"headers", "user_id", "email", "self"}."""
    return sign_up(client)


def read_mails(services, to: str) -> list:
    """Messages the SMTP sink received for ``to``, oldest first (email.message.EmailMessage)."""
    import email
    import email.policy
    from pathlib import Path

    maildir = Path(services["AIMG_SMTP_MAILDIR"])
    found = []
    for path in sorted(maildir.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if to.lower() in str(message["To"]).lower():
            found.append(message)
    return found


def last_otp(services, to: str) -> str:
    import re

    body = read_mails(services, to)[-1].get_body(("plain",)).get_content()
    return re.search(r"one-time password is (\d{6})", body).group(1)
