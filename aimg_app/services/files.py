"""Files on the file store, with their metadata and checksums in MongoDB."""
from __future__ import annotations

import hashlib
import json
import mimetypes
import re
import uuid
from dataclasses import dataclass
from urllib.parse import quote

import mongoengine as me
import requests

from ..errors import BadRequest, Conflict, NotFound
from ..models import StoredFile
from ..models.item import Item
from ..models.base import iso
from ..storage.seaweedfs import SeaweedStore, StoredBlobMissing

FILE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
RESIZABLE = {"png", "jpg", "jpeg", "gif"}
MAX_CUSTOM_METADATA_BYTES = 16 * 1024


def _extension(file_name: str) -> str:
    return file_name.rsplit(".", 1)[-1].lower() if "." in file_name else ""


def validate_file_id(file_id: str) -> str:
    if not FILE_ID.match(file_id or ""):
        raise BadRequest("id must be 1-128 characters of letters, digits, '.', '_' or '-', starting with a letter or digit.")
    return file_id


def parse_custom_metadata(raw: str | None) -> dict:
    if raw is None or raw == "":
        return {}
    if len(raw.encode()) > MAX_CUSTOM_METADATA_BYTES:
        raise BadRequest(f"customMetadata must be at most {MAX_CUSTOM_METADATA_BYTES} bytes.")
    try:
        value = json.loads(raw)
    except ValueError:
        raise BadRequest("customMetadata must be a JSON object string.") from None
    if not isinstance(value, dict):
        raise BadRequest("customMetadata must be a JSON object string.")
    return value


def file_metadata(record: StoredFile, base_url: str) -> dict:
    """The contract's FileMetadata."""
    body = {
        "id": record.id,
        "publicUrl": f"{base_url}/getFile?id={record.id}",
        "fileName": record.file_name,
        "contentType": record.content_type,
        "fileSize": record.file_size,
        "createdDate": iso(record.created_date),
        "checksum": record.checksum,
        "checksumAlgorithm": record.checksum_algorithm,
        "customMetadata": record.custom_metadata or {},
    }
    if record.owner_id:
        body["ownerId"] = record.owner_id
    return body


def store_file(store: SeaweedStore, *, data: bytes, file_name: str, content_type: str | None, domain: str,
               file_id: str | None = None, custom_metadata: dict | None = None, owner_id: str | None = None,
               created_by: str | None = None) -> StoredFile:
    """Put the bytes on the store, then record them; a failed record removes the bytes again."""
    file_id = validate_file_id(file_id) if file_id else uuid.uuid4().hex
    file_name = (file_name or file_id).replace("\\", "/").rsplit("/", 1)[-1][:255] or file_id
    if not content_type or content_type == "application/octet-stream":
        content_type = mimetypes.guess_type(file_name)[0] or content_type or "application/octet-stream"
    if StoredFile.objects(id=file_id).only("id").first() is not None:
        raise Conflict(f"A file with id '{file_id}' already exists.")
    fid = store.put(data, file_name, content_type)
    record = StoredFile(
        id=file_id, fid=fid, file_name=file_name, content_type=content_type, file_size=len(data),
        checksum=hashlib.sha256(data).hexdigest(), checksum_algorithm="sha256",
        custom_metadata=custom_metadata or {}, owner_id=owner_id, created_by=created_by, domain=domain,
    )
    try:
        record.save(force_insert=True)
    except me.NotUniqueError:
        store.delete(fid)
        raise Conflict(f"A file with id '{file_id}' already exists.") from None
    except Exception:
        store.delete(fid)
        raise
    return record


def get_metadata(file_id: str) -> StoredFile:
    record = StoredFile.objects(id=file_id).first()
    if record is None:
        raise NotFound(f"File '{file_id}' does not exist.")
    return record


@dataclass(frozen=True)
class FileContent:
    data: bytes
    content_type: str
    file_name: str


