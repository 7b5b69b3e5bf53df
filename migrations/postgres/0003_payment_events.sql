-- The payment event ledger: every webhook/postback (and every grant the core makes) is
-- stored here before it is acted on. (processor, event_id) is unique, so a replayed or
-- duplicated delivery finds its row and changes nothing; deliveries refused for a bad
-- signature are kept too (event_id NULL: they are not the vendor's events).
CREATE TABLE IF NOT EXISTS payment_events (
    id           bigserial PRIMARY KEY,
    processor    text NOT NULL,
    event_id     text,
    event_type   text NOT NULL DEFAULT '',
    domain       text NOT NULL,
    status       text NOT NULL CHECK (status IN ('received', 'applied', 'ignored', 'rejected')),
    detail       text,
    payload      text,
    remote_addr  text,
    attempts     integer NOT NULL DEFAULT 0,
    received_at  timestamptz NOT NULL DEFAULT now(),
    processed_at timestamptz,
    UNIQUE (processor, event_id)
);
CREATE INDEX IF NOT EXISTS payment_events_received_at ON payment_events (received_at);
CREATE INDEX IF NOT EXISTS payment_events_status ON payment_events (status, received_at);
