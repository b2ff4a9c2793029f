package oracle_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // driver "pgx"
	"github.com/jmoiron/sqlx"
	_ "modernc.org/sqlite" // driver "sqlite"

	"github.com/yeyak/yeyak/adapter"
	"github.com/yeyak/yeyak/adapter/oracle"
	"github.com/yeyak/yeyak/adapter/registrytest"
	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/mocks/population"
	"github.com/yeyak/yeyak/mocks/registry"
	"github.com/yeyak/yeyak/mocks/testenv"
)

// personOf converts a suite person to the mock's population form. Sex must
// be set: a zero byte is not valid text for PostgreSQL's COPY.
func personOf(r adapter.Record) population.Person {
	p := population.Person{ID: r.PersonID, BirthDate: booking.DateOf(r.BirthDate), Sex: 'F',
		Contraindicated: r.Contraindicated, Excluded: r.Excluded}
	for _, d := range r.Doses {
		p.Doses = append(p.Doses, population.Dose{Number: d.Number, Product: d.Product, Date: booking.DateOf(d.Date)})
	}
	return p
}

func seeder(db *sqlx.DB) registrytest.Seeder {
	return registrytest.SeederFunc(func(ctx context.Context, people []adapter.Record) error {
		_, err := registry.Seed(ctx, db, func(yield func(population.Person) bool) {
			for _, r := range people {
				if !yield(personOf(r)) {
					return
				}
			}
		})
		return err
	})
}

// openPG returns a fresh PostgreSQL database with the legacy schema.
func openPG(t *testing.T) *sqlx.DB {
	t.Helper()
	db, _ := openPGDSN(t)
	return db
}

// openPGDSN is openPG, also returning the database's DSN.
func openPGDSN(t *testing.T) (*sqlx.DB, string) {
	t.Helper()
	dsn := testenv.Postgres(t)
	db, err := sqlx.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := registry.CreateSchema(context.Background(), db); err != nil {
		t.Fatalf("create legacy schema: %v", err)
	}
	return db, dsn
}

func TestContractOraclePostgres(t *testing.T) {
	// One database for the suite (creating one costs about a second);
	// each subtest starts from empty tables. Subtests run one at a time.
	db := openPG(t)
	registrytest.Run(t, func(t *testing.T) (adapter.Registry, registrytest.Seeder) {
		for _, table := range []string{"RSVT_INFO", "VACC_HIST", "PERSON_MST"} {
			if _, err := db.Exec("DELETE FROM " + table); err != nil {
				t.Fatalf("empty %s: %v", table, err)
			}
		}
		return oracle.New(db, oracle.Config{}), seeder(db)
	})
}

func TestContractOracleSQLite(t *testing.T) {
	registrytest.Run(t, func(t *testing.T) (adapter.Registry, registrytest.Seeder) {
		db, err := sqlx.Open("sqlite", filepath.Join(t.TempDir(), "legacy.db")+"?_pragma=busy_timeout(5000)")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if err := registry.CreateSchema(context.Background(), db); err != nil {
			t.Fatal(err)
		}
		// SQLite has one writer; one connection keeps it simple.
		return oracle.New(db, oracle.Config{MaxOpenConns: 1}), seeder(db)
	})
}

func TestOpenThroughConfig(t *testing.T) {
	if _, err := oracle.Open(oracle.Config{}); err == nil {
		t.Fatal("empty DSN accepted")
	}
	r, err := oracle.Open(oracle.Config{Driver: "pgx", DSN: testenv.Postgres(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	err = r.Ping(context.Background())
	if !errors.Is(err, adapter.ErrUnavailable) {
		t.Fatalf("ping without the schema: %v, want ErrUnavailable", err)
	}
}

// TestOpenDefaultsToGodror: a Config with only a DSN (what yeyakd's
// --registry oracle:DSN gives) opens with the godror driver. No Oracle
// server (or client library) is here, so the first use fails, and it must
// fail as ErrUnavailable.
func TestOpenDefaultsToGodror(t *testing.T) {
	r, err := oracle.Open(oracle.Config{DSN: `user="yeyak" password="x" connectString="127.0.0.1:1/REGPDB"`})
	if err != nil {
		t.Fatalf("open with the default driver: %v", err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.Ping(ctx); !errors.Is(err, adapter.ErrUnavailable) {
		t.Fatalf("ping without an Oracle server: %v, want ErrUnavailable", err)
	}
	if got := r.Stats().MaxOpenConnections; got != 8 {
		t.Fatalf("default pool %d, want 8", got)
	}
}

// TestOpenPgxAgainstMockSchema is how the tests reach the adapter through
// Open: driver "pgx", a DSN, a pool size, against the legacy schema
// mocks/registry creates on PostgreSQL.
func TestOpenPgxAgainstMockSchema(t *testing.T) {
	db, dsn := openPGDSN(t) // creates the schema
	ctx := context.Background()
	if err := seeder(db).Seed(ctx, []adapter.Record{{PersonID: "OP-1", BirthDate: time.Date(1961, 3, 14, 0, 0, 0, 0, time.UTC)}}); err != nil {
		t.Fatal(err)
	}
	r, err := oracle.Open(oracle.Config{Driver: "pgx", DSN: dsn, MaxOpenConns: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.Ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
	rec, err := r.Eligibility(ctx, "OP-1")
	if err != nil || !rec.BirthDate.Equal(time.Date(1961, 3, 14, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("eligibility: %+v, %v", rec, err)
	}
	if got := r.Stats().MaxOpenConnections; got != 3 {
		t.Fatalf("pool %d, want Config.MaxOpenConns 3", got)
	}
}

func TestDefaultPoolIsSmall(t *testing.T) {
	db := openPG(t)
	oracle.New(db, oracle.Config{})
	if got := db.Stats().MaxOpenConnections; got != 8 {
		t.Fatalf("MaxOpenConnections %d, want 8", got)
	}
}

// TestStatementTimeout blocks the reservation table with a lock held by
// another transaction: the read must give up at StatementTimeout with
// ErrUnavailable, and the pool must stay usable afterwards.
func TestStatementTimeout(t *testing.T) {
	db := openPG(t)
	ctx := context.Background()
	if err := seeder(db).Seed(ctx, []adapter.Record{{PersonID: "OT-1", BirthDate: time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC)}}); err != nil {
		t.Fatal(err)
	}
	r := oracle.New(db, oracle.Config{StatementTimeout: 200 * time.Millisecond})
	locker, err := db.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := locker.ExecContext(ctx, "LOCK TABLE RSVT_INFO IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = r.Eligibility(ctx, "OT-1")
	waited := time.Since(start)
	_ = locker.Rollback()
	if !errors.Is(err, adapter.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("blocked read: %v, want ErrUnavailable + DeadlineExceeded", err)
	}
	if waited > 5*time.Second {
		t.Fatalf("blocked read returned after %v with a 200ms statement timeout", waited)
	}
	if _, err := r.Eligibility(ctx, "OT-1"); err != nil {
		t.Fatalf("after the timeout: %v", err)
	}
}
