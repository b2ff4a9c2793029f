-- +goose Up
-- Nothing on SQLite (no LISTEN/NOTIFY). This file keeps the version
-- numbers of both dialects aligned.
SELECT 1;

-- +goose Down
SELECT 1;
