-- +goose Up
-- Events written in the same transaction as the booking change they
-- describe; the relay publishes them in seq (commit-cursor) order.
CREATE TABLE outbox (
    seq           BIGSERIAL PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,   -- event id (UUIDv7)
    aggregate_key TEXT NOT NULL,          -- partition key: the person id
    event_type    TEXT NOT NULL,
    payload       TEXT NOT NULL,          -- JSON, byte for byte as written
    headers       TEXT NOT NULL,          -- JSON object of string to string
    created_at    TIMESTAMPTZ NOT NULL,
    published_at  TIMESTAMPTZ NULL
);
CREATE INDEX outbox_unpublished_idx ON outbox (seq) WHERE published_at IS NULL;

-- Relays LISTEN on yeyak_outbox; the notification is delivered when the
-- inserting transaction commits (and folded to one per transaction).
-- +goose StatementBegin
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('yeyak_outbox', '');
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();

-- +goose Down
DROP TRIGGER outbox_notify ON outbox;
DROP FUNCTION outbox_notify();
DROP TABLE outbox;
