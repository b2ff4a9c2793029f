-- +goose Up
-- Nothing on PostgreSQL: versions come from quota_version_seq. This file
-- keeps the version numbers of both dialects aligned.
SELECT 1;

-- +goose Down
SELECT 1;
