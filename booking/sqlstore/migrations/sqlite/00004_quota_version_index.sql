-- +goose Up
-- The next quota version is MAX(version) + 1 (dialect.go): an index makes
-- it a lookup instead of a scan of the table.
CREATE INDEX quotas_version_idx ON quotas (version);

-- +goose Down
DROP INDEX quotas_version_idx;
