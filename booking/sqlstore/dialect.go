package sqlstore

import (
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jmoiron/sqlx"
	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/yeyak/yeyak/booking"
)

// Dialect names the SQL database behind a DB. Every difference between
// PostgreSQL and SQLite that the Go code must know lives in this file; the
// DDL differences live in the per-dialect migration directories.
type Dialect string

const (
	// Postgres is PostgreSQL through github.com/jackc/pgx/v5/stdlib.
	Postgres Dialect = "postgres"
	// SQLite is SQLite through modernc.org/sqlite (no cgo).
	SQLite Dialect = "sqlite"
)

// String returns the dialect name.
func (d Dialect) String() string { return string(d) }

// DriverName is the database/sql driver the dialect uses.
func (d Dialect) DriverName() string {
	if d == Postgres {
		return "pgx"
	}
	return "sqlite"
}

// BindType is the sqlx placeholder style; SQL in this package is written
// with "?" and rebound once at Open.
func (d Dialect) BindType() int {
	if d == Postgres {
		return sqlx.DOLLAR
	}
	return sqlx.QUESTION
}

// Rebind rewrites a query written with "?" placeholders for the dialect.
func (d Dialect) Rebind(query string) string { return sqlx.Rebind(d.BindType(), query) }

func (d Dialect) gooseDialect() goose.Dialect {
	if d == Postgres {
		return goose.DialectPostgres
	}
	return goose.DialectSQLite3
}

// migrationsDir is the embedded directory holding the dialect's migrations.
func (d Dialect) migrationsDir() string {
	if d == Postgres {
		return "migrations/postgres"
	}
	return "migrations/sqlite"
}

// nextVersion is the SQL expression giving a quota row its new version.
// PostgreSQL draws from a sequence. SQLite write transactions serialize
// (one writer, BEGIN IMMEDIATE), so the table's maximum plus one is
// monotonic there.
func (d Dialect) nextVersion() string {
	if d == Postgres {
		return "nextval('quota_version_seq')"
	}
	return "(SELECT COALESCE(MAX(version), 0) + 1 FROM quotas)"
}

// forUpdate is the locking clause that keeps read rows unchanged until
// the transaction ends. SQLite needs none: its write transactions
// serialize (BEGIN IMMEDIATE and the store's write lock).
func (d Dialect) forUpdate() string {
	if d == Postgres {
		return " FOR UPDATE"
	}
	return ""
}

// SQLiteTimeLayout is how SQLite columns hold timestamps: RFC 3339 in UTC
// with a fixed nine-digit fraction, so text order is time order (the
// variable-width time.RFC3339Nano form is not). time.Parse with
// time.RFC3339Nano reads it.
const SQLiteTimeLayout = "2006-01-02T15:04:05.000000000Z"

// timeArg is the query argument for a timestamp. Times are kept to the
// microsecond, PostgreSQL's precision, so both dialects round-trip the same
// value.
func (d Dialect) timeArg(t time.Time) any {
	t = t.UTC().Truncate(time.Microsecond)
	if d == Postgres {
		return t
	}
	return t.Format(SQLiteTimeLayout)
}

// dateArg is the query argument for a calendar date (PostgreSQL DATE,
// SQLite TEXT YYYY-MM-DD).
func (d Dialect) dateArg(v booking.Date) any {
	if d == Postgres {
		return v.In(time.UTC)
	}
	return v.String()
}

// Constraint names the Go code branches on.
const (
	// bookingsActiveUnique is the partial unique index: one active booking
	// per person, campaign and dose.
	bookingsActiveUnique = "bookings_one_active_per_dose"
)

// violation classifies a constraint error from either driver.
type violation int

const (
	notViolation violation = iota
	uniqueViolation
	primaryKeyViolation
	checkViolation
	otherViolation
)

