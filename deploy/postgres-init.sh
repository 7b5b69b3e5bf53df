#!/bin/sh
# First start of the database: the login role pgQuery reads through. The migrations
# (0002_query_reader_role.sql) give it its read-only privileges.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
CREATE ROLE aimg_query_reader LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT PASSWORD '${PGQUERY_PASSWORD}';
SQL
