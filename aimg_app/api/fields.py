"""Fields shared by the chapters."""
from __future__ import annotations

from typing import Any, Callable

from marshmallow import fields, missing

from ..models.base import epoch_ms, iso

MAX_ID_CHARS = 128


class IdList(fields.Field):
    """An id list given as an array of strings or a comma-separated string (the contract says
    one in some places and the other elsewhere for the same kind of field: both are accepted)."""

    default_error_messages = {
        "invalid": "Must be an array of strings or a comma-separated string.",
        "too_long": "An entry is too long.",
    }

    def __init__(self, *args, max_chars: int | None = MAX_ID_CHARS, **kwargs):
        """``max_chars``: the longest accepted entry (None: any length)."""
        super().__init__(*args, **kwargs)
        self.max_chars = max_chars

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            parts = value.split(",")
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            parts = value
        else:
            raise self.make_error("invalid")
        ids = [p.strip() for p in parts if p.strip()]
        if self.max_chars is not None and any(len(i) > self.max_chars for i in ids):
            raise self.make_error("too_long")
        return ids

    def _serialize(self, value, attr, obj, **kwargs):
        return value


class Timestamp(fields.String):
    """A datetime as the contract's ISO 8601 string (``...T12:00:00.000Z``)."""

    def _serialize(self, value, attr, obj, **kwargs):
        return iso(value)


class EpochMs(fields.Integer):
    """A datetime as the contract's UNIX epoch in milliseconds."""

    def _serialize(self, value, attr, obj, **kwargs):
        return epoch_ms(value) if value is not None else None


_derived_classes: dict[type, type] = {}


def derived(kind: type[fields.Field], fn: Callable[[Any], Any], *args, **kwargs) -> fields.Field:
    """A field of type ``kind`` whose value is ``fn(obj)`` when written: a ``fields.Function``
    that keeps its type, both in the OpenAPI document and in what it writes (a Float
    writes ``0`` as ``0.0``)."""
    cls = _derived_classes.get(kind)
    if cls is None:
        def get_value(self, obj, attr, accessor=None, default=missing):
            return self.derive(obj)

        cls = _derived_classes[kind] = type(f"Derived{kind.__name__}", (kind,), {"get_value": get_value})
    field = cls(*args, **kwargs)
    field.derive = fn
    return field