// classify reports which kind of constraint err violated, and on
// PostgreSQL the constraint's name. SQLite does not report the name in a
// typed field; there a unique index violation and a primary key violation
// are told apart by their extended result codes.
func (d Dialect) classify(err error) (violation, string) {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505":
			if strings.HasSuffix(pe.ConstraintName, "_pkey") {
				return primaryKeyViolation, pe.ConstraintName
			}
			return uniqueViolation, pe.ConstraintName
		case "23514":
			return checkViolation, pe.ConstraintName
		case "23502", "23503", "23P01":
			return otherViolation, pe.ConstraintName
		}
		return notViolation, ""
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE:
			return uniqueViolation, ""
		case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return primaryKeyViolation, ""
		case sqlite3.SQLITE_CONSTRAINT_CHECK:
			return checkViolation, ""
		}
		if se.Code()&0xff == sqlite3.SQLITE_CONSTRAINT {
			return otherViolation, ""
		}
	}
	return notViolation, ""
}

// unavailable reports whether err means the database cannot be reached
// now: a refused or broken connection, a server shutting down or starting
// up (PostgreSQL 57P01-57P03), too many connections (53300), a connection
// exception (class 08), or SQLite still busy after its busy timeout.
func unavailable(err error) bool {
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true // whatever the server said while refusing the connection
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return strings.HasPrefix(pe.Code, "08") || pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03" || pe.Code == "53300"
	}
	var ne net.Error
	var se *sqlite.Error
	switch {
	case errors.As(err, &ne), errors.Is(err, driver.ErrBadConn),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.ErrUnexpectedEOF):
		return true
	case errors.As(err, &se):
		c := se.Code() & 0xff
		return c == sqlite3.SQLITE_BUSY || c == sqlite3.SQLITE_LOCKED
	}
	return false
}

// retryable reports whether a transaction that failed with err may simply
// be run again: PostgreSQL serialization failures and deadlocks, and SQLite
// busy/locked results (which the busy timeout and the writer lock should
// already prevent).
func (d Dialect) retryable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "40001" || pe.Code == "40P01"
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		c := se.Code() & 0xff
		return c == sqlite3.SQLITE_BUSY || c == sqlite3.SQLITE_LOCKED
	}
	return false
}

// parseDSN tells the dialect from a DSN and returns the driver's DSN.
// "sqlite:PATH" (PATH may carry driver query parameters) and
// "sqlite::memory:" open SQLite; "postgres://" and "postgresql://" open
// PostgreSQL. memory reports an in-memory SQLite database.
func parseDSN(dsn string, busy time.Duration) (d Dialect, driverDSN string, memory bool, err error) {
	switch {
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return Postgres, dsn, false, nil
	case strings.HasPrefix(dsn, "sqlite:"):
		rest := strings.TrimPrefix(dsn, "sqlite:")
		rest = strings.TrimPrefix(rest, "//")
		path, query, _ := strings.Cut(rest, "?")
		if path == "" {
			return "", "", false, booking.Errorf(booking.EINVALID, "empty SQLite path: want sqlite:PATH or sqlite::memory:")
		}
		params := []string{
			fmt.Sprintf("_pragma=busy_timeout(%d)", busy.Milliseconds()),
			"_pragma=foreign_keys(1)",
			"_txlock=immediate",
		}
		if path == ":memory:" {
			// Each connection to ":memory:" is its own database; a named
			// shared-cache memory database is one database for the pool
			// (which Open limits to one connection: shared-cache table
			// locks are not covered by the busy timeout).
			path = "file:yeyak_" + booking.NewID() + "?mode=memory&cache=shared"
			memory = true
		} else {
			params = append(params, "_pragma=journal_mode(WAL)", "_pragma=synchronous(NORMAL)")
			if !strings.HasPrefix(path, "file:") {
				path = "file:" + path
			}
		}
		if query != "" {
			params = append(params, query)
		}
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		return SQLite, path + sep + strings.Join(params, "&"), memory, nil
	}
	return "", "", false, booking.Errorf(booking.EINVALID, "unsupported database DSN: want sqlite:PATH, sqlite::memory: or postgres://…")
}
