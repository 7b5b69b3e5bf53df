"""The request path's cost in MongoDB commands (a count, the same on any machine), and that
keeping the session and its user between requests (``aimg_app.identity_cache``) still signs a
session out on the very next request after a sign-out, a password change, a disable or a
deletion, in this process and in every other."""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from aimg_app.models import Session
from tests.conftest import ADMIN_HEADERS, ADMIN_KEY, STRONG_PASSWORD, assert_error, assert_ok, new_session_headers, sign_up
from tests.library_helpers import make_items, publish, set_user_fields
from tests.support import commands

commands.install()  # before the module's application connects


@pytest.fixture(scope="module")
def app(make_app):
    return make_app()


def post(client, who, path, **body):
    return assert_ok(client.post(path, json=body, headers=who["headers"]))["payload"]


@pytest.fixture(scope="module")
def library(app):
    """A user with Items (one liked), folders with Items in them, and another user's public Item."""
    client = app.test_client()
    owner, other = sign_up(client), sign_up(client)
    items = make_items(app, owner["user_id"], 5)
    folders = [post(client, owner, "/createSelfFolder", name=f"f{n}")["id"] for n in range(3)]
    post(client, owner, "/addImagesToSelfFolder", folderID=folders[0], imageIDs=items[:2])
    post(client, owner, "/likeItems", imageIDs=[items[0]])
    [public] = make_items(app, other["user_id"])
    publish(client, other, public)
    post(client, owner, "/dislikeItems", imageIDs=[public])
    return {"owner": owner, "items": items, "public": public}


READS = [
    # (endpoint, query, the most MongoDB commands it may cost)
    ("/getSelfUser", {}, 2),
    ("/getItem", {"imageID": "own"}, 2),
    ("/getItem", {"imageID": "public"}, 2),
    ("/getMyCreations", {}, 3),
    ("/getMyCreations", {"folderID": "root"}, 3),
    ("/getSelfFolders", {}, 3),
]


@pytest.mark.parametrize("path, query, most", READS, ids=[f"{p}{sorted(q.values())}" for p, q, _ in READS])
def test_an_authenticated_read_costs_at_most_its_bound_and_writes_nothing(app, library, path, query, most):
    client = app.test_client()
    ids = {"own": library["items"][0], "public": library["public"]}
    query = {k: ids.get(v, v) for k, v in query.items()}
    for _ in range(2):  # the first call and a repeated one alike
        with commands.counting() as sent:
            body = assert_ok(client.get(path, query_string=query, headers=library["owner"]["headers"]))
        assert len(sent.mongo) <= most, sent.mongo
        assert sent.mongo_writes == [], sent.mongo
    if path == "/getSelfUser":
        assert body["payload"]["isAuthenticated"] is True
    elif path == "/getItem":  # the viewer's reaction comes with the Item
        liked = query["imageID"] == library["items"][0]
        assert (body["payload"]["isLiked"], body["payload"]["isDisliked"]) == (liked, not liked)
    elif path == "/getMyCreations":
        assert len(body["payload"]) == (3 if query else 5)
        assert [i["isLiked"] for i in body["payload"]].count(True) == (0 if query else 1)
    else:
        assert body["metadata"]["totalCount"] == len(body["payload"]) == 3


def test_last_seen_is_written_at_most_once_a_minute(app, library):
    client = app.test_client()
    headers = library["owner"]["headers"]
    with app.app_context():
        app.extensions["aimg"].connect_mongo()
        Session.objects(id=headers["X-Session-ID"]).update_one(
            set__updated_date=dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(minutes=5))
    writes = []
    for _ in range(3):
        with commands.counting() as sent:
            assert_ok(client.get("/getSelfUser", headers=headers))
        writes.append(sent.mongo_writes)
    assert writes == [[("update", "sessions")], [], []]


