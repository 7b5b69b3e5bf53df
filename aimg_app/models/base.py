from __future__ import annotations

import datetime as dt


def utcnow() -> dt.datetime:
    """Naive UTC with millisecond precision: what MongoDB stores, so values round-trip equal."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def iso(value: dt.datetime | None) -> str | None:
    """ISO 8601 with a Z, for the contract's timestamps."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.isoformat(timespec="milliseconds") + "Z"


def epoch_ms(value: dt.datetime) -> int:
    return int(value.replace(tzinfo=dt.UTC).timestamp() * 1000)


def from_epoch_ms(value: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(value / 1000, dt.UTC).replace(tzinfo=None)
