package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/yeyak/yeyak/booking"
)

// SQL is written once with "?" placeholders; newQueries rebinds it and
// fills in the dialect's fragments.
const (
	sqlQuotaKey = `campaign_id = ? AND clinic_id = ? AND vdate = ? AND product = ? AND dose = ? AND wave = ?`

	// sqlTake is the conditional decrement of the booking path: it changes
	// nothing (0 rows) when fewer than n doses are left or the row does
	// not exist.
	sqlTake = `UPDATE quotas SET booked = booked + ?, version = {{nextVersion}}
		WHERE ` + sqlQuotaKey + ` AND booked + ? <= capacity`
	sqlRelease = `UPDATE quotas SET booked = booked - ?, version = {{nextVersion}}
		WHERE ` + sqlQuotaKey + ` AND booked >= ?`

	sqlInsertBooking = `INSERT INTO bookings
		(id, person_id, campaign_id, clinic_id, vdate, product, dose, wave, status, cancel_reason, created_at, updated_at, linked_id)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	sqlInsertOutbox = `INSERT INTO outbox (id, aggregate_key, event_type, payload, headers, created_at)
		VALUES (?, ?, ?, ?, ?, ?)`

	// sqlTakeOnePostgres is sqlTake of one dose on PostgreSQL, its quota
	// key in $1–$6, for the one-statement writes below.
	sqlTakeOnePostgres = `UPDATE quotas SET booked = booked + 1, version = nextval('quota_version_seq')
		WHERE campaign_id = $1 AND clinic_id = $2 AND vdate = $3 AND product = $4 AND dose = $5 AND wave = $6
			AND booked + 1 <= capacity`

	// sqlBookOnePostgres is the booking path on PostgreSQL in one
	// statement (DB.bookOne): sqlTake, sqlInsertBooking and
	// sqlInsertOutbox as data-modifying CTEs, each fed by the one
	// before's RETURNING, so the booking is written only when the dose
	// was taken and the event only with the booking; a constraint error
	// in either insert undoes the whole statement. It is its own
	// transaction. The first column is the doses taken (0: sold out), the
	// second the events written. (SQLite has no data-modifying CTEs and
	// runs the three in a transaction.)
	sqlBookOnePostgres = `WITH take AS (
		` + sqlTakeOnePostgres + `
		RETURNING 1
	), ins AS (
		INSERT INTO bookings (` + sqlBookingColumns + `)
		SELECT $7::text, $8::text, $1::text, $2::text, $3::date, $4::text, $5::integer, $6::integer,
			$9::text, $10::text, $11::timestamptz, $12::timestamptz, $13::text FROM take
		RETURNING 1
	), ev AS (
		INSERT INTO outbox (id, aggregate_key, event_type, payload, headers, created_at)
		SELECT $14::text, $15::text, $16::text, $17::text, $18::text, $19::timestamptz FROM ins
		RETURNING 1
	)
	SELECT (SELECT count(*) FROM take), (SELECT count(*) FROM ev)`

	// sqlReservePairPostgres is a first dose and its second in one
	// statement (DB.reservePair). cand is the first of the dates $7 whose
	// second-dose row (clinic $8; product, dose, wave $9–$11) has a dose
	// left in the statement's snapshot; d1 takes the first dose ($1–$6:
	// its quota key) only if there is one, so a second dose run out locks
	// nothing; d2 takes cand's; b inserts both bookings ($12–$18 the
	// first's id, person, status, cancel reason, created, updated, linked
	// id; $19–$25 the second's, its date the chosen one); ev inserts the
	// events built for the chosen date (arrays $26–$32: the date's
	// ordinal, id, key, type, payload, headers, created at). If d1 took a
	// dose and d2 none (cand's last dose went to a booking that committed
	// while this statement waited for the row), the division by zero
	// undoes the statement: error 22012, nothing written. (Data-modifying
	// CTEs run to completion whether or not the query reads them.) The
	// columns: first doses taken, the second's date ordinal, whether a
	// second dose was left, whether a first dose was left (the last two as
	// the snapshot saw them, for the refusal).
	sqlReservePairPostgres = `WITH cand AS (
		SELECT x.vdate, x.ord FROM unnest($7::date[]) WITH ORDINALITY AS x(vdate, ord)
		JOIN quotas q ON q.campaign_id = $1 AND q.clinic_id = $8 AND q.vdate = x.vdate
			AND q.product = $9 AND q.dose = $10 AND q.wave = $11
		WHERE q.booked + 1 <= q.capacity
		ORDER BY x.ord LIMIT 1
	), d1 AS (
		` + sqlTakeOnePostgres + ` AND EXISTS (SELECT 1 FROM cand)
		RETURNING 1
	), d2 AS (
		UPDATE quotas q SET booked = q.booked + 1, version = nextval('quota_version_seq')
		FROM cand
		WHERE q.campaign_id = $1 AND q.clinic_id = $8 AND q.vdate = cand.vdate
			AND q.product = $9 AND q.dose = $10 AND q.wave = $11 AND q.booked + 1 <= q.capacity
			AND EXISTS (SELECT 1 FROM d1)
		RETURNING cand.vdate, cand.ord::integer AS ord
	), b AS (
		INSERT INTO bookings (` + sqlBookingColumns + `)
		SELECT $12::text, $13::text, $1::text, $2::text, $3::date, $4::text, $5::integer, $6::integer,
			$14::text, $15::text, $16::timestamptz, $17::timestamptz, $18::text FROM d2
		UNION ALL
		SELECT $19::text, $20::text, $1::text, $8::text, d2.vdate, $9::text, $10::integer, $11::integer,
			$21::text, $22::text, $23::timestamptz, $24::timestamptz, $25::text FROM d2
		RETURNING 1
	), ev AS (
		INSERT INTO outbox (id, aggregate_key, event_type, payload, headers, created_at)
		SELECT e.id, e.k, e.t, e.p, e.h, e.c
		FROM unnest($26::integer[], $27::text[], $28::text[], $29::text[], $30::text[], $31::text[], $32::timestamptz[])
			AS e(ord, id, k, t, p, h, c)
		JOIN d2 ON e.ord = d2.ord
		RETURNING 1
	)
	SELECT (SELECT count(*) FROM d1), (SELECT ord FROM d2), EXISTS (SELECT 1 FROM cand),
		EXISTS (SELECT 1 FROM quotas WHERE campaign_id = $1 AND clinic_id = $2 AND vdate = $3 AND product = $4
			AND dose = $5 AND wave = $6 AND booked + 1 <= capacity)
	WHERE CASE WHEN (SELECT count(*) FROM d1) = 1 THEN 1 / (SELECT count(*)::integer FROM d2) ELSE 1 END = 1`

	sqlBookingColumns = `id, person_id, campaign_id, clinic_id, vdate, product, dose, wave, status, cancel_reason, created_at, updated_at, linked_id`
	sqlBookingByID    = `SELECT ` + sqlBookingColumns + ` FROM bookings WHERE id = ?`
	sqlBookingOfOwner = `SELECT ` + sqlBookingColumns + ` FROM bookings WHERE id = ? AND person_id = ?`
	sqlBookingsOf     = `SELECT ` + sqlBookingColumns + ` FROM bookings WHERE person_id = ? ORDER BY created_at DESC, id DESC`
	// sqlBookingWhereUnchanged guards an update with what the transaction
	// read, so a concurrent change makes it touch 0 rows (and retry).
	sqlBookingWhereUnchanged = ` WHERE id = ? AND status = ? AND clinic_id = ? AND vdate = ? AND product = ? AND wave = ?`
	sqlCancelBooking         = `UPDATE bookings SET status = 'cancelled', cancel_reason = ?, updated_at = ?` + sqlBookingWhereUnchanged
	sqlMoveBooking           = `UPDATE bookings SET clinic_id = ?, vdate = ?, product = ?, wave = ?, status = ?, updated_at = ?` + sqlBookingWhereUnchanged
	sqlSetStatus             = `UPDATE bookings SET status = ?, cancel_reason = ?, updated_at = ?` + sqlBookingWhereUnchanged

	sqlPutCampaign = `INSERT INTO campaigns (id, body, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at`
	sqlCampaign  = `SELECT body FROM campaigns WHERE id = ?`
	sqlCampaigns = `SELECT body FROM campaigns ORDER BY id`

	// sqlPutClinics and sqlSetQuotas are bulk statements: {{values}} is
	// replaced by one "(?, …)" group per row (see bulkValues).
	sqlPutClinics = `INSERT INTO clinics (id, name, region, lat, lon, products, updated_at) VALUES {{values}}
		ON CONFLICT (id) DO UPDATE SET name = excluded.name, region = excluded.region, lat = excluded.lat,
			lon = excluded.lon, products = excluded.products, updated_at = excluded.updated_at`
	sqlClinicRow     = `(?, ?, ?, ?, ?, ?, ?)`
	sqlClinicColumns = `id, name, region, lat, lon, products`
	sqlClinic        = `SELECT ` + sqlClinicColumns + ` FROM clinics WHERE id = ?`
	sqlClinics       = `SELECT ` + sqlClinicColumns + ` FROM clinics ORDER BY id`

	// sqlSetQuotas inserts rows or changes their capacity; the WHERE makes
	// it skip (not count) a row whose new capacity is below what is booked.
	sqlSetQuotas = `INSERT INTO quotas (campaign_id, clinic_id, vdate, product, dose, wave, capacity, booked, version)
		VALUES {{values}}
		ON CONFLICT (campaign_id, clinic_id, vdate, product, dose, wave) DO UPDATE
		SET capacity = excluded.capacity, version = {{nextVersion}}
		WHERE quotas.booked <= excluded.capacity`
	sqlQuotaRow        = `(?, ?, ?, ?, ?, ?, ?, 0, {{nextVersion}})`
	sqlQuotaColumns    = `campaign_id, clinic_id, vdate, product, dose, wave, capacity, booked, version`
	sqlQuotas          = `SELECT ` + sqlQuotaColumns + ` FROM quotas WHERE campaign_id = ? ORDER BY clinic_id, vdate, product, dose, wave`
	sqlQuotasSince     = `SELECT ` + sqlQuotaColumns + ` FROM quotas WHERE campaign_id = ? AND version > ? ORDER BY version`
	sqlQuotaCapacityOf = `SELECT capacity, booked FROM quotas WHERE ` + sqlQuotaKey
)

// queries is the package's SQL rebound for one dialect.
type queries struct {
	take, release, insertBooking, insertOutbox            string
	bookingByID, bookingOfOwner, bookingsOf               string
	cancelBooking, moveBooking, setStatus                 string
	putCampaign, campaign, campaigns                      string
	clinic, clinics                                       string
	quotas, quotasSince, quotaCapacityOf                  string
	claimIdem, idem, completeIdem, releaseIdem, purgeIdem string
	isRolledOver, shrinkRow, growOpenRow                  string
}

func newQueries(d Dialect) queries {
	r := func(q string) string {
		return d.Rebind(strings.ReplaceAll(q, "{{nextVersion}}", d.nextVersion()))
	}
	return queries{
		take: r(sqlTake), release: r(sqlRelease), insertBooking: r(sqlInsertBooking), insertOutbox: r(sqlInsertOutbox),
		bookingByID: r(sqlBookingByID), bookingOfOwner: r(sqlBookingOfOwner), bookingsOf: r(sqlBookingsOf),
		cancelBooking: r(sqlCancelBooking), moveBooking: r(sqlMoveBooking), setStatus: r(sqlSetStatus),
		putCampaign: r(sqlPutCampaign), campaign: r(sqlCampaign), campaigns: r(sqlCampaigns),
		clinic: r(sqlClinic), clinics: r(sqlClinics),
		quotas: r(sqlQuotas), quotasSince: r(sqlQuotasSince), quotaCapacityOf: r(sqlQuotaCapacityOf),
		claimIdem: r(sqlClaimIdem), idem: r(sqlIdem), completeIdem: r(sqlCompleteIdem), releaseIdem: r(sqlReleaseIdem), purgeIdem: r(sqlPurgeIdem),
		isRolledOver: r(sqlIsRolledOver), shrinkRow: r(sqlShrinkRow), growOpenRow: r(sqlGrowOpenRow),
	}
}

// bulkRows is how many rows one bulk statement carries (7 parameters a
// row stays far below both databases' parameter limits).
const bulkRows = 500

// bulkSQL returns query with {{values}} replaced by n copies of row,
// rebound for the dialect.
func (d Dialect) bulkSQL(query, row string, n int) string {
	rows := strings.TrimSuffix(strings.Repeat(row+", ", n), ", ")
	q := strings.ReplaceAll(query, "{{values}}", rows)
	return d.Rebind(strings.ReplaceAll(q, "{{nextVersion}}", d.nextVersion()))
}

// statements are prepared once at Open: the booking path's quota change,
// booking insert and outbox insert.
type statements struct {
	take, release, insertBooking, insertOutbox *sqlx.Stmt
}

// statements returns the prepared statements, preparing them on first use
// (Open does it unless Options.SkipMigrations left the schema to a later
// Migrate).
func (db *DB) statements(ctx context.Context) (*statements, error) {
	if st := db.stmts.Load(); st != nil {
		return st, nil
	}
	db.stmtsMu.Lock()
	defer db.stmtsMu.Unlock()
	if st := db.stmts.Load(); st != nil {
		return st, nil
	}
	st := &statements{}
	for _, p := range []struct {
		dst **sqlx.Stmt
		sql string
	}{
		{&st.take, db.q.take},
		{&st.release, db.q.release},
		{&st.insertBooking, db.q.insertBooking},
		{&st.insertOutbox, db.q.insertOutbox},
	} {
		s, err := db.x.PreparexContext(ctx, p.sql)
		if err != nil {
			st.close()
			return nil, fmt.Errorf("sqlstore: prepare %q: %w", p.sql, err)
		}
		*p.dst = s
	}
	db.stmts.Store(st)
	return st, nil
}

func (s *statements) close() {
	for _, st := range []*sqlx.Stmt{s.take, s.release, s.insertBooking, s.insertOutbox} {
		if st != nil {
			_ = st.Close()
		}
	}
}

// dbTime scans a timestamp from either dialect (PostgreSQL TIMESTAMPTZ or
// SQLite TEXT).
type dbTime struct{ time.Time }

func (t *dbTime) Scan(v any) error {
	switch v := v.(type) {
	case time.Time:
		t.Time = v.UTC()
	case string:
		return t.parse(v)
	case []byte:
		return t.parse(string(v))
	case nil:
		t.Time = time.Time{}
	default:
		return fmt.Errorf("sqlstore: cannot scan %T into a time", v)
	}
	return nil
}

func (t *dbTime) parse(s string) error {
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("sqlstore: parse time %q: %w", s, err)
	}
	t.Time = v.UTC()
	return nil
}

// dbDate scans a calendar date from either dialect (DATE or TEXT).
type dbDate struct{ booking.Date }

func (d *dbDate) Scan(v any) error {
	switch v := v.(type) {
	case time.Time:
		d.Date = booking.DateOf(v)
	case string:
		return d.parse(v)
	case []byte:
		return d.parse(string(v))
	default:
		return fmt.Errorf("sqlstore: cannot scan %T into a date", v)
	}
	return nil
}

func (d *dbDate) parse(s string) error {
	v, err := booking.ParseDate(s)
	if err != nil {
		return fmt.Errorf("sqlstore: stored date: %w", err)
	}
	d.Date = v
	return nil
}
