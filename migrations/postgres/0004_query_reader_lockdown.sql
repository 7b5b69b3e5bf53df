-- What PostgreSQL grants to PUBLIC by default and would let the pgQuery reader leave
-- something behind after a COMMIT in its text: temporary tables, large objects, and
-- procedural code (a DO block could run ALTER ROLE out of sight of the command tags).
-- Functions and languages belong to the bootstrap superuser: only a superuser may revoke
-- them. Where migrations run as another role, its provisioning must run this file as a
-- superuser (docs/decisions.md, "Security").
DO $$
BEGIN
    EXECUTE format('REVOKE TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO %I', current_database(), current_user);
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        REVOKE EXECUTE ON FUNCTION lo_creat(integer), lo_create(oid), lo_from_bytea(oid, bytea),
            lo_import(text), lo_import(text, oid) FROM PUBLIC;
        REVOKE USAGE ON LANGUAGE plpgsql FROM PUBLIC;
    ELSE
        RAISE WARNING 'not a superuser: large-object functions and plpgsql stay open to PUBLIC; run 0004_query_reader_lockdown.sql as a superuser';
    END IF;
END
$$;
