-- +goose Up
-- A dose 1 and the dose 2 reserved with it name each other, so cancelling
-- or rescheduling dose 1 carries dose 2 along ('' for a booking made alone).
ALTER TABLE bookings ADD COLUMN linked_id TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE bookings DROP COLUMN linked_id;
