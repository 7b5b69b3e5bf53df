"""Documents that say when they change: every write through mongoengine (a document's
``save``/``update``/``modify``/``delete``, a queryset's ``update``/``update_one``/
``modify``/``delete``) calls the listeners with the collection and the filter written
through, after the write (also when it raised: it may have happened).

Sessions and users are read on every request and kept a few seconds by each API process
(``aimg_app.identity_cache``); this is how a sign-out, a password change or a deletion in
one process reaches the others at once. Writes that bypass mongoengine (raw pymongo) are
not seen: there are none for these collections outside the migrations, which run before
the API serves.
"""
from __future__ import annotations

from typing import Callable

import mongoengine as me
from mongoengine.queryset import QuerySet

# (collection name, the filter of the write: {"_id": ...}, {"user_id": ...}, or wider)
Listener = Callable[[str, dict], None]
_listeners: list[Listener] = []


def on_change(listener: Listener) -> None:
    if listener not in _listeners:
        _listeners.append(listener)


def _notify(document: type[me.Document], query: dict) -> None:
    name = document._get_collection_name()
    for listener in _listeners:
        listener(name, query)


class NotifyingQuerySet(QuerySet):
    def update(self, *args, **kwargs):
        try:
            return super().update(*args, **kwargs)
        finally:
            _notify(self._document, self._query)

    def modify(self, *args, **kwargs):
        try:
            return super().modify(*args, **kwargs)
        finally:
            _notify(self._document, self._query)

    def delete(self, *args, **kwargs):
        try:
            return super().delete(*args, **kwargs)
        finally:
            _notify(self._document, self._query)


class Watched(me.Document):
    """A document whose writes are announced (``on_change``)."""

    meta = {"abstract": True, "queryset_class": NotifyingQuerySet}

    def save(self, *args, **kwargs):
        try:
            return super().save(*args, **kwargs)
        finally:
            if self.pk is not None:
                _notify(type(self), {"_id": self.pk})
