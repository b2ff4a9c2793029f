package population_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	_ "modernc.org/sqlite" // database/sql driver "sqlite" for the legacy schema

	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/booking/sqlstore"
	"github.com/yeyak/yeyak/mocks/population"
	"github.com/yeyak/yeyak/mocks/registry"
	"github.com/yeyak/yeyak/mocks/testenv"
)

// The figure issue 2 asks for: 1,000,000 people and 14,000 clinics
// generated and loaded — the people into the legacy registry's schema, the
// clinics and their supply (as quota rows) into the booking store — in
// under a minute on the test machine. seedAll does it, phase by phase;
// BenchmarkSeed1M and TestSeedFull (YEYAK_SEED_FULL=1) run it at full
// size, TestSeedSmall at a size CI runs every time.

// fullSeed is the population of the figure.
var fullSeed = population.Config{Seed: 2021, People: 1_000_000, Clinics: 14_000, SupplyJitter: 0.3}

// seedDosesPerDay is each clinic's daily supply of each product (±30%).
const seedDosesPerDay = 100

// seedCampaign is the 2021 campaign (10 rotation days + the open wave =
// 11 waves for dose 1, pfizer and moderna in two doses) with 30
// vaccination dates.
func seedCampaign(tb testing.TB) *booking.Campaign {
	tb.Helper()
	c := booking.Campaign2021()
	c.ID = "seed-2021-18-49"
	c.VaccinationTo = c.VaccinationFrom.AddDays(29)
	if err := c.Validate(); err != nil {
		tb.Fatalf("campaign: %v", err)
	}
	return c
}

// seedTarget is where one run loads: the registry's legacy schema and the
// booking store, each in a fresh database of one dialect.
type seedTarget struct {
	registry *sqlx.DB
	store    *sqlstore.DB
}

// openSeedTarget creates fresh, empty databases (untimed set-up): on
// PostgreSQL one database for the registry and one for the store, on
// SQLite one file each.
func openSeedTarget(tb testing.TB, dialect string) seedTarget {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var regDSN, storeDSN, driver string
	switch dialect {
	case "postgres":
		driver, regDSN, storeDSN = "pgx", testenv.Postgres(tb), testenv.Postgres(tb)
	case "sqlite":
		dir := tb.TempDir()
		driver = "sqlite"
		regDSN = "file:" + filepath.Join(dir, "registry.db") + "?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)"
		storeDSN = "sqlite:" + filepath.Join(dir, "yeyak.db")
	default:
		tb.Fatalf("unknown dialect %q", dialect)
	}
	reg, err := sqlx.Open(driver, regDSN)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { reg.Close() })
	if err := registry.CreateSchema(ctx, reg); err != nil {
		tb.Fatal(err)
	}
	store, err := sqlstore.Open(ctx, storeDSN, sqlstore.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() })
	return seedTarget{registry: reg, store: store}
}

// seedFigures is what one seedAll run loaded and how long each phase took.
type seedFigures struct {
	people     int // people loaded into PERSON_MST (the registry knows them)
	clinics    int
	supplyRows int
	quotaRows  int
	// Durations of the phases: generating and loading the people;
	// generating the clinics and their supply; loading campaign, clinics
	// and quota rows into the booking store; and all of it.
	peopleTook, generateTook, quotasTook, total time.Duration
}

func (f seedFigures) String() string {
	return fmt.Sprintf("people %d in %.1fs; clinics %d + supply rows %d generated in %.1fs; quota rows %d loaded in %.1fs; total %.1fs",
		f.people, f.peopleTook.Seconds(), f.clinics, f.supplyRows, f.generateTook.Seconds(), f.quotaRows, f.quotasTook.Seconds(), f.total.Seconds())
}

