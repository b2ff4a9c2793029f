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
	db, err := sqlx.Open("pgx", testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := registry.CreateSchema(context.Background(), db); err != nil {
		t.Fatalf("create legacy schema: %v", err)
	}
	return db
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
