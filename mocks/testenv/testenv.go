// Package testenv finds the real services tests run against — PostgreSQL and
// Redis on 127.0.0.1 — and gives each test its own uniquely named database or
// key prefix, dropped when the test ends.
//
// When a service is absent the test is skipped with a clear message, unless
// YEYAK_REQUIRE_SERVICES=1 (CI sets it), in which case it fails. Names carry
// a random suffix, so leftovers from an interrupted run never collide with a
// new one; DropStale removes databases older runs left behind.
package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// Prefix starts the name of every database and key prefix tests create.
const Prefix = "yeyaktest_"

// Required reports whether YEYAK_REQUIRE_SERVICES asks for services to be
// present (tests fail instead of skipping).
func Required() bool {
	v := os.Getenv("YEYAK_REQUIRE_SERVICES")
	return v == "1" || strings.EqualFold(v, "true")
}

// Unavailable skips tb, or fails it when services are required.
func Unavailable(tb testing.TB, service string, err error) {
	tb.Helper()
	if Required() {
		tb.Fatalf("%s is required (YEYAK_REQUIRE_SERVICES=1) but unavailable: %v", service, err)
	}
	tb.Skipf("%s unavailable on 127.0.0.1, skipping (set YEYAK_REQUIRE_SERVICES=1 to fail instead): %v", service, err)
}

// PostgresAdminDSN is the DSN of the maintenance database. YEYAK_TEST_PG
// overrides it; the default is the trust-auth server on 127.0.0.1:5432.
func PostgresAdminDSN() string {
	if v := os.Getenv("YEYAK_TEST_PG"); v != "" {
		return v
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// RandomSuffix returns n random hex bytes.
func RandomSuffix(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Postgres creates a fresh database for tb and returns its DSN; the database
// is dropped (with any connections still open to it) when tb ends.
func Postgres(tb testing.TB) string {
	tb.Helper()
	admin := PostgresAdminDSN()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	db, err := sql.Open("pgx", admin)
	if err != nil {
		Unavailable(tb, "PostgreSQL", err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		Unavailable(tb, "PostgreSQL", err)
	}
	dropStale(ctx, db)
	name := fmt.Sprintf("%s%d_%s", Prefix, time.Now().Unix(), RandomSuffix(4))
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		db.Close()
		tb.Fatalf("create test database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Logf("drop test database %s: %v", name, err)
		}
		db.Close()
	})
	u, err := url.Parse(admin)
	if err != nil {
		tb.Fatalf("parse %q: %v", admin, err)
	}
	u.Path = "/" + name
	return u.String()
}

// dropStale removes test databases left by runs that started more than an
// hour ago (their process died before cleanup). Errors are ignored: another
// run may be dropping the same database.
func dropStale(ctx context.Context, db *sql.DB) {
	rows, err := db.QueryContext(ctx, "SELECT datname FROM pg_database WHERE datname LIKE $1", Prefix+"%")
	if err != nil {
		return
	}
	var names []string
	for rows.Next() {
		var n string
		if rows.Scan(&n) == nil {
			names = append(names, n)
		}
	}
	rows.Close()
	cutoff := time.Now().Add(-time.Hour).Unix()
	for _, n := range names {
		var ts int64
		if _, err := fmt.Sscanf(strings.TrimPrefix(n, Prefix), "%d_", &ts); err == nil && ts < cutoff {
			_, _ = db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+n+" WITH (FORCE)")
		}
	}
}

// RedisAddr returns the address of the machine's Redis (YEYAK_TEST_REDIS
// overrides 127.0.0.1:6379) and a key prefix unique to tb. Tests must only
// touch keys under the prefix; they never flush or stop the shared server.
func RedisAddr(tb testing.TB) (addr, prefix string) {
	tb.Helper()
	addr = os.Getenv("YEYAK_TEST_REDIS")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		Unavailable(tb, "Redis", err)
	}
	c.Close()
	return addr, fmt.Sprintf("%s%s:", Prefix, RandomSuffix(6))
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(tb testing.TB) int {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
