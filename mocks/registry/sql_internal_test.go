package registry

import (
	"context"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // driver "pgx"
	"github.com/jmoiron/sqlx"

	"github.com/yeyak/yeyak/mocks/population"
	"github.com/yeyak/yeyak/mocks/testenv"
)

// TestSeedUsesCopyOnPgx pins the fast path: on pgx, Seed goes through COPY,
// not row-by-row inserts (which would miss the one-minute budget for 1M).
func TestSeedUsesCopyOnPgx(t *testing.T) {
	ctx := context.Background()
	db, err := sqlx.Open("pgx", testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := CreateSchema(ctx, db); err != nil {
		t.Fatal(err)
	}
	n, ok, err := seedCopy(ctx, db, population.People(population.Config{People: 100, UnknownShare: -1}))
	if err != nil || !ok || n != 100 {
		t.Fatalf("seedCopy = %d, %v, %v; want 100 through COPY", n, ok, err)
	}
}
