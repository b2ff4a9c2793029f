package registry_test

import (
	"context"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/yeyak/yeyak/mocks/population"
	"github.com/yeyak/yeyak/mocks/registry"
	"github.com/yeyak/yeyak/mocks/testenv"
)

// BenchmarkGenerateAndLoad1M generates 1,000,000 people and 14,000 clinics
// and loads the people into the legacy schema on PostgreSQL through COPY,
// each iteration into a fresh database. Run it alone:
//
//	go test -run '^$' -bench GenerateAndLoad1M -benchtime 1x ./mocks/registry/
func BenchmarkGenerateAndLoad1M(b *testing.B) {
	ctx := context.Background()
	cfg := population.Config{Seed: 2021, People: 1_000_000, Clinics: 14_000}
	for b.Loop() {
		b.StopTimer()
		db, err := sqlx.Open("pgx", testenv.Postgres(b))
		if err != nil {
			b.Fatal(err)
		}
		if err := registry.CreateSchema(ctx, db); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		clinics := population.Clinics(cfg)
		n, err := registry.Seed(ctx, db, population.People(cfg))
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(start).Seconds(), "s/1M")
		b.ReportMetric(float64(n), "people")
		b.ReportMetric(float64(len(clinics)), "clinics")
		b.StopTimer()
		db.Close()
		b.StartTimer()
	}
}
