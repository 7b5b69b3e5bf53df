"""Fields shared by the chapters."""
from __future__ import annotations

from typing import Any, Callable

from marshmallow import Schema, fields, missing, post_dump

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


class ResponseSchema(Schema):
    """A response object's schema. It owns the wire names and reads the service's document or
    dataclass through ``attribute``; a member that may be absent (neither required nor
    nullable) is left out when its value is None, as the contract's optional members are."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._optional = [f.data_key or name for name, f in self.dump_fields.items()
                          if not f.required and not f.allow_none]

    @post_dump
    def _drop_unset(self, data, **kwargs):
        for key in self._optional:
            if key in data and data[key] is None:
                del data[key]
        return data


class _Computed:
    def __init__(self, function, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.function = function

    def get_value(self, obj, attr, accessor=None, default=missing):
        return self.function(obj)


_computed_classes: dict[type, type] = {}


def computed(kind: type[fields.Field], function: Callable[[Any], Any], *args, **kwargs) -> fields.Field:
    """A field of type ``kind`` (so typed in the OpenAPI document and serialised as that type)
    whose value is ``function(obj)``: for a member derived from the object, or one of its methods."""
    cls = _computed_classes.get(kind)
    if cls is None:
        cls = _computed_classes[kind] = type(f"Computed{kind.__name__}", (_Computed, kind), {})
    return cls(function, *args, **kwargs)
