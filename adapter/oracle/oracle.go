package oracle

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	_ "github.com/godror/godror" // database/sql driver "godror"
	"github.com/jmoiron/sqlx"
	"github.com/yeyak/yeyak/adapter"
)

// MaxInList is Oracle's limit on the elements of an IN list (ORA-01795);
// bulk lookups are sent in chunks of at most this many ids.
const MaxInList = 1000

// Config configures a Registry. Zero values mean the documented defaults;
// only DSN is required.
type Config struct {
	// Driver is the database/sql driver name. If Driver is "" it is
	// "godror" (Oracle). Tests use "pgx" on PostgreSQL: the statements
	// are the same.
	Driver string
	// DSN is the driver's data source name, e.g. for godror
	// `user="yeyak" password="…" connectString="regdb:1521/REGPDB"`.
	// Required.
	DSN string
	// MaxOpenConns caps the connections (the registry's budget is small).
	// If MaxOpenConns is <= 0 it is 8; idle connections are kept up to it.
	MaxOpenConns int
	// StatementTimeout bounds each call (all of its statements), on top of
	// the caller's context. If StatementTimeout is <= 0 it is 5s.
	StatementTimeout time.Duration
	// Now stamps REG_DTM and UPD_DTM. If Now is nil it is time.Now.
	Now func() time.Time
}

// Registry is an adapter.Registry on the legacy registry's Oracle schema
// (docs/legacy-schema.md), through sqlx. It is safe for concurrent use.
type Registry struct {
	db      *sqlx.DB
	timeout time.Duration
	now     func() time.Time
	owned   bool
}

// Open opens the database cfg names and returns a Registry on it. Close
// closes the database.
func Open(cfg Config) (*Registry, error) {
	if cfg.DSN == "" {
		return nil, errors.New("oracle: Config.DSN is required")
	}
	if cfg.Driver == "" {
		cfg.Driver = "godror"
	}
	db, err := sqlx.Open(cfg.Driver, cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("oracle: open %s: %w", cfg.Driver, err)
	}
	r := New(db, cfg)
	r.owned = true
	return r, nil
}

