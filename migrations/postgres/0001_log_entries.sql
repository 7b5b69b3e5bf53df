-- Logs sent by front-end clients through ingestLogs.
CREATE TABLE IF NOT EXISTS log_entries (
    id            bigserial PRIMARY KEY,
    received_at   timestamptz NOT NULL DEFAULT now(),
    logged_at     timestamptz NOT NULL,
    service_name  text NOT NULL,
    level         text NOT NULL CHECK (level IN ('info', 'warn', 'error')),
    message       text NOT NULL,
    api_subscope  text,
    http_method   text,
    http_path     text,
    http_url      text,
    error_name    text,
    error_message text,
    error_stack   text,
    request_id    text NOT NULL,
    session_id    text,
    user_id       text,
    admin_name    text,
    domain        text NOT NULL
);
CREATE INDEX IF NOT EXISTS log_entries_logged_at ON log_entries (logged_at);
CREATE INDEX IF NOT EXISTS log_entries_request_id ON log_entries (request_id);
CREATE INDEX IF NOT EXISTS log_entries_service_logged_at ON log_entries (service_name, logged_at);
