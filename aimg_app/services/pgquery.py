"""Admin SQL (``pgQuery``), answered in the shape of node-postgres' ``Result``.

Safety comes from the database, not from reading the SQL: the pool logs in as a role that
can only SELECT the application's tables. A timer cancels any statement still running
after the timeout (a ``SET statement_timeout = 0`` in the query cannot lift it), results
are capped at ``max_rows`` while they stream in, and every connection is reset with
``DISCARD ALL`` before it goes back to the pool.
"""
from __future__ import annotations

import datetime as dt
import decimal
import ipaddress
import threading
import uuid
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from ..errors import BadRequest, RequestTimeout

MAX_QUERY_CHARS = 100_000
MAX_PARAMS = 1000


def _reset(conn: psycopg.Connection) -> None:
    conn.rollback()
    conn.autocommit = True
    try:
        conn.execute("DISCARD ALL")
    finally:
        conn.autocommit = False


def make_query_pool(dsn: str, timeout_s: float) -> ConnectionPool:
    return ConnectionPool(
        dsn,
        min_size=0,
        max_size=4,
        reset=_reset,
        open=False,
        timeout=timeout_s,
        kwargs={"application_name": "aimg-pgquery", "cursor_factory": psycopg.RawCursor},
    )


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, decimal.Decimal):
        return str(value)  # node-postgres returns numeric as a string, precision intact
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "\\x" + bytes(value).hex()
    if isinstance(value, (uuid.UUID, ipaddress._BaseAddress, ipaddress._BaseNetwork)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    return str(value)


def _param(value: Any) -> Any:
    return Jsonb(value) if isinstance(value, dict) else value


def _result(cur: psycopg.Cursor, max_rows: int) -> dict[str, Any]:
    command = (cur.statusmessage or "").split(" ")[0] or None
    fields, rows, truncated = [], [], False
    if cur.description is not None:
        res = cur.pgresult
        for i, column in enumerate(cur.description):
            fields.append({
                "name": column.name,
                "tableID": res.ftable(i) if res is not None else 0,
                "columnID": res.ftablecol(i) if res is not None else 0,
                "dataTypeID": column.type_code,
                "dataTypeSize": res.fsize(i) if res is not None else -1,
                "dataTypeModifier": res.fmod(i) if res is not None else -1,
                "format": "text",
            })
        names = [f["name"] for f in fields]
        for record in cur.fetchmany(max_rows + 1):
            if len(rows) == max_rows:
                truncated = True
                break
            rows.append(dict(zip(names, (_json_value(v) for v in record))))
    row_count = cur.rowcount if cur.rowcount is not None and cur.rowcount >= 0 else None
    return {"command": command, "rowCount": len(rows) if cur.description is not None else row_count,
            "rows": rows, "fields": fields, "truncated": truncated}


def run_query(pool: ConnectionPool, text: str, params: list | None, *, timeout_s: float, max_rows: int) -> Any:
    """Run ``text`` (``$1``-style placeholders with ``params``); one result, or a list of
    results when the text holds several statements (as node-postgres answers)."""
    if not text or not text.strip():
        raise BadRequest("queryText must not be empty.")
    if len(text) > MAX_QUERY_CHARS:
        raise BadRequest(f"queryText must be at most {MAX_QUERY_CHARS} characters.")
    if params is not None and len(params) > MAX_PARAMS:
        raise BadRequest(f"queryParams may hold at most {MAX_PARAMS} values.")
    with pool.connection() as conn:
        cancelled = threading.Event()

        def cancel() -> None:
            cancelled.set()
            conn.cancel_safe(timeout=5)

        timer = threading.Timer(timeout_s, cancel)
        timer.start()
        try:
            with conn.cursor() as cur:
                if params:
                    cur.execute(text, [_param(p) for p in params])
                else:
                    cur.execute(text)
                results = [_result(cur, max_rows)]
                while cur.nextset():
                    results.append(_result(cur, max_rows))
        except psycopg.errors.QueryCanceled:
            conn.rollback()
            if cancelled.is_set():
                raise RequestTimeout(f"The query was cancelled after {timeout_s:g} s.") from None
            raise BadRequest("The query was cancelled by the database (statement timeout).") from None
        except psycopg.OperationalError:
            raise
        except psycopg.Error as exc:
            conn.rollback()
            detail = (exc.diag.message_primary if exc.diag else None) or str(exc).splitlines()[0]
            raise BadRequest(f"The database refused the query: {detail}") from None
        finally:
            timer.cancel()
        conn.rollback()  # nothing a query did survives it, whatever role runs it...
        return results[0] if len(results) == 1 else results


def run_write_query(pool: ConnectionPool, text: str, params: list | None, *, timeout_s: float, max_rows: int) -> Any:
    """Same as ``run_query`` but commits (only used with the operator's write role)."""
    with pool.connection() as conn:
        conn.autocommit = True
        try:
            return run_query(_SingleConnection(conn), text, params, timeout_s=timeout_s, max_rows=max_rows)
        finally:
            conn.autocommit = False


class _SingleConnection:
    """Adapts one checked-out connection to the ``pool.connection()`` interface."""

    def __init__(self, conn: psycopg.Connection):
        self._conn = conn

    def connection(self):
        import contextlib

        return contextlib.nullcontext(self._conn)