// New returns a Registry on an open database, applying cfg's pool limits
// to it (cfg.Driver and cfg.DSN are ignored). Close does not close db.
func New(db *sqlx.DB, cfg Config) *Registry {
	if cfg.MaxOpenConns <= 0 {
		cfg.MaxOpenConns = 8
	}
	if cfg.StatementTimeout <= 0 {
		cfg.StatementTimeout = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	db.SetMaxOpenConns(cfg.MaxOpenConns)
	db.SetMaxIdleConns(cfg.MaxOpenConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	return &Registry{db: db, timeout: cfg.StatementTimeout, now: cfg.Now}
}

// Stats returns the connection pool's statistics (MaxOpenConnections is
// Config.MaxOpenConns), for health pages and tests.
func (r *Registry) Stats() sql.DBStats { return r.db.Stats() }

// Close closes the database if Open opened it.
func (r *Registry) Close() error {
	if r.owned {
		return r.db.Close()
	}
	return nil
}

// The SQL. Every statement is written once, with named binds (:NAME),
// and runs unchanged on Oracle and PostgreSQL (and SQLite): sqlx.Named
// turns the names into "?" and Rebind into the driver's placeholders
// (:arg1 for godror, $1 for pgx). Names are unquoted so that Oracle keeps
// them upper case and PostgreSQL folds them to the lower case the mock's
// DDL created. Columns are scanned by position, never by name, for the
// same reason. No MERGE, ON CONFLICT, FROM DUAL, LIMIT or RETURNING: each
// exists in only some of the dialects.
const (
	qPerson = `SELECT PRSN_ID, BRTH_DT, CNTRA_YN, EXCL_YN FROM PERSON_MST WHERE PRSN_ID = :PRSN_ID`
	qDoses  = `SELECT PRSN_ID, DOSE_NO, PRDT_CD, VACC_DT FROM VACC_HIST WHERE PRSN_ID = :PRSN_ID ORDER BY DOSE_NO`
	qRsvts  = `SELECT RSVT_ID, PRSN_ID, CMPN_ID, ORG_ID, RSVT_DT, PRDT_CD, DOSE_NO FROM RSVT_INFO
		WHERE PRSN_ID = :PRSN_ID AND STTS_CD = 'A' ORDER BY REG_DTM, RSVT_ID`

	qPersonsIn = `SELECT PRSN_ID, BRTH_DT, CNTRA_YN, EXCL_YN FROM PERSON_MST WHERE PRSN_ID IN (:IDS)`
	qDosesIn   = `SELECT PRSN_ID, DOSE_NO, PRDT_CD, VACC_DT FROM VACC_HIST WHERE PRSN_ID IN (:IDS) ORDER BY PRSN_ID, DOSE_NO`
	qRsvtsIn   = `SELECT RSVT_ID, PRSN_ID, CMPN_ID, ORG_ID, RSVT_DT, PRDT_CD, DOSE_NO FROM RSVT_INFO
		WHERE PRSN_ID IN (:IDS) AND STTS_CD = 'A' ORDER BY PRSN_ID, REG_DTM, RSVT_ID`

	qRsvtExists = `SELECT COUNT(*) FROM RSVT_INFO WHERE RSVT_ID = :RSVT_ID`
	qFlags      = `SELECT CNTRA_YN, EXCL_YN FROM PERSON_MST WHERE PRSN_ID = :PRSN_ID`
	qMaxDose    = `SELECT COALESCE(MAX(DOSE_NO), 0) FROM VACC_HIST WHERE PRSN_ID = :PRSN_ID`
	qInsertRsvt = `INSERT INTO RSVT_INFO (RSVT_ID, PRSN_ID, CMPN_ID, ORG_ID, RSVT_DT, PRDT_CD, DOSE_NO, STTS_CD, REG_DTM, UPD_DTM)
		VALUES (:RSVT_ID, :PRSN_ID, :CMPN_ID, :ORG_ID, :RSVT_DT, :PRDT_CD, :DOSE_NO, 'A', :REG_DTM, :UPD_DTM)`
	qCancelRsvt = `UPDATE RSVT_INFO SET STTS_CD = 'C', UPD_DTM = :UPD_DTM WHERE RSVT_ID = :RSVT_ID AND STTS_CD <> 'C'`
	qPing       = `SELECT COUNT(*) FROM PERSON_MST WHERE 1 = 0`
)

const (
	yyyymmdd       = "20060102"
	yyyymmddhhmiss = "20060102150405"
)

// queryer is what a read needs: the pool or a transaction.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	Rebind(query string) string
}

// bind turns a named-bind statement into the driver's placeholders.
func bind(q queryer, query string, arg map[string]any) (string, []any, error) {
	if arg == nil {
		return query, nil, nil
	}
	s, args, err := sqlx.Named(query, arg)
	if err != nil {
		return "", nil, err
	}
	if _, ok := arg["IDS"]; ok {
		if s, args, err = sqlx.In(s, args...); err != nil {
			return "", nil, err
		}
	}
	return q.Rebind(s), args, nil
}

func (r *Registry) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, r.timeout)
}

// unavailable wraps a database failure; the caller's own cancellation is
// kept visible beside ErrUnavailable.
func unavailable(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		return fmt.Errorf("oracle %s: %w: %w (%v)", what, adapter.ErrUnavailable, ctx.Err(), err)
	}
	return fmt.Errorf("oracle %s: %w: %w", what, adapter.ErrUnavailable, err)
}

func parseDate(s string) (time.Time, error) {
	// CHAR columns are blank-padded by Oracle; TrimSpace makes a short
	// value safe either way.
	return time.Parse(yyyymmdd, strings.TrimSpace(s))
}

// Eligibility implements adapter.Registry.
func (r *Registry) Eligibility(ctx context.Context, personID string) (adapter.Record, error) {
	ctx, cancel := r.withTimeout(ctx)
	defer cancel()
	recs, err := r.load(ctx, r.db, qPerson, qDoses, qRsvts, map[string]any{"PRSN_ID": personID})
	if err != nil {
		return adapter.Record{}, err
	}
	if len(recs) == 0 {
		return adapter.Record{}, fmt.Errorf("oracle eligibility: %w", adapter.ErrNotFound)
	}
	return *recs[0], nil
}

// EligibilityBulk implements adapter.Registry, in chunks of MaxInList ids.
// StatementTimeout applies per chunk.
func (r *Registry) EligibilityBulk(ctx context.Context, ids []string) ([]adapter.Record, error) {
	out := make([]adapter.Record, 0, len(ids))
	for start := 0; start < len(ids); start += MaxInList {
		chunk := ids[start:min(start+MaxInList, len(ids))]
		cctx, cancel := r.withTimeout(ctx)
		recs, err := r.load(cctx, r.db, qPersonsIn, qDosesIn, qRsvtsIn, map[string]any{"IDS": chunk})
		cancel()
		if err != nil {
			return nil, fmt.Errorf("ids %d-%d of %d: %w", start, start+len(chunk), len(ids), err)
		}
		for _, rec := range recs {
			out = append(out, *rec)
		}
	}
	return out, nil
}

