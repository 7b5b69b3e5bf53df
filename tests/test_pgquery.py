"""pgQuery: admin SQL as a role that can only read (RELIABILITY rows 19-20)."""
from __future__ import annotations

import time

import pytest

from tests.conftest import ADMIN_HEADERS, assert_error, assert_ok


@pytest.fixture(scope="module")
def sql(make_app):
    client = make_app(pgquery_timeout_s=1.5, pgquery_max_rows=50).test_client()

    def run(text, params=None, headers=ADMIN_HEADERS):
        body = {"queryText": text}
        if params is not None:
            body["queryParams"] = params
        return client.post("/pgQuery", json=body, headers=headers)

    return run


def count_logs(sql) -> int:
    return int(assert_ok(sql("SELECT count(*) AS n FROM log_entries"))["payload"]["rows"][0]["n"])


def test_select_returns_the_pg_result_shape(sql):
    payload = assert_ok(sql("SELECT $1::int + 1 AS answer, $2::text AS word", [41, "hi"]))["payload"]
    assert payload["command"] == "SELECT" and payload["rowCount"] == 1
    assert payload["rows"] == [{"answer": 42, "word": "hi"}]
    assert [f["name"] for f in payload["fields"]] == ["answer", "word"]
    assert payload["fields"][0]["dataTypeID"] == 23  # int4


def test_several_statements_answer_a_list(sql):
    payload = assert_ok(sql("SELECT 1 AS a; SELECT 2 AS b"))["payload"]
    assert [r["rows"] for r in payload] == [[{"a": 1}], [{"b": 2}]]


@pytest.mark.parametrize("text", [
    "DELETE FROM log_entries",
    "COMMIT; DELETE FROM log_entries",
    "SET default_transaction_read_only = off; DELETE FROM log_entries",
    "COMMIT; SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE; DELETE FROM log_entries",
    "SET transaction_read_only = off; INSERT INTO log_entries (logged_at, service_name, level, message, request_id, domain) VALUES (now(), 'a/b', 'info', 'x', 'r', 'd')",
    "CREATE TABLE evil (x int)",
    "DROP TABLE log_entries",
    "SELECT nextval('log_entries_id_seq')",
    "RESET ROLE; DELETE FROM log_entries",
    "SET ROLE postgres",
])
def test_writes_are_refused_by_the_database(sql, text):
    before = count_logs(sql)
    assert_error(sql(text), 400, "refused")
    assert count_logs(sql) == before


def test_privileged_functions_are_refused(sql):
    pid = assert_ok(sql("SELECT pid FROM pg_stat_activity WHERE application_name = 'aimg' LIMIT 1"))["payload"]["rows"]
    target = pid[0]["pid"] if pid else 1
    response = sql("SELECT pg_terminate_backend($1::int)", [target])
    assert response.status_code == 400 or response.get_json()["payload"]["rows"][0]["pg_terminate_backend"] is False


@pytest.mark.parametrize("text", ["SELECT pg_sleep(600)", "SET statement_timeout = 0; SELECT pg_sleep(600)"])
def test_long_queries_are_cancelled_and_the_connection_is_clean_afterwards(sql, text):
    started = time.monotonic()
    assert_error(sql(text), 408, "cancelled")
    assert time.monotonic() - started < 10
    # The pooled connections come back clean: the role's own timeout is in force again.
    for _ in range(4):
        rows = assert_ok(sql("SHOW statement_timeout"))["payload"]["rows"]
        assert rows == [{"statement_timeout": "10s"}]


def test_huge_results_are_capped(sql):
    payload = assert_ok(sql("SELECT g FROM generate_series(1, 100000) AS g"))["payload"]
    assert len(payload["rows"]) == 50 and payload["truncated"] is True


def test_sql_errors_are_400_with_the_database_message(sql):
    assert_error(sql("SELEC 1"), 400, "syntax error")
    assert_error(sql("SELECT * FROM no_such_table"), 400, "no_such_table")


