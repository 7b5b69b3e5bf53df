"""A file and a log entry survive stopping and starting the embedded services."""
from __future__ import annotations

import io
import os
import uuid

from aimg_app import create_app
from aimg_app.config import load_settings
from aimg_app.devservices import EmbeddedServices
from tests.conftest import ADMIN_HEADERS, ADMIN_KEY, assert_ok


def _client(exports):
    env = {**exports, "AIMG_ADMIN_KEYS": f"alice:{ADMIN_KEY}"}
    app = create_app(load_settings(env))
    return app, app.test_client()


def test_data_survives_a_restart(tmp_path):
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith("AIMG_")}
    only = {"mongodb", "postgres", "seaweedfs"}
    rid = str(uuid.uuid4())

    with EmbeddedServices(tmp_path, env=clean_env, only=only, say=lambda _m: None) as first:
        app, client = _client(first.exports)
        meta = assert_ok(client.post("/uploadFile", headers=ADMIN_HEADERS,
                                     data={"file": (io.BytesIO(b"kept across restarts"), "keep.txt")}))["payload"]
        assert_ok(client.post("/ingestLogs", json={"logs": [{"message": "remember me"}]},
                              headers={"X-Session-ID": str(uuid.uuid4()), "X-Request-ID": rid}))
        app.extensions["aimg"].close()

    with EmbeddedServices(tmp_path, env=clean_env, only=only, say=lambda _m: None) as second:
        app, client = _client(second.exports)
        assert client.get(f"/getFile?id={meta['id']}").data == b"kept across restarts"
        assert assert_ok(client.get(f"/getFileMetadata?id={meta['id']}", headers=ADMIN_HEADERS))["payload"] == meta
        rows = assert_ok(client.post("/pgQuery", headers=ADMIN_HEADERS, json={
            "queryText": "SELECT message FROM log_entries WHERE request_id = $1", "queryParams": [rid]}))
        assert rows["payload"]["rows"] == [{"message": "remember me"}]
        app.extensions["aimg"].close()
