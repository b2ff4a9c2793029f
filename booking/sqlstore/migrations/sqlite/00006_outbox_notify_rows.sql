-- +goose Up
-- PostgreSQL only (its outbox trigger notifies only when a statement
-- inserted rows); nothing to do on SQLite, whose relay polls.
SELECT 1;

-- +goose Down
SELECT 1;
