// Package sqlstore is yeyak's booking store (booking.Store) on PostgreSQL,
// through github.com/jackc/pgx/v5/stdlib, and on embedded SQLite, through
// modernc.org/sqlite, with sqlx and one SQL text for both (dialect.go names
// every difference). Its schema is embedded goose migrations
// (migrations/postgres, migrations/sqlite), applied at Open.
//
// A booking is one transaction: a conditional quota decrement
// (UPDATE quotas SET booked = booked + 1 … WHERE … AND booked < capacity;
// no row changed means sold_out), the booking insert (a partial unique
// index makes a second active booking for the same person, campaign and
// dose already_booked) and the outbox rows the relay publishes, which on
// PostgreSQL also notify the channel yeyak_outbox at commit. Cancel and
// reschedule return the dose to the wave row it came from in the same way.
// Nothing is written when a call fails.
//
// On PostgreSQL the two writes of the booking path are each one statement
// (data-modifying CTEs, each fed by the one before's RETURNING): a dose
// with its event (CreateBookings of one booking), and a first dose with
// its second on the first of its dates with one left (Reserve's usual
// case). One round trip instead of five, or eight and more, and the quota
// rows are locked for the statement alone: a transaction's row lock lasts
// across its client's round trips, and under load a booking process that
// waits for a CPU between two of them holds up every booking of the same
// clinic, day and dose behind it. Everything else, and SQLite, runs the
// statements in a transaction.
//
//	db, err := sqlstore.Open(ctx, "sqlite:yeyak.db", sqlstore.Options{})
//	// or "postgres://user@host:5432/yeyak?sslmode=disable"
//	if err != nil {
//		return err
//	}
//	defer db.Close()
//	b := &booking.Booking{ID: booking.NewID(), PersonID: pid, CampaignID: "c",
//		ClinicID: "clinic-1", Date: day, Product: "pfizer", Dose: 1, Wave: 3,
//		Status: booking.StatusConfirmed}
//	ev := booking.NewEvent(booking.EventBookingConfirmed, b, nil, traceparent, time.Now())
//	err = db.CreateBookings(ctx, []*booking.Booking{b}, []booking.Event{ev})
//	switch booking.ErrorCode(err) {
//	case booking.ESOLDOUT, booking.EALREADYBOOKED: // tell the person
//	}
//
// On SQLite (WAL, foreign keys, busy timeout, BEGIN IMMEDIATE) the store
// serializes its own write transactions; "sqlite::memory:" is a private
// in-memory database for tests. On PostgreSQL the pool defaults to
// 4 × GOMAXPROCS connections and the hot-path statements are prepared.
//
// NOTIFY inside a transaction serializes committing transactions on
// PostgreSQL (a database-wide lock held through the commit's flush).
// Options.OutboxNotify = NotifyAfterCommit signals relays after commit
// instead, for about 2.4–3.5× the bookings/s on the test machine
// (BenchmarkBookPostgres runs both).
//
// Reserve books dose 1 with dose 2 (or moves them together) in one
// transaction: the fixed quota rows are taken in key order, then dose 2
// takes the first of its candidate dates whose row has a dose left, one
// conditional decrement per date, so "the nearest date with a dose" is
// decided and taken atomically. bookings.linked_id joins the two doses.
//
// ApplySupply applies a supply file in one transaction, idempotent by the
// file's digest (table supply_loads): it locks the file's clinics' quota
// rows (SELECT … FOR UPDATE on PostgreSQL, in the booking path's key
// order), computes each row's waves with booking.Redistribute, and
// refuses the whole file, listing every row and counting the active
// bookings, when one would fall below what is booked.
//
// RollOverWave moves a closed rotation wave's unbooked doses to the open
// wave and records it (table quota_rollovers) in the same transaction, so
// a wave rolls over exactly once across retries, crashes and concurrent
// runs. A dose later returned to a rolled-over wave (cancel, reschedule)
// moves on to the open wave in the transaction that returns it.
//
// SeedCampaign is the bulk path for a campaign that has no quota rows yet
// (the demo, benchmarks, a first national load): campaign, clinics and
// every quota row of its first supply in one transaction, by binary COPY
// on PostgreSQL and one prepared multi-row INSERT on SQLite, refused with
// ECONFLICT as soon as the campaign has a quota row. Later supply goes
// through ApplySupply.
//
// QuotasChangedSince feeds in-memory quota snapshots: ask again from the
// version it returns and no change is missed, even on PostgreSQL where
// versions come from a sequence and commit out of order (watermark.go).
//
// *DB also keeps the HTTP API's idempotency keys (ClaimIdempotencyKey and
// friends) and exposes DB() and Dialect() for the outbox relay, whose
// tables live in the same migrations directories (see migrations/README.md).
package sqlstore