def read_file(store: SeaweedStore, file_id: str, *, skip_checksum: bool = False, width: int | None = None,
              height: int | None = None, mode: str | None = None, legacy_url: str = "",
              use_legacy: bool = False, max_bytes: int = 64 * 1024 * 1024) -> FileContent:
    """The bytes of a file, checksum-verified unless skipped or resized."""
    validate_file_id(file_id)  # also what keeps a legacy lookup inside the old server's prefix
    record = StoredFile.objects(id=file_id).first()
    if record is None:
        if use_legacy and legacy_url:
            return _read_legacy(legacy_url, file_id, max_bytes)
        raise NotFound(f"File '{file_id}' does not exist.")
    ext = _extension(record.file_name)
    resize = width is not None or height is not None
    if resize and ext not in RESIZABLE:
        raise BadRequest(f"Only {', '.join(sorted(RESIZABLE))} files can be resized.")
    try:
        blob = store.get(record.fid, ext=ext if resize else None, width=width, height=height,
                         mode=mode if resize else None)
    except StoredBlobMissing:
        raise NotFound(f"The bytes of file '{file_id}' are missing from the file store.") from None
    if not resize and not skip_checksum and hashlib.sha256(blob.data).hexdigest() != record.checksum:
        raise Conflict(
            f"File '{file_id}' failed its checksum check: the stored bytes are corrupted. "
            "Use skipChecksum=true to fetch them anyway."
        )
    content_type = blob.content_type if resize and blob.content_type else record.content_type
    return FileContent(blob.data, content_type, record.file_name)


# What the generation workers name an Item's outputs: "<item id>.<ext>" and
# "<item id>-frame-NNNN.<ext>" (workers/jobs.py).
_ITEM_FILE = re.compile(r"^(?P<item>.+?)(?:-frame-\d{4})?\.[A-Za-z0-9]{1,5}$")


def check_item_file(file_id: str, *, domain: str) -> None:
    """NotFound when ``file_id`` is an output of a deleted Item (or of another site's).

    An Item's files follow the Item: gone once it is deleted, for its owner too. While the
    Item lives, its file is served to whoever holds the id, as the contract's getFile takes
    no session (an ``<img src>`` must work for the owner's private Items); the id embeds
    the Item's random UUID, so it cannot be guessed, only shared.
    The Item is found by what it points at (its file, its frames) or by the name the
    workers give its outputs, so a file stored for an Item deleted before it completed is
    covered too. A file of no Item (an admin upload) is not concerned.
    """
    named = _ITEM_FILE.match(file_id)
    clauses: list[dict] = [{"file_id": file_id}, {"frames.file_id": file_id}]
    if named:
        clauses.append({"_id": named.group("item")})
    item = Item.objects(__raw__={"$or": clauses}).only("is_deleted", "domain").first()
    if item is not None and (item.is_deleted or item.domain != domain):
        raise NotFound(f"File '{file_id}' does not exist.")


def legacy_url_of(base_url: str, file_id: str) -> str:
    """``{base}/{id}``, the id validated and fully percent-encoded: no id can name a path
    outside the configured prefix (no ``/``, no ``..``, no ``%2f`` that a server would decode)."""
    return f"{base_url.rstrip('/')}/{quote(validate_file_id(file_id), safe='')}"


def _read_legacy(base_url: str, file_id: str, max_bytes: int) -> FileContent:
    try:
        # No redirects: the old server answers for its own prefix, never for another host or path.
        resp = requests.get(legacy_url_of(base_url, file_id), timeout=30, stream=True, allow_redirects=False)
    except requests.RequestException:
        raise NotFound(f"File '{file_id}' does not exist.") from None
    with resp:
        if resp.status_code != 200:
            raise NotFound(f"File '{file_id}' does not exist.")
        data = resp.raw.read(max_bytes + 1, decode_content=True)
        if len(data) > max_bytes:
            raise NotFound(f"File '{file_id}' is too large to be served from the old file server.")
        content_type = resp.headers.get("content-type") or mimetypes.guess_type(file_id)[0] or "application/octet-stream"
    return FileContent(data, content_type, file_id)


def remove_file(store: SeaweedStore, file_id: str) -> None:
    """Forget the record first: a record must never point at bytes that are gone."""
    record = StoredFile.objects(id=file_id).first()
    if record is None:
        raise NotFound(f"File '{file_id}' does not exist.")
    deleted = StoredFile.objects(id=file_id).delete()
    if deleted:
        store.delete(record.fid)
