"""Fields shared by the library chapters."""
from __future__ import annotations

from marshmallow import fields

MAX_ID_CHARS = 128


class IdList(fields.Field):
    """SPEC-GAPS 17: an id list given as an array of strings or a comma-separated string."""

    default_error_messages = {
        "invalid": "Must be an array of strings or a comma-separated string.",
        "too_long": "An id is at most 128 characters.",
    }

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            parts = value.split(",")
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            parts = value
        else:
            raise self.make_error("invalid")
        ids = [p.strip() for p in parts if p.strip()]
        if any(len(i) > MAX_ID_CHARS for i in ids):
            raise self.make_error("too_long")
        return ids

    def _serialize(self, value, attr, obj, **kwargs):
        return value
