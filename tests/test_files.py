"""uploadFile / getFile / getFileMetadata / removeFile on the real SeaweedFS."""
from __future__ import annotations

import hashlib
import http.server
import io
import json
import threading

import pytest
from PIL import Image

from tests.conftest import ADMIN_HEADERS, assert_error, assert_ok


def png_bytes(size=(64, 32), color="red") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def upload(client, data: bytes, name: str, **form):
    payload = {"file": (io.BytesIO(data), name), **form}
    return client.post("/uploadFile", data=payload, headers=ADMIN_HEADERS)


def test_upload_then_get_roundtrip(client):
    data = b"hello, file store"
    meta = assert_ok(upload(client, data, "notes.txt", customMetadata=json.dumps({"purpose": "test", "n": 1})))["payload"]
    assert meta["fileName"] == "notes.txt" and meta["fileSize"] == len(data)
    assert meta["checksumAlgorithm"] == "sha256" and meta["checksum"] == hashlib.sha256(data).hexdigest()
    assert meta["contentType"] == "text/plain"
    assert meta["customMetadata"] == {"purpose": "test", "n": 1}
    assert meta["publicUrl"].endswith(f"/getFile?id={meta['id']}")
    assert meta["createdDate"].endswith("Z")

    response = client.get(f"/getFile?id={meta['id']}")
    assert response.status_code == 200 and response.data == data
    assert response.headers["Content-Disposition"].startswith("inline")
    assert response.mimetype == "text/plain"
    assert response.headers["X-Content-Type-Options"] == "nosniff"

    assert assert_ok(client.get(f"/getFileMetadata?id={meta['id']}", headers=ADMIN_HEADERS))["payload"] == meta


def test_client_chosen_id_and_duplicate_refused(client):
    assert assert_ok(upload(client, b"1", "one.bin", id="my-file.v1"))["payload"]["id"] == "my-file.v1"
    assert_error(upload(client, b"2", "two.bin", id="my-file.v1"), 409, "my-file.v1")
    assert client.get("/getFile?id=my-file.v1").data == b"1"


@pytest.mark.parametrize("bad_id", ["../etc/passwd", "a b", "-leading", "x" * 129, "é"])
def test_unsafe_ids_are_refused(client, bad_id):
    assert_error(upload(client, b"1", "one.bin", id=bad_id), 400, "id")


def test_bad_upload_input(client):
    assert_error(client.post("/uploadFile", data={}, headers=ADMIN_HEADERS), 400, "file")
    assert_error(upload(client, b"x", "x.txt", customMetadata="{not json"), 400, "customMetadata")
    assert_error(upload(client, b"x", "x.txt", customMetadata="[1, 2]"), 400, "customMetadata")
    assert_error(upload(client, b"", "empty.txt"), 400, "empty")


def test_file_over_the_size_limit_is_413(make_app):
    client = make_app(max_file_bytes=1000).test_client()
    assert_error(upload(client, b"x" * 1001, "big.bin"), 413)


def test_non_admins_cannot_upload_read_metadata_or_remove(client):
    file_id = assert_ok(upload(client, b"secret", "s.txt"))["payload"]["id"]
    assert_error(client.post("/uploadFile", data={"file": (io.BytesIO(b"x"), "x.txt")}), 403)
    assert_error(client.get(f"/getFileMetadata?id={file_id}"), 403)
    assert_error(client.delete(f"/removeFile?id={file_id}"), 403)
    assert client.get(f"/getFile?id={file_id}").data == b"secret"


def test_missing_files_are_404(client):
    assert_error(client.get("/getFile?id=nope"), 404, "nope")
    assert_error(client.get("/getFileMetadata?id=nope", headers=ADMIN_HEADERS), 404)
    assert_error(client.delete("/removeFile?id=nope", headers=ADMIN_HEADERS), 404)
    assert_error(client.get("/getFile"), 400, "id")


