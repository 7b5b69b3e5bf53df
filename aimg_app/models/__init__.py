"""MongoDB documents, one module per aggregate.

``all_documents()`` finds every document class of the modules of this package, so a new
model module needs no registration: its indexes are created by ``aimg migrate``.
"""
from __future__ import annotations

import importlib
import pkgutil

import mongoengine as me

from .file import StoredFile
from .session import Session
from .user import User, UserKeyValue


def all_documents() -> list[type[me.Document]]:
    """Every concrete document class defined in ``aimg_app.models.*``."""
    found: dict[str, type[me.Document]] = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for value in vars(module).values():
            if (isinstance(value, type) and issubclass(value, me.Document) and value.__module__ == module.__name__
                    and not value._meta.get("abstract")):
                found[value.__name__] = value
    return list(found.values())


__all__ = ["Session", "StoredFile", "User", "UserKeyValue", "all_documents"]