func (f seedFigures) report(b *testing.B) {
	b.ReportMetric(f.peopleTook.Seconds(), "s-people")
	b.ReportMetric(f.generateTook.Seconds(), "s-generate-clinics")
	b.ReportMetric(f.quotasTook.Seconds(), "s-load-quotas")
	b.ReportMetric(f.total.Seconds(), "s-total")
	b.ReportMetric(float64(f.people), "people")
	b.ReportMetric(float64(f.quotaRows), "quota-rows")
}

// seedAll generates cfg's people and loads them into the registry's legacy
// schema, and generates cfg's clinics and their supply for c and loads
// them into the booking store with SeedCampaign, timing each phase. The
// two loads go to different databases (different systems in production);
// concurrent runs them at the same time, as a seeding tool would, else
// one after the other. total is the wall time of all of it.
func seedAll(tb testing.TB, t seedTarget, cfg population.Config, c *booking.Campaign, concurrent bool) seedFigures {
	tb.Helper()
	ctx := context.Background()
	var (
		f         seedFigures
		peopleErr error
		wg        sync.WaitGroup
	)
	start := time.Now()
	loadPeople := func() {
		n, err := registry.Seed(ctx, t.registry, population.People(cfg))
		f.people, f.peopleTook, peopleErr = n, time.Since(start), err
	}
	if concurrent {
		wg.Go(loadPeople)
	} else {
		loadPeople()
	}

	phase := time.Now()
	clinics := population.Clinics(cfg)
	supply := population.Supply(cfg, c, clinics, seedDosesPerDay)
	f.generateTook = time.Since(phase)

	phase = time.Now()
	res, err := t.store.SeedCampaign(ctx, sqlstore.Seed{Campaign: c, Clinics: clinics, Supply: supply})
	f.quotasTook = time.Since(phase)
	wg.Wait()
	f.total = time.Since(start)
	if peopleErr != nil {
		tb.Fatalf("load people: %v", peopleErr)
	}
	if err != nil {
		tb.Fatalf("load clinics and quotas: %v", err)
	}
	f.clinics, f.supplyRows, f.quotaRows = res.Clinics, res.SupplyRows, res.QuotaRows
	return f
}

// BenchmarkSeed1M measures the figure of issue 2 on PostgreSQL, and on
// SQLite for comparison, each iteration into fresh databases, with the
// two loads one after the other and at the same time. Run it alone (it
// loads about 7.5 million quota rows per run):
//
//	go test -run '^$' -bench 'Seed1M/postgres' -benchtime 1x ./mocks/population/
//
// On the shared 2-core test machine (PostgreSQL 15, default settings) the
// total was 55 s and 62 s concurrent in the two quietest runs (load
// average 1.4 and 2.3 at the start), 65–75 s sequential, and 68–125 s
// while other work ran: the quota load is the PostgreSQL backend's CPU
// (39–50 s for the 7.5 million rows, mostly primary-key B-tree inserts)
// plus WAL flush waits, so it takes whatever share of a core the machine
// leaves it. 1,000,000 people take 4.5–7 s alone; the clinics and supply
// 1–3 s. SQLite, in the same sitting as the 62 s run: 61 s concurrent,
// 78 s sequential.
func BenchmarkSeed1M(b *testing.B) {
	for _, dialect := range []string{"postgres", "sqlite"} {
		for _, concurrent := range []bool{false, true} {
			mode := "sequential"
			if concurrent {
				mode = "concurrent"
			}
			b.Run(dialect+"/"+mode, func(b *testing.B) {
				c := seedCampaign(b)
				var f seedFigures
				for b.Loop() {
					b.StopTimer()
					t := openSeedTarget(b, dialect)
					b.StartTimer()
					f = seedAll(b, t, fullSeed, c, concurrent)
				}
				f.report(b)
			})
		}
	}
}

