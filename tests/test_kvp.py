"""getUserKVP / setUserKVP / deleteUserKVP."""
from __future__ import annotations

from tests.conftest import assert_error, assert_ok, new_session_headers, sign_up


def test_set_get_overwrite_delete(client, user):
    h = user["headers"]
    assert assert_ok(client.post("/setUserKVP", json={"key": "theme", "value": "dark"}, headers=h))["payload"] == {"key": "theme", "value": "dark"}
    assert assert_ok(client.get("/getUserKVP?key=theme", headers=h))["payload"] == {"key": "theme", "value": "dark"}
    assert_ok(client.post("/setUserKVP", json={"key": "theme", "value": "light"}, headers=h))
    assert assert_ok(client.get("/getUserKVP?key=theme", headers=h))["payload"]["value"] == "light"
    assert assert_ok(client.delete("/deleteUserKVP?key=theme", headers=h))["payload"] == {"success": True}
    assert_error(client.get("/getUserKVP?key=theme", headers=h), 404)
    assert assert_ok(client.delete("/deleteUserKVP?key=theme", headers=h))["payload"] == {"success": False}


def test_pairs_are_private_to_each_user(client):
    a, b = sign_up(client), sign_up(client)
    assert_ok(client.post("/setUserKVP", json={"key": "k", "value": "a's"}, headers=a["headers"]))
    assert_error(client.get("/getUserKVP?key=k", headers=b["headers"]), 404)


def test_limits_and_bad_input(client, user):
    h = user["headers"]
    assert_error(client.post("/setUserKVP", json={"key": "bad key!", "value": "v"}, headers=h), 400, "key")
    assert_error(client.post("/setUserKVP", json={"key": "k", "value": "x" * 10_001}, headers=h), 400, "value")
    assert_error(client.post("/setUserKVP", json={"key": "k"}, headers=h), 400, "value")
    assert_error(client.get("/getUserKVP", headers=h), 400, "key")
    assert_error(client.get("/getUserKVP?key=k", headers=new_session_headers()), 401)


def test_the_key_count_is_capped(client, user, monkeypatch):
    from aimg_app.services import kvp

    monkeypatch.setattr(kvp, "MAX_KEYS", 10)  # the cap is 100; the rule is the same at 10, and faster
    h = user["headers"]
    for i in range(10):
        assert_ok(client.post("/setUserKVP", json={"key": f"k{i}", "value": "v"}, headers=h))
    assert_error(client.post("/setUserKVP", json={"key": "one-more", "value": "v"}, headers=h), 400, "10 keys")
    assert_ok(client.post("/setUserKVP", json={"key": "k5", "value": "overwrite is fine"}, headers=h))
    assert_ok(client.delete("/deleteUserKVP?key=k0", headers=h))
    assert_ok(client.post("/setUserKVP", json={"key": "one-more", "value": "v"}, headers=h))
