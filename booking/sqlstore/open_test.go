package sqlstore

import (
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/mocks/testenv"
)

// TestSkipMigrations: Open can leave the schema to a separate migrate
// step; Ping reports it missing until Migrate runs, then the store works.
func TestSkipMigrations(t *testing.T) {
	t.Parallel()
	for name, dsn := range map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "skip.db") },
		"postgres": func(t *testing.T) string { return testenv.Postgres(t) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := ctxT(t)
			db, err := Open(ctx, dsn(t), Options{SkipMigrations: true, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer db.Close()
			if err := db.Ping(ctx); err == nil {
				t.Fatal("Ping succeeded on an unmigrated database")
			}
			if err := db.Migrate(ctx); err != nil {
				t.Fatalf("Migrate: %v", err)
			}
			if err := db.Ping(ctx); err != nil {
				t.Fatalf("Ping after Migrate: %v", err)
			}
			mustSetQuotas(t, db, quota("c1", day1, 1, 0, 1))
			book(t, db, newBooking("p1", "c1", day1, 1, 0))
		})
	}
}

func TestOpenDSN(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		dsn     string
		dialect Dialect
		code    booking.Code
	}{
		{"sqlite::memory:", SQLite, ""},
		{"sqlite:" + filepath.Join(t.TempDir(), "a.db"), SQLite, ""},
		{"sqlite:" + filepath.Join(t.TempDir(), "b.db") + "?_pragma=cache_size(-2000)", SQLite, ""},
		{"sqlite:", "", booking.EINVALID},
		{"mysql://x", "", booking.EINVALID},
		{"", "", booking.EINVALID},
	} {
		db, err := Open(ctxT(t), tc.dsn, Options{Logger: slog.New(slog.DiscardHandler)})
		if got := booking.ErrorCode(err); got != tc.code {
			t.Errorf("Open(%q) = %v, want code %q", tc.dsn, err, tc.code)
		}
		if err != nil {
			continue
		}
		if db.Dialect() != tc.dialect {
			t.Errorf("Open(%q).Dialect() = %s, want %s", tc.dsn, db.Dialect(), tc.dialect)
		}
		if err := db.Ping(ctxT(t)); err != nil {
			t.Errorf("Ping(%q): %v", tc.dsn, err)
		}
		db.Close()
	}
	if _, err := Open(ctxT(t), "sqlite::memory:", Options{OutboxNotify: "sometimes"}); booking.ErrorCode(err) != booking.EINVALID {
		t.Errorf("unknown OutboxNotify: %v, want EINVALID", err)
	}
}

// TestSQLiteFileSettings checks the pragmas a file database is opened
// with.
func TestSQLiteFileSettings(t *testing.T) {
	t.Parallel()
	db := openSQLite(t)
	for pragma, want := range map[string]string{"journal_mode": "wal", "foreign_keys": "1", "busy_timeout": "10000"} {
		var got string
		if err := db.DB().QueryRowx("PRAGMA " + pragma).Scan(&got); err != nil || got != want {
			t.Errorf("PRAGMA %s = %q, %v; want %q", pragma, got, err, want)
		}
	}
}

// TestMigrationsOutOfOrder: a database that has a later owner's migration
// but not an earlier-numbered one added since (ranges are per owner) is
// brought up to date, and Ping notices until it is.
func TestMigrationsOutOfOrder(t *testing.T) {
	t.Parallel()
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "ooo.db")
	db := mustOpen(t, dsn)
	ctx := ctxT(t)
	// Pretend version 4 (an index) arrived after the rest was applied.
	for _, q := range []string{"DROP INDEX quotas_version_idx", "DELETE FROM goose_db_version WHERE version_id = 4"} {
		if _, err := db.DB().ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Ping(ctx); err == nil {
		t.Fatal("Ping passed with migration 4 missing")
	}
	db2 := mustOpen(t, dsn)
	if err := db2.Ping(ctx); err != nil {
		t.Fatalf("Ping after reopening: %v", err)
	}
}