// TestSeedFull runs the full-size seed once per dialect, the two loads at
// the same time, when YEYAK_SEED_FULL=1 and reports how long it took; it
// asserts what was loaded, never how fast.
//
//	YEYAK_SEED_FULL=1 go test -count=1 -run TestSeedFull -v -timeout 30m ./mocks/population/
func TestSeedFull(t *testing.T) {
	if os.Getenv("YEYAK_SEED_FULL") != "1" {
		t.Skip("set YEYAK_SEED_FULL=1 to generate and load 1,000,000 people and 14,000 clinics")
	}
	for _, dialect := range []string{"postgres", "sqlite"} {
		t.Run(dialect, func(t *testing.T) {
			c := seedCampaign(t)
			target := openSeedTarget(t, dialect)
			f := seedAll(t, target, fullSeed, c, true)
			t.Logf("%s: %s", dialect, f)
			checkSeeded(t, target, fullSeed, c, f)
		})
	}
}

// TestSeedSmall runs seedAll at a small size on both dialects, so the
// path the figure is measured on stays correct.
func TestSeedSmall(t *testing.T) {
	cfg := population.Config{Seed: 7, People: 3000, Clinics: 25, SupplyJitter: 0.3}
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			c := seedCampaign(t)
			target := openSeedTarget(t, dialect)
			f := seedAll(t, target, cfg, c, true)
			checkSeeded(t, target, cfg, c, f)

			// The seeded store books: a first dose at a clinic's first date.
			ctx := context.Background()
			qs, err := target.store.Quotas(ctx, c.ID)
			if err != nil || len(qs) == 0 {
				t.Fatalf("Quotas = %d rows, %v", len(qs), err)
			}
			q := qs[0]
			for _, r := range qs {
				if r.Dose == 1 && r.Wave == 1 && r.Capacity > 0 {
					q = r
					break
				}
			}
			now := time.Now()
			b := &booking.Booking{ID: booking.NewID(), PersonID: population.ID(1), CampaignID: c.ID, ClinicID: q.ClinicID,
				Date: q.Date, Product: q.Product, Dose: 1, Wave: q.Wave, Status: booking.StatusConfirmed, CreatedAt: now, UpdatedAt: now}
			ev := booking.NewEvent(booking.EventBookingConfirmed, b, nil, "", now)
			if err := target.store.CreateBookings(ctx, []*booking.Booking{b}, []booking.Event{ev}); err != nil {
				t.Fatalf("book on a seeded row: %v", err)
			}
		})
	}
}

// checkSeeded checks what seedAll loaded against the generator: every
// known person in PERSON_MST, every clinic, and exactly the quota rows
// SplitSupply makes of the supply.
func checkSeeded(t *testing.T, target seedTarget, cfg population.Config, c *booking.Campaign, f seedFigures) {
	t.Helper()
	ctx := context.Background()
	known := 0
	for p := range population.People(cfg) {
		if !p.Unknown {
			known++
		}
	}
	var persons int
	if err := target.registry.QueryRowxContext(ctx, "SELECT COUNT(*) FROM PERSON_MST").Scan(&persons); err != nil {
		t.Fatal(err)
	}
	if f.people != known || persons != known {
		t.Errorf("people: loaded %d, PERSON_MST holds %d, want %d known people", f.people, persons, known)
	}
	clinics := population.Clinics(cfg)
	quotaRows := 0
	for _, s := range population.Supply(cfg, c, clinics, seedDosesPerDay) {
		if s.Dose >= 2 {
			quotaRows++
		} else {
			quotaRows += c.Waves()
		}
	}
	var stored, storedClinics int
	x := target.store.DB()
	if err := x.QueryRowxContext(ctx, x.Rebind("SELECT COUNT(*) FROM quotas WHERE campaign_id = ?"), c.ID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if err := x.QueryRowxContext(ctx, "SELECT COUNT(*) FROM clinics").Scan(&storedClinics); err != nil {
		t.Fatal(err)
	}
	if f.quotaRows != quotaRows || stored != quotaRows || f.clinics != cfg.Clinics || storedClinics != cfg.Clinics {
		t.Errorf("quota rows: loaded %d, stored %d, want %d; clinics: loaded %d, stored %d, want %d",
			f.quotaRows, stored, quotaRows, f.clinics, storedClinics, cfg.Clinics)
	}
}
