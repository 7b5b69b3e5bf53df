"""MongoDB documents, one module per aggregate. ``all_documents()`` lists them for index creation."""
from __future__ import annotations

from .file import StoredFile
from .session import Session


def all_documents() -> list[type]:
    """Every document class whose indexes the migration creates."""
    return [Session, StoredFile]


__all__ = ["Session", "StoredFile", "all_documents"]
