package oracle_test

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/yeyak/yeyak/adapter/oracle"
	"github.com/yeyak/yeyak/booking"
	"github.com/yeyak/yeyak/cache"
	"github.com/yeyak/yeyak/mocks/population"
	"github.com/yeyak/yeyak/mocks/registry"
)

// The Roster is what the cache's warmer needs.
var (
	_ cache.Roster       = (*oracle.Roster)(nil)
	_ cache.DigitCounter = (*oracle.Roster)(nil)
)

// rosterDBs are the databases the roster runs on: PostgreSQL and SQLite,
// each seeded with the same population.
func rosterDBs(t *testing.T, pop population.Config) map[string]*sqlx.DB {
	t.Helper()
	ctx := context.Background()
	lite, err := sqlx.Open("sqlite", filepath.Join(t.TempDir(), "legacy.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lite.Close() })
	if err := registry.CreateSchema(ctx, lite); err != nil {
		t.Fatal(err)
	}
	dbs := map[string]*sqlx.DB{"postgres": openPG(t), "sqlite": lite}
	for name, db := range dbs {
		if _, err := registry.Seed(ctx, db, population.People(pop)); err != nil {
			t.Fatalf("seed %s: %v", name, err)
		}
	}
	return dbs
}

// TestRosterPagesADigitGroup: the roster lists exactly the known people of
// a digit group born in the cohort's range, in ascending id order, in
// pages that resume after the last id, and counts them.
func TestRosterPagesADigitGroup(t *testing.T) {
	pop := population.Config{Seed: 5, People: 3_000}
	from, to := booking.MustDate("1980-01-01"), booking.MustDate("1994-12-31")
	const digit = 4
	var want []string
	for p := range population.People(pop) {
		if !p.Unknown && p.Digit() == digit && !p.BirthDate.Before(from) && !p.BirthDate.After(to) {
			want = append(want, p.ID)
		}
	}
	slices.Sort(want)
	if len(want) < 50 {
		t.Fatalf("population too small: %d people in the group", len(want))
	}
	ctx := context.Background()
	for name, db := range rosterDBs(t, pop) {
		t.Run(name, func(t *testing.T) {
			ro := oracle.New(db, oracle.Config{}).Roster(oracle.RosterConfig{BornFrom: from, BornTo: to})
			var got []string
			after := ""
			for pages := 0; ; pages++ {
				page, err := ro.PeopleForDigit(ctx, digit, after, 37)
				if err != nil {
					t.Fatal(err)
				}
				if len(page) > 37 {
					t.Fatalf("page of %d, limit 37", len(page))
				}
				if len(page) == 0 {
					break
				}
				got = append(got, page...)
				after = page[len(page)-1]
				if pages > len(want) {
					t.Fatal("paging does not end")
				}
			}
			if !slices.Equal(got, want) {
				t.Fatalf("roster listed %d ids, want %d (first %v, want %v)", len(got), len(want), got[:min(3, len(got))], want[:3])
			}
			n, err := ro.CountForDigit(ctx, digit)
			if err != nil || n != len(want) {
				t.Fatalf("count = %d, %v; want %d", n, err, len(want))
			}
			all := oracle.New(db, oracle.Config{}).Roster(oracle.RosterConfig{})
			if n, err := all.CountForDigit(ctx, digit); err != nil || n <= len(want) {
				t.Fatalf("unbounded count = %d, %v; want more than the cohort's %d", n, err, len(want))
			}
			if _, err := ro.PeopleForDigit(ctx, 10, "", 5); err == nil {
				t.Fatal("digit 10 accepted")
			}
		})
	}
}

// TestRosterWarmsTheCache: the cache's warmer, driven by the roster, loads
// a digit group from the legacy schema through the same adapter; then every
// one of them is answered from memory.
func TestRosterWarmsTheCache(t *testing.T) {
	pop := population.Config{Seed: 6, People: 2_000}
	db := openPG(t)
	ctx := context.Background()
	if _, err := registry.Seed(ctx, db, population.People(pop)); err != nil {
		t.Fatal(err)
	}
	reg := oracle.New(db, oracle.Config{})
	c, err := cache.New(reg, cache.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ro := reg.Roster(oracle.RosterConfig{})
	w, err := cache.NewWarmer(c, cache.WarmerConfig{Roster: ro, ChunkSize: 100, ChunksPerSecond: 1000})
	if err != nil {
		t.Fatal(err)
	}
	const digit = 7
	if err := w.Start(ctx, digit); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for w.Status().State != cache.WarmerDone {
		if time.Now().After(deadline) {
			t.Fatalf("warmer did not finish: %+v", w.Status())
		}
		time.Sleep(10 * time.Millisecond)
	}
	total, _ := ro.CountForDigit(ctx, digit)
	if st := w.Status(); st.People != int64(total) || st.Loaded != int64(total) || st.Progress != 1 {
		t.Fatalf("warmer status %+v, want %d people loaded", st, total)
	}
	calls := c.Stats().RegistryCalls
	for _, p := range population.PeopleWithDigit(pop, digit, 50) {
		e, err := c.Get(ctx, p.ID)
		if err != nil || e.Source != cache.SourceMemory {
			t.Fatalf("warmed person: %+v, %v", e, err)
		}
	}
	if c.Stats().RegistryCalls != calls {
		t.Fatal("a warmed person was read from the registry")
	}
}
