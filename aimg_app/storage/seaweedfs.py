"""A small client of SeaweedFS's master/volume HTTP API.

Master: ``/dir/assign`` hands out a file id (fid) and the volume server that takes it;
``/dir/lookup`` says where a volume lives. Volume servers store and serve the bytes, and
resize png/jpg/jpeg/gif on the fly (``/<fid>.<ext>?width=&height=&mode=``) — which is why
we talk to volumes directly rather than through a filer path.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry


class StorageError(Exception):
    """The file store failed (down, full, or answered something unexpected)."""


class StoredBlobMissing(StorageError):
    """The file store has no bytes for a fid."""


@dataclass(frozen=True)
class Blob:
    data: bytes
    content_type: str | None


class SeaweedStore:
    def __init__(self, master_url: str, timeout: float = 30.0, retries: int = 3):
        self.master_url = master_url.rstrip("/")
        self.timeout = timeout
        self._http = requests.Session()
        # Transient faults (connection refused, 5xx) are retried with backoff, including
        # POST/PUT/DELETE: an upload to a fid is idempotent (same fid, same bytes).
        retry = Retry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            backoff_factor=0.2,
            status_forcelist=(500, 502, 503, 504),
            allowed_methods=frozenset({"GET", "POST", "PUT", "DELETE", "HEAD"}),
            raise_on_status=False,
        )
        self._http.mount("http://", HTTPAdapter(max_retries=retry))
        self._http.mount("https://", HTTPAdapter(max_retries=retry))
        self._volumes: dict[str, tuple[str, float]] = {}  # volume id -> (url, looked up at)
        self._lock = threading.Lock()

    # -- locations -----------------------------------------------------------------------
    def _assign(self) -> tuple[str, str]:
        resp = self._http.get(f"{self.master_url}/dir/assign", timeout=self.timeout)
        body = resp.json() if resp.headers.get("content-type", "").startswith("application/json") else {}
        if resp.status_code != 200 or "fid" not in body:
            raise StorageError(f"file store refused an assignment: {body.get('error') or resp.status_code}")
        return body["fid"], body["url"]

    def _volume_url(self, fid: str, refresh: bool = False) -> str:
        volume_id = fid.split(",", 1)[0]
        with self._lock:
            cached = self._volumes.get(volume_id)
        if cached and not refresh and time.monotonic() - cached[1] < 60:
            return cached[0]
        resp = self._http.get(f"{self.master_url}/dir/lookup", params={"volumeId": volume_id}, timeout=self.timeout)
        body = resp.json() if resp.status_code == 200 else {}
        locations = body.get("locations") or []
        if not locations:
            raise StoredBlobMissing(f"volume {volume_id} is not known to the file store")
        url = locations[0]["url"]
        with self._lock:
            self._volumes[volume_id] = (url, time.monotonic())
        return url

    # -- bytes ---------------------------------------------------------------------------
    def put(self, data: bytes, file_name: str, content_type: str) -> str:
        """Store ``data``; returns its fid."""
        fid, url = self._assign()
        self.write(fid, data, file_name, content_type, volume_url=url)
        return fid

    def write(self, fid: str, data: bytes, file_name: str, content_type: str, volume_url: str | None = None) -> None:
        """(Over)write the bytes of an existing fid."""
        url = volume_url or self._volume_url(fid)
        resp = self._http.post(
            f"http://{url}/{fid}", files={"file": (file_name, data, content_type)}, timeout=self.timeout
        )
        if resp.status_code not in (200, 201):
            raise StorageError(f"file store refused the upload ({resp.status_code})")

    def get(self, fid: str, *, ext: str | None = None, width: int | None = None, height: int | None = None,
            mode: str | None = None) -> Blob:
        params = {k: v for k, v in (("width", width), ("height", height), ("mode", mode)) if v is not None}
        path = f"{fid}.{ext}" if ext and params else fid
        resp = self._http.get(f"http://{self._volume_url(fid)}/{path}", params=params, timeout=self.timeout)
        if resp.status_code == 404:
            raise StoredBlobMissing(f"no bytes stored for {fid}")
        if resp.status_code != 200:
            raise StorageError(f"file store answered {resp.status_code}")
        return Blob(resp.content, resp.headers.get("content-type"))

    def delete(self, fid: str) -> None:
        try:
            url = self._volume_url(fid)
        except StoredBlobMissing:
            return
        resp = self._http.delete(f"http://{url}/{fid}", timeout=self.timeout)
        if resp.status_code not in (200, 202, 204, 404):
            raise StorageError(f"file store refused the deletion ({resp.status_code})")

    def ping(self) -> bool:
        try:
            return self._http.get(f"{self.master_url}/cluster/status", timeout=2).status_code == 200
        except requests.RequestException:
            return False
