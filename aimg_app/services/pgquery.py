"""Admin SQL (``pgQuery``), answered in the shape of node-postgres' ``Result``.

Safety comes from the database, not from reading the SQL: the pool logs in as a role that
can only SELECT the application's tables, and may not create large objects, temporary
tables or procedural code (migration 0004). A timer cancels any statement still running
after the timeout (a ``SET statement_timeout = 0`` in the query cannot lift it). A single
query is read through a server-side cursor, so only ``max_rows + 1`` rows ever leave the
server; a text of several statements runs as node-postgres runs it (simple protocol) and
each result is capped. The one thing a role may change about itself whatever its
privileges (its own settings and password, after a ``COMMIT`` in the text) is put back
after every call, and every connection is reset with ``DISCARD ALL`` before it goes back
to the pool.
"""
from __future__ import annotations

import base64
import datetime as dt
import decimal
import hashlib
import hmac
import ipaddress
import logging
import os
import threading
import uuid
from typing import Any

import psycopg
import psycopg.conninfo
import psycopg.sql
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from ..errors import BadRequest, RequestTimeout

log = logging.getLogger("aimg.pgquery")

MAX_QUERY_CHARS = 100_000
MAX_PARAMS = 1000


def _reset(conn: psycopg.Connection) -> None:
    conn.rollback()
    conn.autocommit = True
    try:
        conn.execute("DISCARD ALL")
    finally:
        conn.autocommit = False


# The reader role's own settings, as migration 0002 sets them and start-up restores them.
READER_ROLE_SETTINGS = {
    "default_transaction_read_only": "on",
    "statement_timeout": "10s",
    "idle_in_transaction_session_timeout": "30s",
}


def scram_verifier(password: str, iterations: int = 4096) -> str:
    """PostgreSQL's SCRAM-SHA-256 verifier of ``password`` (RFC 5802/7677): what ``ALTER
    ROLE ... PASSWORD`` stores, so the clear password never travels in a statement."""
    salt = os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = lambda raw: base64.b64encode(raw).decode()  # noqa: E731
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def _configure(conn: psycopg.Connection) -> None:
    conn.server_cursor_factory = psycopg.RawServerCursor


def make_query_pool(dsn: str, timeout_s: float) -> ConnectionPool:
    pool = ConnectionPool(
        dsn,
        min_size=0,
        max_size=4,
        configure=_configure,
        reset=_reset,
        open=False,
        timeout=timeout_s,
        kwargs={"application_name": "aimg-pgquery", "cursor_factory": psycopg.RawCursor},
    )
    password = psycopg.conninfo.conninfo_to_dict(dsn).get("password")
    pool.aimg_reader_verifier = scram_verifier(password) if password else None
    return pool


def restore_reader_role(conn: psycopg.Connection, verifier: str | None) -> None:
    """Put back what the reader may change about itself: its settings, its password.

    Runs on the reader's own connection (a role may always alter its own settings and
    password, which no privilege can forbid) after every call, so an ``ALTER ROLE`` after a
    ``COMMIT`` in the text is undone before anything else uses the role.
    """
    conn.rollback()
    conn.autocommit = True
    try:
        conn.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE")
        expected = sorted(f"{k}={v}" for k, v in READER_ROLE_SETTINGS.items())
        rows = conn.execute(
            "SELECT d.datname, s.setconfig FROM pg_db_role_setting s LEFT JOIN pg_database d ON d.oid = s.setdatabase"
            " WHERE s.setrole = (SELECT oid FROM pg_roles WHERE rolname = current_user)").fetchall()
        current = {(db, tuple(sorted(config or []))) for db, config in rows}
        if current != {(None, tuple(expected))}:
            conn.execute("ALTER ROLE CURRENT_USER RESET ALL")
            for db, _config in rows:
                if db is not None:
                    conn.execute(psycopg.sql.SQL("ALTER ROLE CURRENT_USER IN DATABASE {} RESET ALL").format(
                        psycopg.sql.Identifier(db)))
            for name, value in READER_ROLE_SETTINGS.items():
                conn.execute(psycopg.sql.SQL("ALTER ROLE CURRENT_USER SET {} = {}").format(
                    psycopg.sql.Identifier(name), psycopg.sql.Literal(value)))
        if verifier:
            conn.execute(psycopg.sql.SQL("ALTER ROLE CURRENT_USER PASSWORD {}").format(psycopg.sql.Literal(verifier)))
    finally:
        conn.autocommit = False


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


def _result(cur: psycopg.Cursor, max_rows: int, command: str | None = None) -> dict[str, Any]:
    command = command or (cur.statusmessage or "").split(" ")[0] or None
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


def run_query(pool: ConnectionPool, text: str, params: list | None, *, timeout_s: float, max_rows: int,
              restore: bool = True) -> Any:
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
            results = _streamed(conn, text, params, max_rows)
            if results is None:
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
            if restore:
                try:
                    restore_reader_role(conn, getattr(pool, "aimg_reader_verifier", None))
                except psycopg.Error as exc:  # a dead connection: start-up restores the role's settings
                    log.warning("could not restore the pgQuery role", extra={"error": str(exc)[:200]})
        conn.rollback()  # nothing a query did survives it, whatever role runs it...
        return results[0] if len(results) == 1 else results


def _streamed(conn: psycopg.Connection, text: str, params: list | None, max_rows: int) -> list | None:
    """One query read through a server-side cursor (``DECLARE``), fetching ``max_rows + 1``
    rows; None when the text is not one query a cursor can hold (several statements, a
    command), which then runs as node-postgres would run it."""
    conn.execute("SAVEPOINT aimg_pgquery")
    try:
        with conn.cursor(name="aimg_pgquery") as cur:
            cur.execute(text, [_param(p) for p in params] if params else None)
            return [_result(cur, max_rows, command="SELECT")]
    except psycopg.errors.SyntaxError:  # not a SELECT/VALUES, or more than one statement
        conn.execute("ROLLBACK TO SAVEPOINT aimg_pgquery")
        return None


def run_write_query(pool: ConnectionPool, text: str, params: list | None, *, timeout_s: float, max_rows: int) -> Any:
    """Same as ``run_query`` but commits (only used with the operator's write role)."""
    with pool.connection() as conn:
        conn.autocommit = True
        try:
            return run_query(_SingleConnection(conn), text, params, timeout_s=timeout_s, max_rows=max_rows,
                             restore=False)
        finally:
            conn.autocommit = False


class _SingleConnection:
    """Adapts one checked-out connection to the ``pool.connection()`` interface."""

    def __init__(self, conn: psycopg.Connection):
        self._conn = conn

    def connection(self):
        import contextlib

        return contextlib.nullcontext(self._conn)
