"""Profile pictures: a base64 Data URI in, a 128x128 WEBP on the file store out
(PNG, JPEG, GIF's first frame, WEBP, BMP or TIFF; at most 10 MB decoded and 40 megapixels).

Checks happen before any pixel is decoded: the declared type must match the bytes, the
decoded size is capped, and the pixel count is read from the header, so a tiny file that
claims 30000x30000 pixels is refused without allocating them.
"""
from __future__ import annotations

import base64
import binascii
import io
import re
import uuid
import warnings

from PIL import Image, ImageOps

from ..errors import BadRequest, Forbidden
from ..models import User
from ..models.base import utcnow
from . import abuse
from .files import store_file

Image.init()  # register every format plugin, so ``formats=`` below can name them all

MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000
MAX_FRAMES = 1000
SIZE = (128, 128)

# declared MIME type -> Pillow format names it may hold
FORMATS = {
    "image/png": {"PNG"},
    "image/jpeg": {"JPEG", "MPO"},
    "image/jpg": {"JPEG", "MPO"},
    "image/gif": {"GIF"},
    "image/webp": {"WEBP"},
    "image/bmp": {"BMP"},
    "image/x-ms-bmp": {"BMP"},
    "image/tiff": {"TIFF"},
}
OPEN_FORMATS = ["PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF"]  # MPO files open through JPEG
DATA_URI = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+)(?P<params>(?:;[\w.+-]+=[\w.+-]+)*);base64,(?P<data>.*)$", re.S)


def _decode(data_uri: str) -> tuple[str, bytes]:
    match = DATA_URI.match(data_uri.strip())
    if not match:
        raise BadRequest("profilePicture must be a base64 Data URI such as 'data:image/png;base64,...'.")
    mime = match["type"].lower()
    if mime not in FORMATS:
        raise BadRequest("profilePicture must be a PNG, JPEG, GIF, WEBP, BMP or TIFF image.")
    encoded = re.sub(r"\s+", "", match["data"])
    if len(encoded) > (MAX_BYTES * 4) // 3 + 4:
        raise BadRequest(f"profilePicture must be at most {MAX_BYTES // (1024 * 1024)} MB.")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("profilePicture is not valid base64.") from None
    if not raw:
        raise BadRequest("profilePicture is empty.")
    return mime, raw


def normalise(data_uri: str) -> bytes:
    """The WEBP 128x128 (centre crop) of the picture, or 400 naming what is wrong."""
    mime, raw = _decode(data_uri)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(raw), formats=OPEN_FORMATS)
            if image.format not in FORMATS[mime]:
                raise BadRequest(f"profilePicture is declared as {mime} but holds {image.format or 'something else'}.")
            width, height = image.size
            if width < 1 or height < 1 or width * height > MAX_PIXELS:
                raise BadRequest(f"profilePicture must be at most {MAX_PIXELS // 1_000_000} megapixels.")
            if getattr(image, "n_frames", 1) > MAX_FRAMES:
                raise BadRequest(f"profilePicture has more than {MAX_FRAMES} frames.")
            image.seek(0)  # first frame of an animation
            image.load()
            image = ImageOps.exif_transpose(image)
            image = image.convert("RGBA" if image.mode in ("RGBA", "LA", "P", "PA") else "RGB")
            fitted = ImageOps.fit(image, SIZE, method=Image.Resampling.LANCZOS, centering=(0.5, 0.5))
            out = io.BytesIO()
            fitted.save(out, "WEBP", quality=85, method=4)
            return out.getvalue()
    except BadRequest:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BadRequest(f"profilePicture must be at most {MAX_PIXELS // 1_000_000} megapixels.") from None
    except (OSError, ValueError, SyntaxError, EOFError):  # unidentifiable, truncated or corrupt
        raise BadRequest(f"profilePicture is not a readable {mime.split('/')[1].upper()} image.") from None


def to_data_uri(webp: bytes) -> str:
    return "data:image/webp;base64," + base64.b64encode(webp).decode()


def set_picture(resources, user: User, data_uri: str) -> str:
    """Replace (or with "" remove) the user's picture; returns the stored Data URI ("" when removed)."""
    if user.profile_picture_banned:
        raise Forbidden("Your profile picture has been banned: it cannot be changed.")
    if not abuse.may_change_profile(user):
        raise Forbidden("Your account may not change its profile picture.")
    old = user.profile_picture_file_id
    if data_uri == "":
        User.objects(id=user.id).update_one(set__profile_picture_file_id=None, set__updated_date=utcnow())
        user.profile_picture_file_id = None
        _forget(resources, old)
        return ""
    webp = normalise(data_uri)
    record = store_file(resources.files, data=webp, file_name=f"profile-{user.id}.webp", content_type="image/webp",
                        domain=user.domain, file_id=f"pp-{uuid.uuid4().hex}", owner_id=user.id)
    User.objects(id=user.id).update_one(set__profile_picture_file_id=record.id, set__updated_date=utcnow())
    user.profile_picture_file_id = record.id
    _forget(resources, old)
    return to_data_uri(webp)


def remove_picture(resources, user: User) -> None:
    old = user.profile_picture_file_id
    User.objects(id=user.id).update_one(set__profile_picture_file_id=None)
    user.profile_picture_file_id = None
    _forget(resources, old)


def _forget(resources, file_id: str | None) -> None:
    if not file_id:
        return
    from .files import remove_file
    from ..errors import NotFound

    try:
        remove_file(resources.files, file_id)
    except NotFound:
        pass


def picture_data_uri(resources, user: User) -> str | None:
    if not user.profile_picture_file_id:
        return None
    from ..errors import ApiError
    from .files import read_file

    try:
        return to_data_uri(read_file(resources.files, user.profile_picture_file_id).data)
    except ApiError:
        return None


def set_banned(resources, user: User, banned: bool) -> None:
    """Ban (the picture is removed) or unban a user's profile picture."""
    User.objects(id=user.id).update_one(set__profile_picture_banned=bool(banned))
    if banned:
        remove_picture(resources, user)
    user.profile_picture_banned = bool(banned)
