-- +goose Up
-- Idempotency-Key records of the HTTP API, per person. status_code 0 means
-- the request is in progress.
CREATE TABLE idempotency_keys (
    person_id     TEXT    NOT NULL,
    key           TEXT    NOT NULL,
    request_hash  TEXT    NOT NULL,
    status_code   INTEGER NOT NULL DEFAULT 0,
    response_body BYTEA   NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (person_id, key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);

-- +goose Down
DROP TABLE idempotency_keys;
