-- +goose Up
-- outbox.Consumer: the ids of events already applied (idempotency), and the
-- events it could not apply and sent to the dead-letter topic.
CREATE TABLE inbox (
    event_id     TEXT PRIMARY KEY,
    processed_at TEXT NOT NULL            -- RFC 3339 UTC, fixed 9-digit fraction
);
CREATE INDEX inbox_processed_at_idx ON inbox (processed_at);

CREATE TABLE dead_letters (
    id           TEXT PRIMARY KEY,        -- UUIDv7
    topic        TEXT    NOT NULL,        -- where the message was consumed from
    partition_no INTEGER NOT NULL,
    offset_no    INTEGER NOT NULL,
    msg_key      TEXT    NOT NULL,        -- the Kafka key (person id): ops API never shows it
    payload      BLOB    NOT NULL,        -- the message value, byte for byte
    headers      TEXT    NOT NULL,        -- JSON object of string to string
    error        TEXT    NOT NULL,
    created_at   TEXT    NOT NULL,
    retried_at   TEXT    NULL,
    CONSTRAINT dead_letters_message_once UNIQUE (topic, partition_no, offset_no)
);
CREATE INDEX dead_letters_created_idx ON dead_letters (created_at);

-- +goose Down
DROP TABLE dead_letters;
DROP TABLE inbox;
