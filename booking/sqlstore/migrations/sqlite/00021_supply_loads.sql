-- +goose Up
-- Supply files applied, one row per campaign and file digest (SHA-256 of
-- the bytes): replaying a file finds its row and changes nothing.
CREATE TABLE supply_loads (
    campaign_id TEXT    NOT NULL,
    digest      TEXT    NOT NULL,
    applied_at  TEXT    NOT NULL,       -- sqlstore.SQLiteTimeLayout
    row_count   INTEGER NOT NULL,       -- supply rows in the file
    quota_rows  INTEGER NOT NULL,       -- quota rows inserted or changed
    doses       INTEGER NOT NULL,       -- sum of the file's doses
    PRIMARY KEY (campaign_id, digest)
);

-- Rotation waves whose unbooked doses moved to the open wave, once each;
-- written in the transaction that moves them.
CREATE TABLE quota_rollovers (
    campaign_id TEXT    NOT NULL,
    wave        INTEGER NOT NULL,
    rolled_at   TEXT    NOT NULL,       -- sqlstore.SQLiteTimeLayout
    quota_rows  INTEGER NOT NULL,       -- rows of the wave that had doses left
    doses       INTEGER NOT NULL,       -- doses moved
    PRIMARY KEY (campaign_id, wave)
);

-- +goose Down
DROP TABLE quota_rollovers;
DROP TABLE supply_loads;
