"""setSelfUserProfilePicture and setProfilePictureBanned (SPEC-GAPS 5, RELIABILITY 16-17)."""
from __future__ import annotations

import base64
import io
import struct
import time
import zlib

import pytest
from PIL import Image

from tests.conftest import ADMIN_HEADERS, assert_error, assert_ok, sign_up


def data_uri(fmt: str, mime: str, size=(300, 200), mode="RGB", **save) -> str:
    buf = io.BytesIO()
    Image.new(mode, size, (200, 30, 30) if mode == "RGB" else None).save(buf, fmt, **save)
    return f"data:{mime};base64," + base64.b64encode(buf.getvalue()).decode()


def set_picture(client, user, value):
    return client.post("/setSelfUserProfilePicture", json={"profilePicture": value}, headers=user["headers"])


def decoded(uri: str) -> Image.Image:
    assert uri.startswith("data:image/webp;base64,")
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))


@pytest.mark.parametrize("fmt, mime", [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("GIF", "image/gif"),
                                       ("WEBP", "image/webp"), ("BMP", "image/bmp"), ("TIFF", "image/tiff")])
def test_every_supported_format_becomes_a_128px_webp(client, user, fmt, mime):
    uri = assert_ok(set_picture(client, user, data_uri(fmt, mime)))["payload"]["profilePicture"]
    image = decoded(uri)
    assert image.format == "WEBP" and image.size == (128, 128)
    me = assert_ok(client.get("/getSelfUser?profilePicture=true", headers=user["headers"]))["payload"]
    assert me["profilePicture"] == uri


def test_empty_string_removes_the_picture(client, user):
    assert_ok(set_picture(client, user, data_uri("PNG", "image/png")))
    assert assert_ok(set_picture(client, user, ""))["payload"]["profilePicture"] == ""
    assert assert_ok(client.get("/getSelfUser?profilePicture=true", headers=user["headers"]))["payload"]["profilePicture"] == ""


def _bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height pixels."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")


def test_decompression_bombs_are_refused_fast(client, user):
    bomb = "data:image/png;base64," + base64.b64encode(_bomb_png(30000, 30000)).decode()
    started = time.monotonic()
    assert_error(set_picture(client, user, bomb), 400, "megapixels")
    assert time.monotonic() - started < 5
    assert_error(set_picture(client, user, "data:image/png;base64," + base64.b64encode(_bomb_png(8000, 6000)).decode()),
                 400, "megapixels")


@pytest.mark.parametrize("value, fragment", [
    ("not a data uri", "Data URI"),
    ("data:image/png;base64,!!!notbase64!!!", "base64"),
    ("data:image/svg+xml;base64," + base64.b64encode(b"<svg xmlns='http://www.w3.org/2000/svg'/>").decode(), "PNG, JPEG"),
    ("data:image/png;base64," + base64.b64encode(b"<html><script>alert(1)</script></html>").decode(), "png"),
    ("data:image/png;base64," + base64.b64encode(b"%PDF-1.4 fake").decode(), "png"),
    ("data:image/png;base64,", "empty"),
])
def test_bad_pictures_are_refused(client, user, value, fragment):
    assert_error(set_picture(client, user, value), 400, fragment)


def test_declared_type_must_match_the_bytes(client, user):
    jpeg_as_png = data_uri("JPEG", "image/png")
    assert_error(set_picture(client, user, jpeg_as_png), 400, "declared as image/png")


def test_truncated_image_is_refused(client, user):
    full = base64.b64decode(data_uri("PNG", "image/png", size=(400, 400)).split(",", 1)[1])
    truncated = "data:image/png;base64," + base64.b64encode(full[: len(full) // 2]).decode()
    assert_error(set_picture(client, user, truncated), 400)


def test_oversized_payload_is_refused(client, user):
    huge = "data:image/png;base64," + "A" * (15 * 1024 * 1024)
    response = set_picture(client, user, huge)
    assert response.status_code in (400, 413)
    assert response.get_json()["hasError"] is True


def test_many_frame_gif_is_refused(client, user):
    frames = [Image.new("P", (2, 2), i % 256) for i in range(1200)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], optimize=False)
    uri = "data:image/gif;base64," + base64.b64encode(buf.getvalue()).decode()
    assert_error(set_picture(client, user, uri), 400, "frames")


def test_banned_pictures(client):
    user = sign_up(client)
    assert_ok(set_picture(client, user, data_uri("PNG", "image/png")))
    read = assert_ok(client.post("/setProfilePictureBanned", json={"userID": user["user_id"]}, headers=ADMIN_HEADERS))
    assert read["payload"] == [{"userID": user["user_id"], "profilePictureBanned": False}]
    banned = assert_ok(client.post("/setProfilePictureBanned", json={"email": user["email"], "profilePictureBanned": True},
                                   headers=ADMIN_HEADERS))
    assert banned["payload"][0]["profilePictureBanned"] is True
    assert assert_ok(client.get("/getSelfUser?profilePicture=true", headers=user["headers"]))["payload"]["profilePicture"] == ""
    assert_error(set_picture(client, user, data_uri("PNG", "image/png")), 403, "banned")
    assert_ok(client.post("/setProfilePictureBanned", json={"userID": user["user_id"], "profilePictureBanned": False},
                          headers=ADMIN_HEADERS))
    assert_ok(set_picture(client, user, data_uri("PNG", "image/png")))
    assert_error(client.post("/setProfilePictureBanned", json={"userID": user["user_id"]}, headers=user["headers"]), 403)


def test_not_signed_in(client):
    from tests.conftest import new_session_headers

    assert_error(client.post("/setSelfUserProfilePicture", json={"profilePicture": ""}, headers=new_session_headers()), 401)
