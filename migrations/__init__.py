"""Ordered, idempotent migrations.

PostgreSQL: ``postgres/NNNN_name.sql`` files, applied in name order, each once, in its own
transaction, recorded in ``schema_migrations``; an advisory lock lets many processes start
at once. MongoDB: the indexes declared in the models' ``meta`` (creating an index that
exists is a no-op).
"""
from __future__ import annotations

import logging
from pathlib import Path

from psycopg_pool import ConnectionPool

log = logging.getLogger("aimg.migrations")

POSTGRES_DIR = Path(__file__).parent / "postgres"
_LOCK_KEY = 0x41494D47  # "AIMG"


def postgres_migrations() -> list[Path]:
    return sorted(POSTGRES_DIR.glob("*.sql"))


def migrate_postgres(pool: ConnectionPool) -> list[str]:
    applied: list[str] = []
    with pool.connection() as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            conn.commit()
            done = {row[0] for row in conn.execute("SELECT name FROM schema_migrations")}
            for path in postgres_migrations():
                if path.name in done:
                    continue
                with conn.transaction():
                    conn.execute(path.read_text())
                    conn.execute("INSERT INTO schema_migrations (name) VALUES (%s)", (path.name,))
                applied.append(path.name)
                log.info("applied migration %s", path.name)
            conn.commit()
            _restore_query_reader(conn)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
            conn.commit()
    return applied


def migrate_mongo() -> list[str]:
    from aimg_app.models import all_documents

    names = []
    for document in all_documents():
        document.ensure_indexes()
        names.append(document._get_collection_name())
    return names


def _restore_query_reader(conn) -> None:
    """At every start, the pgQuery reader's role settings are put back to the known ones
    (a role may change its own settings, and no privilege can forbid it)."""
    import psycopg
    from psycopg import sql

    from aimg_app.services.pgquery import READER_ROLE_SETTINGS

    role = sql.Identifier("aimg_query_reader")
    try:
        with conn.transaction():
            conn.execute(sql.SQL("ALTER ROLE {} RESET ALL").format(role))
            for (db,) in conn.execute(
                    "SELECT d.datname FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase"
                    " WHERE s.setrole = 'aimg_query_reader'::regrole").fetchall():
                conn.execute(sql.SQL("ALTER ROLE {} IN DATABASE {} RESET ALL").format(role, sql.Identifier(db)))
            for name, value in READER_ROLE_SETTINGS.items():
                conn.execute(sql.SQL("ALTER ROLE {} SET {} = {}").format(role, sql.Identifier(name), sql.Literal(value)))
    except psycopg.errors.InsufficientPrivilege:
        log.warning("cannot reset the settings of aimg_query_reader: the migrating role lacks CREATEROLE")