def test_a_list_of_several_pages_still_counts_everything(app, library):
    client = app.test_client()
    body = assert_ok(client.get("/getSelfFolders", query_string={"limit": 2}, headers=library["owner"]["headers"]))
    assert len(body["payload"]) == 2 and body["metadata"]["totalCount"] == 3
    nxt = assert_ok(client.get("/getSelfFolders", query_string={"limit": 2, "paginationIndex":
                                                                 body["metadata"]["nextPaginationIndex"]},
                               headers=library["owner"]["headers"]))
    assert len(nxt["payload"]) == 1 and nxt["metadata"]["totalCount"] == 3


def signed_in(client, who) -> bool:
    return assert_ok(client.get("/getSelfUser", headers=who["headers"]))["payload"]["isAuthenticated"]


def test_sign_out_takes_effect_on_the_next_request(client):
    user = sign_up(client)
    assert signed_in(client, user)
    assert post(client, user, "/signOutUser")["success"] is True
    assert not signed_in(client, user)
    assert_error(client.get("/getMyCreations", headers=user["headers"]), 401)


def test_a_password_change_signs_the_other_sessions_out_on_their_next_request(client):
    user = sign_up(client)
    elsewhere = {"headers": new_session_headers()}
    assert_ok(client.post("/authenticateUser", json={"email": user["email"], "password": STRONG_PASSWORD},
                          headers=elsewhere["headers"]))
    assert signed_in(client, elsewhere)
    post(client, user, "/setSelfUserProperties", password=STRONG_PASSWORD + "2")
    assert not signed_in(client, elsewhere)
    assert_error(client.get("/getSelfFolders", headers=elsewhere["headers"]), 401)
    assert signed_in(client, user)  # the session that changed it stays signed in


def test_disabling_or_deleting_a_user_takes_effect_on_the_next_request(app, client):
    disabled, deleted = sign_up(client), sign_up(client)
    assert signed_in(client, disabled) and signed_in(client, deleted)
    set_user_fields(app, disabled["user_id"], is_disabled=True)
    assert not signed_in(client, disabled)
    assert_error(client.get("/getMyCreations", headers=disabled["headers"]), 401)
    assert_ok(client.delete("/deleteUser", query_string={"userID": deleted["user_id"]},
                            headers={**ADMIN_HEADERS, **new_session_headers()}))
    assert not signed_in(client, deleted)


def test_a_session_signed_in_under_an_older_credential_epoch_is_signed_out(app, client):
    user = sign_up(client)
    assert signed_in(client, user)
    set_user_fields(app, user["user_id"], auth_epoch=7)  # as a credential change in flight would leave it
    assert not signed_in(client, user)
    assert_error(client.get("/getMyCreations", headers=user["headers"]), 401)


def test_an_unknown_session_id_starts_an_anonymous_session(client):
    headers = new_session_headers()
    body = assert_ok(client.get("/getSelfUser", headers=headers))["payload"]
    assert body["sessionID"] == headers["X-Session-ID"] and body["isAuthenticated"] is False
    assert assert_ok(client.get("/getSelfUser", headers=headers))["payload"]["sessionID"] == headers["X-Session-ID"]


def _identity_reads(client, who) -> list:
    with commands.counting() as sent:
        signed_in(client, who)
    return [c for c in sent.mongo if c[1] in ("sessions", "users")]


def test_after_a_change_of_the_user_alone_only_the_user_is_read_again(app, client):
    """A user whose own document changed (a new name here; counters after every generation)
    still has the same session: the next request reads the user, not the session."""
    user = sign_up(client)
    assert signed_in(client, user)
    assert _identity_reads(client, user) == []
    set_user_fields(app, user["user_id"], username="renamed-elsewhere")  # a write from anywhere
    with commands.counting() as sent:
        shown = assert_ok(client.get("/getSelfUser", headers=user["headers"]))["payload"]
    assert shown["username"] == "renamed-elsewhere"
    assert [c[1] for c in sent.mongo if c[1] in ("sessions", "users")] == ["users"], sent.mongo
    assert _identity_reads(client, user) == []  # kept again