def test_remove_file(client):
    file_id = assert_ok(upload(client, b"bye", "bye.txt"))["payload"]["id"]
    assert assert_ok(client.delete(f"/removeFile?id={file_id}", headers=ADMIN_HEADERS))["payload"] == {"success": True}
    assert_error(client.get(f"/getFile?id={file_id}"), 404)


def test_corrupted_file_fails_its_checksum_unless_skipped(client, app):
    from aimg_app.models import StoredFile

    file_id = assert_ok(upload(client, b"original bytes", "c.txt"))["payload"]["id"]
    with app.app_context():
        record = StoredFile.objects(id=file_id).first()
        # Corrupt the bytes behind the API's back, on the file store itself.
        app.extensions["aimg"].files.write(record.fid, b"tampered bytes", "c.txt", "text/plain")
    assert_error(client.get(f"/getFile?id={file_id}"), 409, "checksum")
    assert client.get(f"/getFile?id={file_id}&skipChecksum=true").data == b"tampered bytes"


def test_images_are_resized_on_the_fly(client):
    file_id = assert_ok(upload(client, png_bytes((200, 100)), "pic.png"))["payload"]["id"]
    fit = client.get(f"/getFile?id={file_id}&width=50&height=50&mode=fit")
    assert fit.status_code == 200 and fit.mimetype == "image/png"
    assert Image.open(io.BytesIO(fit.data)).size == (50, 25)
    assert Image.open(io.BytesIO(client.get(f"/getFile?id={file_id}").data)).size == (200, 100)


def test_resize_input_is_validated(client):
    png = assert_ok(upload(client, png_bytes(), "p.png"))["payload"]["id"]
    txt = assert_ok(upload(client, b"text", "t.txt"))["payload"]["id"]
    assert_error(client.get(f"/getFile?id={txt}&width=10"), 400, "resized")
    assert_error(client.get(f"/getFile?id={png}&width=0"), 400, "width")
    assert_error(client.get(f"/getFile?id={png}&width=abc"), 400, "width")
    assert_error(client.get(f"/getFile?id={png}&width=10&mode=stretch"), 400, "mode")


@pytest.fixture()
def old_file_server():
    """A plain HTTP file server on loopback, standing in for the operator's old one."""
    files = {"legacy-1.txt": b"from the old server", "files/legacy-3.txt": b"under the prefix",
             "secret.txt": b"outside any prefix"}
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            seen.append(self.path)
            body = files.get(self.path.lstrip("/"))
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(body or b"missing")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    base_with_seen = type("Base", (str,), {"seen": seen})(base)
    yield base_with_seen
    server.shutdown()


def test_fs_falls_back_to_the_old_file_server(make_app, old_file_server):
    client = make_app(legacy_file_server_url=old_file_server).test_client()
    assert_error(client.get("/getFile?id=legacy-1.txt"), 404)
    response = client.get("/getFile?id=legacy-1.txt&fs=true")
    assert response.status_code == 200 and response.data == b"from the old server"
    assert_error(client.get("/getFile?id=legacy-2.txt&fs=true"), 404)


@pytest.mark.parametrize("file_id", ["../secret.txt", "..%2Fsecret.txt", "%2e%2e%2fsecret.txt", "a/../../secret.txt",
                                     "..\\secret.txt", "/secret.txt", "legacy-3.txt/../../secret.txt", ".."])
def test_fs_ids_cannot_leave_the_old_servers_prefix(make_app, old_file_server, file_id):
    client = make_app(legacy_file_server_url=f"{old_file_server}/files").test_client()
    assert client.get("/getFile?id=legacy-3.txt&fs=true").data == b"under the prefix"
    response = client.get("/getFile", query_string={"id": file_id, "fs": "true"})
    assert response.status_code in (400, 404), response.status_code
    assert_error(response, response.status_code)
    assert b"outside" not in response.data
    assert all(path.startswith("/files/") and ".." not in path for path in old_file_server.seen), old_file_server.seen


