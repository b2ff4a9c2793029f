-- +goose Up
-- Events written in the same transaction as the booking change they
-- describe; the relay publishes them in seq (commit-cursor) order.
CREATE TABLE outbox (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT NOT NULL UNIQUE,   -- event id (UUIDv7)
    aggregate_key TEXT NOT NULL,          -- partition key: the person id
    event_type    TEXT NOT NULL,
    payload       TEXT NOT NULL,          -- JSON
    headers       TEXT NOT NULL,          -- JSON object of string to string
    created_at    TEXT NOT NULL,          -- RFC 3339 UTC (sqlstore.SQLiteTimeLayout)
    published_at  TEXT NULL
);
CREATE INDEX outbox_unpublished_idx ON outbox (seq) WHERE published_at IS NULL;

-- +goose Down
DROP TABLE outbox;