def test_admin_only_and_input_checked(sql):
    assert_error(sql("SELECT 1", headers={}), 403)
    assert_error(sql("SELECT 1", headers={"X-Administration-Key": "nope"}), 403)
    assert_error(sql(""), 400, "queryText")
    assert_error(sql("SELECT 1", params="notalist"), 400, "queryParams")


# --- nothing the reader does outlives the call -------------------------------------------------


@pytest.fixture(scope="module")
def owner(sql, make_app):
    """The application's own connection (the role that owns the tables), to look behind the reader."""
    import psycopg

    from aimg_app.config import load_settings

    app = make_app()
    dsn = app.extensions["aimg"].settings.postgres_dsn
    reader_dsn = app.extensions["aimg"].settings.pgquery_dsn
    del load_settings

    def look(text, *params):
        with psycopg.connect(dsn, autocommit=True) as conn:
            return conn.execute(text, params).fetchall()

    look.reader_dsn = reader_dsn
    return look


def _reader_settings(owner):
    rows = owner("SELECT coalesce(array_to_string(setconfig, ','), '') FROM pg_db_role_setting "
                 "WHERE setrole = 'aimg_query_reader'::regrole ORDER BY setdatabase")
    return [r[0] for r in rows]


@pytest.mark.parametrize("text", [
    "SET TRANSACTION READ WRITE; SELECT lo_from_bytea(0, 'persisted'::bytea); COMMIT",
    "COMMIT; BEGIN READ WRITE; SELECT lo_create(0); COMMIT",
    "COMMIT; BEGIN READ WRITE; SELECT lo_creat(-1); COMMIT",
])
def test_large_objects_cannot_be_created(sql, owner, text):
    before = owner("SELECT count(*) FROM pg_largeobject_metadata")[0][0]
    sql(text)
    assert owner("SELECT count(*) FROM pg_largeobject_metadata")[0][0] == before


@pytest.mark.parametrize("text", [
    "COMMIT; BEGIN READ WRITE; CREATE TEMP TABLE kept (x int); COMMIT",
    "COMMIT; BEGIN READ WRITE; DO $$ BEGIN EXECUTE 'SELECT 1'; END $$; COMMIT",
])
def test_temporary_objects_and_procedural_code_are_refused(sql, text):
    assert_error(sql(text), 400, "permission denied")


@pytest.mark.parametrize("text", [
    "COMMIT; BEGIN READ WRITE; ALTER ROLE aimg_query_reader SET work_mem = '1GB'; COMMIT",
    "SET TRANSACTION READ WRITE; ALTER ROLE CURRENT_USER SET default_transaction_read_only = off; COMMIT",
    "COMMIT; BEGIN READ WRITE; ALTER ROLE CURRENT_USER RESET ALL; COMMIT",
    "COMMIT; BEGIN READ WRITE; ALTER ROLE CURRENT_USER IN DATABASE aimg SET search_path = evil; COMMIT",
])
def test_role_settings_changed_by_the_reader_do_not_persist(sql, owner, text):
    before = _reader_settings(owner)
    assert "default_transaction_read_only=on" in ",".join(before)
    sql(text)
    assert _reader_settings(owner) == before
    assert_ok(sql("SELECT 1 AS one"))


def test_a_password_change_by_the_reader_does_not_persist(sql, owner):
    import psycopg

    sql("COMMIT; BEGIN READ WRITE; ALTER ROLE CURRENT_USER PASSWORD 'taken-over'; COMMIT")
    with psycopg.connect(owner.reader_dsn, connect_timeout=5) as conn:  # the configured password still logs in
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_an_endless_result_is_streamed_and_capped(sql):
    """Only cap + 1 rows are ever fetched: an endless query answers at once, truncated."""
    started = time.monotonic()
    payload = assert_ok(sql("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT n FROM r"))["payload"]
    assert payload["truncated"] is True and len(payload["rows"]) == 50
    assert payload["rows"][-1] == {"n": 50}
    assert time.monotonic() - started < 1.5  # well inside the 1.5 s cancellation timer
    payload = assert_ok(sql("SELECT n FROM generate_series(1, $1::int) n", [3]))["payload"]
    assert payload["rows"] == [{"n": 1}, {"n": 2}, {"n": 3}] and payload["truncated"] is False
