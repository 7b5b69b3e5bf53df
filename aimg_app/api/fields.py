"""Fields shared by the chapters."""
from __future__ import annotations

from marshmallow import fields

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
