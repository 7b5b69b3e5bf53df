"""Front-end log ingestion into PostgreSQL's ``log_entries``."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Iterable

from psycopg_pool import ConnectionPool


@dataclass(frozen=True)
class LogOrigin:
    """Who sent the logs: recorded with every entry."""

    request_id: str
    domain: str
    session_id: str | None = None
    user_id: str | None = None
    admin_name: str | None = None


_COLUMNS = (
    "logged_at", "service_name", "level", "message", "api_subscope", "http_method", "http_path", "http_url",
    "error_name", "error_message", "error_stack", "request_id", "session_id", "user_id", "admin_name", "domain",
)


def _text(value):
    """PostgreSQL text cannot hold NUL: keep the rest of a client's string, mark where it was."""
    return value.replace("\x00", "\ufffd") if isinstance(value, str) else value


def ingest_logs(pool: ConnectionPool, service_name: str, entries: Iterable[dict[str, Any]], origin: LogOrigin) -> int:
    """Insert every entry in one transaction: all of them are stored, or none."""
    now_ms = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    rows = []
    for entry in entries:
        ts = entry.get("timestamp")
        logged_at = dt.datetime.fromtimestamp((ts if ts is not None else now_ms) / 1000, dt.UTC)
        rows.append(tuple(_text(v) for v in (
            logged_at, service_name, entry.get("level") or "info", entry["message"], entry.get("apiSubscope"),
            entry.get("httpMethod"), entry.get("httpPath"), entry.get("httpUrl"), entry.get("errorName"),
            entry.get("errorMessage"), entry.get("errorStack"), origin.request_id, origin.session_id,
            origin.user_id, origin.admin_name, origin.domain,
        )))
    placeholders = ", ".join(["%s"] * len(_COLUMNS))
    with pool.connection() as conn, conn.cursor() as cur:
        cur.executemany(f"INSERT INTO log_entries ({', '.join(_COLUMNS)}) VALUES ({placeholders})", rows)
    return len(rows)
