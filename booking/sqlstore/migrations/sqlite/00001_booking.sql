-- +goose Up
CREATE TABLE campaigns (
    id         TEXT PRIMARY KEY,
    body       TEXT NOT NULL,           -- booking.Campaign as JSON
    updated_at TEXT NOT NULL
);

CREATE TABLE clinics (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    region     TEXT NOT NULL DEFAULT '',
    lat        REAL NOT NULL DEFAULT 0,
    lon        REAL NOT NULL DEFAULT 0,
    products   TEXT NOT NULL DEFAULT '[]',
    updated_at TEXT NOT NULL
);
CREATE INDEX clinics_region_idx ON clinics (region);

-- version: max(version)+1 inside the (serialized) write transaction.
CREATE TABLE quotas (
    campaign_id TEXT    NOT NULL,
    clinic_id   TEXT    NOT NULL,
    vdate       TEXT    NOT NULL,     -- YYYY-MM-DD
    product     TEXT    NOT NULL,
    dose        INTEGER NOT NULL,
    wave        INTEGER NOT NULL,
    capacity    INTEGER NOT NULL,
    booked      INTEGER NOT NULL DEFAULT 0,
    version     INTEGER NOT NULL,
    PRIMARY KEY (campaign_id, clinic_id, vdate, product, dose, wave),
    CONSTRAINT quotas_booked_within_capacity CHECK (booked <= capacity AND booked >= 0)
);
CREATE INDEX quotas_campaign_version_idx ON quotas (campaign_id, version);

CREATE TABLE bookings (
    id            TEXT PRIMARY KEY,
    person_id     TEXT    NOT NULL,
    campaign_id   TEXT    NOT NULL,
    clinic_id     TEXT    NOT NULL,
    vdate         TEXT    NOT NULL,   -- YYYY-MM-DD
    product       TEXT    NOT NULL,
    dose          INTEGER NOT NULL,
    wave          INTEGER NOT NULL,
    status        TEXT    NOT NULL CHECK (status IN ('confirmed', 'provisional', 'cancelled')),
    cancel_reason TEXT    NOT NULL DEFAULT '',
    created_at    TEXT    NOT NULL,   -- sqlstore.SQLiteTimeLayout
    updated_at    TEXT    NOT NULL
);
-- Invariant 2: at most one active booking per person, campaign and dose.
CREATE UNIQUE INDEX bookings_one_active_per_dose
    ON bookings (person_id, campaign_id, dose) WHERE status <> 'cancelled';
CREATE INDEX bookings_person_idx ON bookings (person_id, created_at DESC);

-- +goose Down
DROP TABLE bookings;
DROP TABLE quotas;
DROP TABLE clinics;
DROP TABLE campaigns;