// load runs the person, dose and reservation queries with arg and joins
// them, in the order the persons query returned.
func (r *Registry) load(ctx context.Context, q queryer, qp, qd, qr string, arg map[string]any) ([]*adapter.Record, error) {
	var recs []*adapter.Record
	byID := map[string]*adapter.Record{}
	err := r.each(ctx, q, qp, arg, func(rows *sql.Rows) error {
		var id, birth, cntra, excl string
		if err := rows.Scan(&id, &birth, &cntra, &excl); err != nil {
			return err
		}
		b, err := parseDate(birth)
		if err != nil {
			return fmt.Errorf("BRTH_DT: %w", err)
		}
		id = strings.TrimSpace(id)
		rec := &adapter.Record{PersonID: id, BirthDate: b,
			Contraindicated: strings.TrimSpace(cntra) == "Y", Excluded: strings.TrimSpace(excl) == "Y"}
		recs = append(recs, rec)
		byID[id] = rec
		return nil
	})
	if err != nil || len(recs) == 0 {
		return recs, err
	}
	err = r.each(ctx, q, qd, arg, func(rows *sql.Rows) error {
		var id, product, date string
		var dose int64
		if err := rows.Scan(&id, &dose, &product, &date); err != nil {
			return err
		}
		d, err := parseDate(date)
		if err != nil {
			return fmt.Errorf("VACC_DT: %w", err)
		}
		if rec := byID[strings.TrimSpace(id)]; rec != nil {
			rec.Doses = append(rec.Doses, adapter.Dose{Product: strings.TrimSpace(product), Number: int(dose), Date: d})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = r.each(ctx, q, qr, arg, func(rows *sql.Rows) error {
		var b adapter.BookingRecord
		var date string
		var dose int64
		if err := rows.Scan(&b.BookingID, &b.PersonID, &b.CampaignID, &b.ClinicID, &date, &b.Product, &dose); err != nil {
			return err
		}
		d, err := parseDate(date)
		if err != nil {
			return fmt.Errorf("RSVT_DT: %w", err)
		}
		b.Date, b.Dose = d, int(dose)
		b.BookingID, b.PersonID = strings.TrimSpace(b.BookingID), strings.TrimSpace(b.PersonID)
		if rec := byID[b.PersonID]; rec != nil {
			rec.Bookings = append(rec.Bookings, b)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return recs, nil
}

// each runs a named-bind query and calls fn for every row.
func (r *Registry) each(ctx context.Context, q queryer, query string, arg map[string]any, fn func(*sql.Rows) error) error {
	s, args, err := bind(q, query, arg)
	if err != nil {
		return fmt.Errorf("oracle: bind: %w", err)
	}
	rows, err := q.QueryContext(ctx, s, args...)
	if err != nil {
		return unavailable(ctx, "query", err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return fmt.Errorf("oracle: scan: %w", err)
		}
	}
	if err := rows.Err(); err != nil {
		return unavailable(ctx, "rows", err)
	}
	return nil
}

// scalar runs a named-bind query that returns one value.
func scalar[T any](ctx context.Context, q queryer, query string, arg map[string]any) (T, error) {
	var v T
	s, args, err := bind(q, query, arg)
	if err != nil {
		return v, fmt.Errorf("oracle: bind: %w", err)
	}
	err = q.QueryRowContext(ctx, s, args...).Scan(&v)
	return v, err
}

// RecordBooking implements adapter.Registry, idempotently by RSVT_ID:
// inside one transaction it returns at once if the id exists, checks the
// business rules, then inserts. Two concurrent first writes of the same id
// both pass the existence check; the primary key lets one insert win, and
// the loser, seeing its insert fail, re-checks the id outside its (now
// aborted) transaction and reports success when the row is there. This is
// portable, unlike MERGE (Oracle), ON CONFLICT (PostgreSQL, SQLite) or
// matching driver-specific unique-violation codes (ORA-00001, 23505).
func (r *Registry) RecordBooking(ctx context.Context, b adapter.BookingRecord) error {
	if b.BookingID == "" || b.PersonID == "" || b.Dose < 1 || b.Dose > 99 || b.Date.IsZero() {
		return fmt.Errorf("oracle record booking: malformed booking: %w", adapter.ErrRejected)
	}
	ctx, cancel := r.withTimeout(ctx)
	defer cancel()
	err := r.recordTx(ctx, b)
	if err == nil || errors.Is(err, adapter.ErrRejected) {
		return err
	}
	n, cerr := scalar[int64](ctx, r.db, qRsvtExists, map[string]any{"RSVT_ID": b.BookingID})
	if cerr == nil && n > 0 {
		return nil // a concurrent write of the same booking won
	}
	return err
}

func (r *Registry) recordTx(ctx context.Context, b adapter.BookingRecord) (err error) {
	tx, err := r.db.BeginTxx(ctx, nil)
	if err != nil {
		return unavailable(ctx, "record booking: begin", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	n, err := scalar[int64](ctx, tx, qRsvtExists, map[string]any{"RSVT_ID": b.BookingID})
	if err != nil {
		return unavailable(ctx, "record booking: exists", err)
	}
	if n > 0 {
		return tx.Commit() // already recorded (active or cancelled): nothing changes
	}
	var cntra, excl string
	s, args, err := bind(tx, qFlags, map[string]any{"PRSN_ID": b.PersonID})
	if err != nil {
		return fmt.Errorf("oracle: bind: %w", err)
	}
	switch err = tx.QueryRowContext(ctx, s, args...).Scan(&cntra, &excl); {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("oracle record booking: unknown person: %w", adapter.ErrRejected)
	case err != nil:
		return unavailable(ctx, "record booking: person", err)
	case strings.TrimSpace(cntra) == "Y":
		return fmt.Errorf("oracle record booking: contraindicated: %w", adapter.ErrRejected)
	case strings.TrimSpace(excl) == "Y":
		return fmt.Errorf("oracle record booking: excluded: %w", adapter.ErrRejected)
	}
	maxDose, err := scalar[int64](ctx, tx, qMaxDose, map[string]any{"PRSN_ID": b.PersonID})
	if err != nil {
		return unavailable(ctx, "record booking: doses", err)
	}
	if maxDose >= int64(b.Dose) {
		return fmt.Errorf("oracle record booking: dose %d already given (last %d): %w", b.Dose, maxDose, adapter.ErrRejected)
	}
	now := r.now().UTC().Format(yyyymmddhhmiss)
	s, args, err = bind(tx, qInsertRsvt, map[string]any{
		"RSVT_ID": b.BookingID, "PRSN_ID": b.PersonID, "CMPN_ID": b.CampaignID, "ORG_ID": b.ClinicID,
		"RSVT_DT": b.Date.UTC().Format(yyyymmdd), "PRDT_CD": b.Product, "DOSE_NO": b.Dose,
		"REG_DTM": now, "UPD_DTM": now,
	})
	if err != nil {
		return fmt.Errorf("oracle: bind: %w", err)
	}
	if _, err = tx.ExecContext(ctx, s, args...); err != nil {
		return unavailable(ctx, "record booking: insert", err)
	}
	if err = tx.Commit(); err != nil {
		return unavailable(ctx, "record booking: commit", err)
	}
	return nil
}

// CancelBooking implements adapter.Registry: STTS_CD becomes 'C'; an
// unknown or already cancelled id changes nothing and succeeds.
func (r *Registry) CancelBooking(ctx context.Context, bookingID string) error {
	ctx, cancel := r.withTimeout(ctx)
	defer cancel()
	s, args, err := bind(r.db, qCancelRsvt, map[string]any{
		"RSVT_ID": bookingID, "UPD_DTM": r.now().UTC().Format(yyyymmddhhmiss),
	})
	if err != nil {
		return fmt.Errorf("oracle: bind: %w", err)
	}
	if _, err := r.db.ExecContext(ctx, s, args...); err != nil {
		return unavailable(ctx, "cancel booking", err)
	}
	return nil
}

// Ping implements adapter.Registry: a round trip that also proves the
// schema is there.
func (r *Registry) Ping(ctx context.Context) error {
	ctx, cancel := r.withTimeout(ctx)
	defer cancel()
	if _, err := scalar[int64](ctx, r.db, qPing, nil); err != nil {
		return unavailable(ctx, "ping", err)
	}
	return nil
}

var _ adapter.Registry = (*Registry)(nil)
