package sqlstore

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jmoiron/sqlx"

	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/mocks/testenv"
)

func TestUnavailableClassifies(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, true},
		{"starting up", &pgconn.PgError{Code: "57P03"}, true},
		{"too many connections", &pgconn.PgError{Code: "53300"}, true},
		{"connection failure", &pgconn.PgError{Code: "08006"}, true},
		{"refused", fmt.Errorf("dial: %w", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}), true},
		{"bad conn", driver.ErrBadConn, true},
		{"reset", fmt.Errorf("read: %w", syscall.ECONNRESET), true},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"syntax", &pgconn.PgError{Code: "42601"}, false},
		{"other", errors.New("boom"), false},
	} {
		if got := unavailable(tc.err); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
		code := booking.ErrorCode(internal("op", tc.err))
		if want := map[bool]booking.Code{true: booking.EUNAVAILABLE, false: booking.EINTERNAL}[tc.want]; code != want {
			t.Errorf("%s: internal() code %s, want %s", tc.name, code, want)
		}
	}
}

// TestDatabaseGoneIsUnavailable: the PostgreSQL database stops taking
// connections and its sessions are terminated: a booking read answers
// EUNAVAILABLE (503, retryable), not an internal error.
func TestDatabaseGoneIsUnavailable(t *testing.T) {
	dsn := testenv.Postgres(t)
	db := mustOpen(t, dsn)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	admin, err := sqlx.Open("pgx", testenv.PostgresAdminDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	name := dbName(t, db)
	for _, q := range []string{
		"ALTER DATABASE " + name + " WITH ALLOW_CONNECTIONS false",
		"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" + name + "' AND pid <> pg_backend_pid()",
	} {
		if _, err := admin.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	defer func() {
		_, _ = admin.ExecContext(context.Background(), "ALTER DATABASE "+name+" WITH ALLOW_CONNECTIONS true")
	}()
	_, err = db.Bookings(ctx, "P1")
	if booking.ErrorCode(err) != booking.EUNAVAILABLE {
		t.Fatalf("Bookings with the database gone: %v (code %s), want %s", err, booking.ErrorCode(err), booking.EUNAVAILABLE)
	}
}

func dbName(t *testing.T, db *DB) string {
	t.Helper()
	var n string
	if err := db.x.Get(&n, "SELECT current_database()"); err != nil {
		t.Fatal(err)
	}
	return n
}
