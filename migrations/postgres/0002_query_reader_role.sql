-- pgQuery runs as this role. It may read the application's tables and nothing else:
-- no writes, no sequences, no functions that signal other backends. Privileges, not
-- text parsing, are what refuse a write (a READ ONLY transaction is escapable with COMMIT).
-- The role is created without LOGIN here; whoever provisions the database gives it a
-- password and LOGIN (the embedded launcher does so for development and tests).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'aimg_query_reader') THEN
        CREATE ROLE aimg_query_reader NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;
    END IF;
END
$$;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO aimg_query_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO aimg_query_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO aimg_query_reader;
ALTER ROLE aimg_query_reader SET default_transaction_read_only = on;
ALTER ROLE aimg_query_reader SET statement_timeout = '10s';
ALTER ROLE aimg_query_reader SET idle_in_transaction_session_timeout = '30s';