def _item_with_files(app, client, owner_id: str, mtype: str = "image") -> tuple[str, list[str]]:
    """A completed Item whose image (and, for a video, frame) are real stored files, named
    as the workers name them; returns (item id, file ids)."""
    from aimg_app.services import items as items_service
    from tests.library_helpers import domain_of

    with app.app_context():
        app.extensions["aimg"].connect_mongo()
        [item] = items_service.create_queued_items(user_id=owner_id, domain=domain_of(app), count=1, mtype=mtype,
                                                   params={"prompt": "p", "model_id": "m1", "steps": 1})
    main = f"{item.id}.png"
    assert_ok(upload(client, png_bytes(), main, id=main))
    frames = []
    if mtype == "video":
        frame = f"{item.id}-frame-0000.png"
        assert_ok(upload(client, png_bytes(color="blue"), frame, id=frame))
        frames = [{"frame_number": 0, "frame_count": 1, "url": f"/getFile?id={frame}", "file_id": frame}]
    with app.app_context():
        assert items_service.complete_item(item.id, url=f"/getFile?id={main}", file_id=main, width=64, height=32,
                                           seed=1, frames=frames or None)
    return item.id, [main] + [f["file_id"] for f in frames]


def _status(client, file_id: str, headers=None, **args) -> int:
    return client.get("/getFile", query_string={"id": file_id, **args}, headers=headers or {}).status_code


def test_a_deleted_items_files_are_gone(app, client):
    """The attack: keep an Item's file links and download them after the Item was deleted."""
    from tests.conftest import new_session_headers, sign_up
    from tests.library_helpers import new_folder, publish

    owner = sign_up(client)
    stranger = sign_up(client)
    image, image_files = _item_with_files(app, client, owner["user_id"])
    video, video_files = _item_with_files(app, client, owner["user_id"], mtype="video")
    folder = new_folder(client, owner, public=True)
    publish(client, owner, image, folder)
    publish(client, owner, video, folder)
    for file_id in image_files + video_files:
        assert _status(client, file_id) == 200  # public: anyone, with or without a session
        assert _status(client, file_id, width=16) == 200
    assert_ok(client.delete("/deleteItems", query_string={"imageIDs": image}, headers=owner["headers"]))
    for who in ({}, owner["headers"], stranger["headers"]):
        for file_id in image_files:
            assert _status(client, file_id, who) == 404
            assert _status(client, file_id, who, width=16) == 404
            assert _status(client, file_id, who, fs="true") == 404
    # a user deleted with their Items: every file of theirs goes too
    for file_id in video_files:
        assert _status(client, file_id) == 200
    assert_ok(client.delete("/deleteUser", query_string={"userID": owner["user_id"], "deleteItems": "true"},
                            headers={**new_session_headers(), **ADMIN_HEADERS}))
    for file_id in video_files:
        assert _status(client, file_id) == 404


def test_a_private_items_file_is_served_by_its_id_alone_as_an_img_needs(app, client):
    """getFile takes no session (the contract's): an owner's <img src> shows their private Items,
    so a living Item's file is reachable by its unguessable id; deleting the Item ends that."""
    from tests.conftest import sign_up
    from tests.library_helpers import new_folder

    owner = sign_up(client)
    item, [file_id] = _item_with_files(app, client, owner["user_id"])
    private = new_folder(client, owner)
    assert assert_ok(client.post("/addImagesToSelfFolder", json={"folderID": private, "imageIDs": [item]},
                                 headers=owner["headers"]))["payload"]
    assert _status(client, file_id) == 200  # what a browser's <img> sends: no header
    assert _status(client, file_id, width=16) == 200
    assert_ok(client.delete("/deleteItems", query_string={"imageIDs": item}, headers=owner["headers"]))
    assert _status(client, file_id) == 404
    assert _status(client, file_id, owner["headers"]) == 404