# Another API process: its own application (and its own identity cache) on the same services.
ELSEWHERE = textwrap.dedent("""
    import json, os, sys
    from aimg_app import create_app
    from aimg_app.config import load_settings
    client = create_app(load_settings(dict(os.environ))).test_client()
    for path, sid, body in json.loads(sys.argv[1]):
        answer = client.post(path, json=body, headers={"X-Session-ID": sid})
        assert answer.status_code == 200, answer.get_data(as_text=True)
""")


def test_a_change_made_by_another_process_takes_effect_here_on_the_next_request(app, client, services):
    signing_out, changing, other_session = sign_up(client), sign_up(client), {"headers": new_session_headers()}
    assert_ok(client.post("/authenticateUser", json={"email": changing["email"], "password": STRONG_PASSWORD},
                          headers=other_session["headers"]))
    for who in (signing_out, changing, other_session):
        assert signed_in(client, who)
        assert _identity_reads(client, who) == []  # kept by this process: no command for them
    actions = [("/signOutUser", signing_out["headers"]["X-Session-ID"], {}),
               ("/setSelfUserProperties", changing["headers"]["X-Session-ID"], {"password": STRONG_PASSWORD + "2"})]
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AIMG_")},
           **{k: v for k, v in services.items() if k.startswith("AIMG_")},
           "AIMG_MONGODB_URI": app.extensions["aimg"].settings.mongodb_uri, "AIMG_ADMIN_KEYS": f"alice:{ADMIN_KEY}",
           "AIMG_DATA_DIR": str(services["data_dir"]), "AIMG_MIGRATE_ON_START": "false", "AIMG_LOG_LEVEL": "WARNING"}
    done = subprocess.run([sys.executable, "-c", ELSEWHERE, json.dumps(actions)], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not signed_in(client, signing_out)
    assert not signed_in(client, other_session)  # signed out by the password change over there
    assert_error(client.get("/getSelfFolders", headers=other_session["headers"]), 401)
    assert signed_in(client, changing)


def test_a_sign_out_through_the_users_sessions_during_a_read_is_seen_by_the_next_read(client, monkeypatch):
    """Every session of a user signed out (as a deletion or an admin's "sign out everywhere"
    does) between a read's find of the session and its read of the user's token: the
    entry it keeps must not sign the session in afterwards."""
    from aimg_app import identity_cache
    from aimg_app.models import User
    from aimg_app.services import users

    user = sign_up(client)
    real, fired = identity_cache._tokens, []

    def tokens(keys):
        if keys[0].startswith("aimg:chg:u:") and not fired:  # the session was read, its user's token not yet
            fired.append(users.revoke_other_sessions(User.objects(id=user["user_id"]).first(), None))
        return real(keys)

    identity_cache.clear()
    monkeypatch.setattr(identity_cache, "_tokens", tokens)
    signed_in(client, user)  # the read in flight
    monkeypatch.setattr(identity_cache, "_tokens", real)
    assert fired == [1]
    assert not signed_in(client, user)
    assert_error(client.get("/getMyCreations", headers=user["headers"]), 401)


def test_what_a_process_keeps_of_sessions_is_bounded_in_bytes_and_time(client, monkeypatch):
    from aimg_app import identity_cache

    big = [("r" * 2048)] * 10  # ~20 KB of user document (a refList may hold 50 such entries)
    people = [sign_up(client, refList=big) for _ in range(4)]
    identity_cache.clear()
    monkeypatch.setattr(identity_cache, "MAX_BYTES", 50_000)
    for who in people:
        assert signed_in(client, who)
    assert identity_cache._held <= 50_000 and len(identity_cache._entries) == 2  # the two newest
    monkeypatch.setattr(identity_cache, "ENTRY_TTL_S", 0.05)
    time.sleep(0.1)
    assert signed_in(client, people[0])
    assert len(identity_cache._entries) == 1  # the expired ones went with the next entry kept
