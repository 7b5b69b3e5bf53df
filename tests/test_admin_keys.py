"""X-Administration-Key: personal keys, constant-time compare, never partially matched."""
from __future__ import annotations

import io

from tests.conftest import ADMIN_KEY, OTHER_ADMIN_KEY, assert_error, assert_ok


def _upload(client, key):
    headers = {"X-Administration-Key": key} if key is not None else {}
    return client.post("/uploadFile", data={"file": (io.BytesIO(b"k"), "k.txt")}, headers=headers)


def test_missing_empty_wrong_and_prefix_keys_are_refused(client):
    for key in (None, "", "wrong", ADMIN_KEY[:-1], ADMIN_KEY + "x", ADMIN_KEY.upper(), "alice"):
        assert_error(_upload(client, key), 403, "X-Administration-Key")


def test_each_admin_has_a_personal_key_and_is_recorded(client, app):
    from aimg_app.models import StoredFile

    with app.app_context():
        for key, name in ((ADMIN_KEY, "alice"), (OTHER_ADMIN_KEY, "bob")):
            file_id = assert_ok(_upload(client, key))["payload"]["id"]
            assert StoredFile.objects(id=file_id).first().created_by == name


def test_the_key_is_never_logged(client, json_log):
    _upload(client, ADMIN_KEY)
    _upload(client, "wrong-key-value")
    err = json_log.getvalue()
    assert err
    assert ADMIN_KEY not in err and "wrong-key-value" not in err
